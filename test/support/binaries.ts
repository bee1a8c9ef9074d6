// Real tools for integration tests. On a laptop without one, the test skips
// and says why; under CI=true a missing tool fails the run.
import { spawnSync } from "node:child_process";
import type { TestContext } from "node:test";

export function hasBinary(name: string): boolean {
    return spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).status === 0;
}

/** True when `name` can be used; otherwise skips `t` (or throws under CI). */
export function requireBinary(t: TestContext, name: string, debianPackage = name): boolean {
    if (hasBinary(name)) return true;
    const reason = `${name} not installed (apt-get install -y ${debianPackage})`;
    if (process.env.CI === "true") throw new Error(`${reason}: required under CI`);
    t.skip(reason);
    return false;
}

export function run(cmd: string, args: string[], options: { cwd?: string; input?: string } = {}): { status: number; stdout: string; stderr: string } {
    const r = spawnSync(cmd, args, { encoding: "utf8", cwd: options.cwd, input: options.input, timeout: 120_000 });
    if (r.error) throw r.error;
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
