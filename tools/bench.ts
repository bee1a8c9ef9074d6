// Benchmark of the offline render, as a user runs it (a whole new process each
// time), side by side in one run: the way it ran before (tsx, a TypeScript
// loader with source maps on) and the way `npm run render` runs it now
// (tools/cli.cjs: an esbuild bundle run by node with V8's code cache), again
// into its directory and into a new one, for the prod stack and for prod with
// 100 agents; and the Pulumi SDK alone registering what 100 agents add
// (tools/bench-sdk-floor.cjs), the floor under the render's cost per agent.
// Prints median/min wall time, resource counts and the ratios; targets
// (2-core machine): the bundle at most 0.6x tsx on prod, and 100 agents at
// most 1.5x prod. Ratios are the median of each round's ratio: the cases of a
// round run back to back, so a slow minute of a shared machine cancels out.
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

/** What tools/bench-sdk-floor.cjs registers for 100 agents: a server, a primary IP and a k3s-config command each. */
const AGENT_RESOURCES = 300;

/** Milliseconds the Pulumi SDK alone takes to register what `agents` agents add (tools/bench-sdk-floor.cjs). */
function sdkFloor(agents: number): number {
    const r = spawnSync(process.execPath, [path.join(ROOT, "tools", "bench-sdk-floor.cjs"), String(agents)], { cwd: ROOT, encoding: "utf8" });
    const ms = /: (\d+) ms/.exec(r.stdout)?.[1];
    if (r.status !== 0 || ms === undefined) throw new Error(`bench-sdk-floor failed\n${r.stderr}`);
    return Number(ms);
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
        const sdkTimes: number[] = [];
        const counts = new Map<string, { resources: number; nodes: number }>();
        for (let i = 0; i < runs + 1; i++) {
            for (const p of pairs) {
                const r = renderOnce(p.runner, p.c, p.out);
                // The first round warms the disk and code caches; it is not counted.
                if (i > 0) times.get(p.key)?.push(r.ms);
                counts.set(p.key, r);
            }
            if (i > 0) sdkTimes.push(sdkFloor(100));
        }
        for (const p of pairs) {
            const t = times.get(p.key) ?? [];
            const n = counts.get(p.key);
            console.log(`${p.c.label.padEnd(20)} ${p.runner.label.padEnd(16)} median ${seconds(median(t))}  min ${seconds(Math.min(...t))}  resources ${n?.resources}  servers ${n?.nodes}`);
        }
        const at = (runner: number, c: number) => times.get(`${runner}|${c}`) ?? [];
        /** The median over rounds of one case's time over another's in the same round. */
        const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]));
        console.log(`prod: npm run render / tsx = ${ratio(at(1, 0), at(0, 0)).toFixed(2)} (target <= 0.60)`);
        console.log(`100 agents / prod with npm run render = ${ratio(at(1, 1), at(1, 0)).toFixed(2)} (target <= 1.50); into a new directory ${ratio(at(2, 1), at(2, 0)).toFixed(2)}`);
        const added = median(at(1, 1).map((x, i) => x - at(1, 0)[i]));
        const sdk = median(sdkTimes);
        const addedResources = (counts.get("1|1")?.resources ?? 0) - (counts.get("1|0")?.resources ?? 0);
        console.log(`100 agents add ${addedResources} resources and ${seconds(added)} to the render; the Pulumi SDK alone registers their ${AGENT_RESOURCES} servers, `
            + `primary IPs and k3s-config commands in ${seconds(sdk)} (tools/bench-sdk-floor.cjs, median of ${sdkTimes.length})`);
    } finally {
        fs.rmSync(out, { recursive: true, force: true });
    }
}

main();
