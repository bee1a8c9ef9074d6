// Benchmark of the offline render, as a user runs it (a whole new process each
// time), side by side in one run: the way it ran before (tsx, a TypeScript
// loader with source maps on) and the way `npm run render` runs it now
// (tools/cli.cjs: an esbuild bundle run by node with V8's code cache), again
// into its directory and into a new one, for the prod stack and for prod with
// 100 agents. Prints median/min wall time,
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
interface Runner { readonly label: string; readonly command: string; readonly prefix: readonly string[]; readonly newDir?: boolean }

const CLI = [path.join(ROOT, "tools", "cli.cjs"), "render"];
const RUNNERS: readonly Runner[] = [
    { label: "tsx (before)", command: TSX, prefix: [path.join(ROOT, "tools", "render.ts")] },
    // Again into its directory, as a user re-renders out/<stack> after an edit: only changed files are written.
    { label: "npm run render", command: process.execPath, prefix: CLI },
    // Into a new directory each time: every file written.
    { label: "... new dir", command: process.execPath, prefix: CLI, newDir: true },
];

/** One whole render process; its wall time, and the counts it printed. */
function renderOnce(runner: Runner, c: Case, out: string): { ms: number; resources: number; nodes: number } {
    if (runner.newDir) fs.rmSync(out, { recursive: true, force: true });
    const start = performance.now();
    const r = spawnSync(runner.command, [...runner.prefix, ...c.args, "--out", out], { cwd: ROOT, encoding: "utf8" });
    const ms = performance.now() - start;
    if (r.status !== 0) throw new Error(`${c.label}: render failed\n${r.stderr}`);
    return { ms, resources: Number(/Resources: (\d+)/.exec(r.stdout)?.[1] ?? 0), nodes: Number(/cloud-init files: (\d+)/.exec(r.stdout)?.[1] ?? 0) };
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
        console.log(`Offline render benchmark: ${runs} runs each after one warm-up, whole process, the cases interleaved (a slower machine minute slows all alike); ${os.cpus().length} cores, Node ${process.version}`);
        const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
        const pairs = cases.flatMap((c, ci) => RUNNERS.map((runner, ri) => ({ c, runner, key: `${ri}|${ci}`, out: path.join(out, `${ri}-${ci}`) })));
        const times = new Map<string, number[]>(pairs.map((p) => [p.key, []]));
        const counts = new Map<string, { resources: number; nodes: number }>();
        for (let i = 0; i < runs + 1; i++) {
            for (const p of pairs) {
                const r = renderOnce(p.runner, p.c, p.out);
                // The first round warms the disk and code caches; it is not counted.
                if (i > 0) times.get(p.key)?.push(r.ms);
                counts.set(p.key, r);
            }
        }
        const results = new Map<string, number>();
        for (const p of pairs) {
            const t = times.get(p.key) ?? [];
            results.set(p.key, median(t));
            const n = counts.get(p.key);
            console.log(`${p.c.label.padEnd(20)} ${p.runner.label.padEnd(16)} median ${seconds(median(t))}  min ${seconds(Math.min(...t))}  resources ${n?.resources}  servers ${n?.nodes}`);
        }
        const at = (runner: number, c: number) => results.get(`${runner}|${c}`) ?? NaN;
        console.log(`prod: npm run render / tsx = ${(at(1, 0) / at(0, 0)).toFixed(2)} (target <= 0.60)`);
        console.log(`100 agents / prod with npm run render = ${(at(1, 1) / at(1, 0)).toFixed(2)} (target <= 1.50); into a new directory ${(at(2, 1) / at(2, 0)).toFixed(2)}`);
    } finally {
        fs.rmSync(out, { recursive: true, force: true });
    }
}

main();
