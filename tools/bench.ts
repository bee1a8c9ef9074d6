// Benchmark of the offline render, as a user runs it (a whole new process each
// time): the prod stack, and a synthetic stack with 10x its servers
// (3 servers + 27 agents). Prints median/min wall time, resource counts and
// the ratio; targets (2-core machine): prod under 3 s, 10x under 2x prod.
// Usage: npm run bench [-- --runs N]
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";

const ROOT = path.resolve(__dirname, "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");

interface Case { readonly label: string; readonly args: string[] }

function measure(c: Case, runs: number, out: string): { times: number[]; resources: number; nodes: number } {
    const times: number[] = [];
    let resources = 0;
    let nodes = 0;
    for (let i = 0; i < runs + 1; i++) {
        const start = performance.now();
        const r = spawnSync(TSX, [path.join(ROOT, "tools", "render.ts"), ...c.args, "--out", out], { cwd: ROOT, encoding: "utf8" });
        const ms = performance.now() - start;
        if (r.status !== 0) throw new Error(`${c.label}: render failed\n${r.stderr}`);
        // The first run warms the disk cache; it is not counted.
        if (i > 0) times.push(ms);
        resources = Number(/Resources: (\d+)/.exec(r.stdout)?.[1] ?? 0);
        nodes = Number(/cloud-init files: (\d+)/.exec(r.stdout)?.[1] ?? 0);
    }
    return { times, resources, nodes };
}

function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
}

function main(): void {
    const runsArg = process.argv.indexOf("--runs");
    const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "platform-bench-"));
    try {
        const cases: Case[] = [
            { label: "prod (3 servers)", args: ["--stack", "prod"] },
            { label: "10x servers (3 + 27 agents)", args: ["--stack", "prod", "--set", "agentCount=27"] },
        ];
        console.log(`Offline render benchmark: ${runs} runs each after one warm-up, whole process; ${os.cpus().length} cores, Node ${process.version}`);
        const results = cases.map((c) => ({ c, ...measure(c, runs, out) }));
        for (const r of results) {
            console.log(`${r.c.label.padEnd(30)} median ${(median(r.times) / 1000).toFixed(2)} s  min ${(Math.min(...r.times) / 1000).toFixed(2)} s  resources ${r.resources}  servers ${r.nodes}`);
        }
        const [prod, large] = results;
        const ratio = median(large.times) / median(prod.times);
        console.log(`10x/prod time ratio: ${ratio.toFixed(2)} (target < 2.00); prod median ${(median(prod.times) / 1000).toFixed(2)} s (target < 3.00 s)`);
    } finally {
        fs.rmSync(out, { recursive: true, force: true });
    }
}

main();
