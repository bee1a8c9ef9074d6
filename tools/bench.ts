// Benchmark of the offline render, as a user runs it (a whole new process each
// time), side by side in one run: the way it ran before (tsx, a TypeScript
// loader with source maps on) and the way `npm run render` runs it now
// (tools/cli.cjs: an esbuild bundle run by node with V8's code cache), for the
// prod stack and for prod with 100 agents. Prints median/min wall time,
// resource counts and the ratios; targets (2-core machine): the bundle at most
// 0.6x tsx on prod, and 100 agents at most 1.5x prod.
// Usage: npm run bench [-- --runs N]
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";

const ROOT = path.resolve(__dirname, "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");

interface Case { readonly label: string; readonly args: string[] }
interface Runner { readonly label: string; readonly command: string; readonly prefix: readonly string[] }

const RUNNERS: readonly Runner[] = [
    { label: "tsx (before)", command: TSX, prefix: [path.join(ROOT, "tools", "render.ts")] },
    { label: "npm run render", command: process.execPath, prefix: [path.join(ROOT, "tools", "cli.cjs"), "render"] },
];

function measure(runner: Runner, c: Case, runs: number, out: string): { times: number[]; resources: number; nodes: number } {
    const times: number[] = [];
    let resources = 0;
    let nodes = 0;
    for (let i = 0; i < runs + 1; i++) {
        const start = performance.now();
        const r = spawnSync(runner.command, [...runner.prefix, ...c.args, "--out", out], { cwd: ROOT, encoding: "utf8" });
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
            { label: "prod + 100 agents", args: ["--stack", "prod", "--set", "agentCount=100"] },
        ];
        console.log(`Offline render benchmark: ${runs} runs each after one warm-up, whole process; ${os.cpus().length} cores, Node ${process.version}`);
        const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
        const results = new Map<string, number>();
        for (const c of cases) {
            for (const runner of RUNNERS) {
                const r = measure(runner, c, runs, out);
                results.set(`${runner.label}|${c.label}`, median(r.times));
                console.log(`${c.label.padEnd(20)} ${runner.label.padEnd(16)} median ${seconds(median(r.times))}  min ${seconds(Math.min(...r.times))}  resources ${r.resources}  servers ${r.nodes}`);
            }
        }
        const at = (runner: number, c: number) => results.get(`${RUNNERS[runner].label}|${cases[c].label}`) ?? NaN;
        console.log(`prod: npm run render / tsx = ${(at(1, 0) / at(0, 0)).toFixed(2)} (target <= 0.60)`);
        console.log(`100 agents / prod with npm run render = ${(at(1, 1) / at(1, 0)).toFixed(2)} (target <= 1.50)`);
    } finally {
        fs.rmSync(out, { recursive: true, force: true });
    }
}

main();
