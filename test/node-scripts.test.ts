// The shell scripts that run on nodes, run for real by bash with stand-ins for
// what only a Hetzner server has (ip, curl to get.k3s.io and the first server,
// k3s itself) and an instant `sleep`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { PROJECT_DIR } from "./support/stack";

let dir: string;

function stub(name: string, body: string): void {
    fs.writeFileSync(path.join(dir, "bin", name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
}

function runScript(script: string, args: string[], env: Record<string, string> = {}): { status: number; stdout: string; stderr: string } {
    const r = spawnSync("bash", [path.join(PROJECT_DIR, "scripts", script), ...args], {
        encoding: "utf8",
        env: { PATH: `${path.join(dir, "bin")}:${process.env.PATH ?? ""}`, STUB: dir, ...env },
        timeout: 30_000,
    });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function log(name: string): string[] {
    const file = path.join(dir, name);
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n") : [];
}

/** `ip -o -4 addr show` that shows the private address from the `after`-th call on. */
function stubIp(address: string, iface: string, after = 1): void {
    stub("ip", `n=$(( $(cat "$STUB/ip.count" 2>/dev/null || echo 0) + 1 )); echo $n > "$STUB/ip.count"
echo "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever"
if [ "$n" -ge ${after} ]; then echo "3: ${iface}    inet ${address}/32 brd ${address} scope global dynamic ${iface}\\       valid_lft 86000sec"; fi`);
}

/** curl: /ping fails until the `pingOkFrom`-th call; get.k3s.io serves an installer that records its environment. */
function stubCurl(pingOkFrom: number): void {
    stub("curl", `echo "$*" >> "$STUB/curl.log"
case "$*" in
  */ping*) n=$(( $(cat "$STUB/ping.count" 2>/dev/null || echo 0) + 1 )); echo $n > "$STUB/ping.count"; [ "$n" -ge ${pingOkFrom} ] || exit 7; echo pong ;;
  *get.k3s.io*) while [ $# -gt 0 ]; do if [ "$1" = "-o" ]; then out="$2"; fi; shift; done
    printf '#!/bin/sh\\necho "version=$INSTALL_K3S_VERSION exec=$INSTALL_K3S_EXEC" >> "$STUB/installed"\\n' > "$out" ;;
  *) exit 6 ;;
esac`);
}

beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "node-scripts-"));
    fs.mkdirSync(path.join(dir, "bin"));
    stub("sleep", 'echo "$*" >> "$STUB/sleep.log"');
    fs.writeFileSync(path.join(dir, "config.yaml"), "token: t\nnode-ip: 10.0.1.12\n");
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("k3s-install.sh", () => {
    const config = () => ({ K3S_CONFIG_FILE: path.join(dir, "config.yaml") });

    it("waits for the private interface and the first server, pins flannel to that interface, then installs", () => {
        stubIp("10.0.1.12", "enp7s0", 3);
        stubCurl(4);
        const r = runScript("k3s-install.sh", ["server", "v1.34.6+k3s1", "10.0.1.12", "10.0.1.11"], config());
        assert.equal(r.status, 0, r.stderr);
        assert.match(fs.readFileSync(path.join(dir, "config.yaml"), "utf8"), /\nflannel-iface: enp7s0\n$/);
        const calls = log("curl.log");
        assert.equal(calls.filter((c) => c.includes("https://10.0.1.11:6443/ping")).length, 4);
        assert.ok(calls.findIndex((c) => c.includes("get.k3s.io")) > calls.findLastIndex((c) => c.includes("/ping")), "installs only after the server answered");
        assert.deepEqual(log("installed"), ["version=v1.34.6+k3s1 exec=server"]);
    });

    it("installs the first server without waiting for anyone", () => {
        stubIp("10.0.1.11", "enp7s0");
        stubCurl(1);
        const r = runScript("k3s-install.sh", ["server", "v1.34.6+k3s1", "10.0.1.11"], config());
        assert.equal(r.status, 0, r.stderr);
        assert.equal(log("curl.log").filter((c) => c.includes("/ping")).length, 0);
        assert.deepEqual(log("installed"), ["version=v1.34.6+k3s1 exec=server"]);
    });

    it("installs agents as agents and adds flannel-iface once when run again", () => {
        stubIp("10.0.1.101", "eth1");
        stubCurl(1);
        for (let i = 0; i < 2; i++) {
            const r = runScript("k3s-install.sh", ["agent", "v1.34.6+k3s1", "10.0.1.101", "10.0.1.11"], config());
            assert.equal(r.status, 0, r.stderr);
        }
        assert.equal(fs.readFileSync(path.join(dir, "config.yaml"), "utf8").match(/flannel-iface/g)?.length, 1);
        assert.deepEqual(log("installed"), ["version=v1.34.6+k3s1 exec=agent", "version=v1.34.6+k3s1 exec=agent"]);
    });

    it("fails without installing when the private address never appears", () => {
        stubIp("10.0.1.12", "enp7s0", 10_000);
        stubCurl(1);
        const r = runScript("k3s-install.sh", ["server", "v1.34.6+k3s1", "10.0.1.12", "10.0.1.11"], config());
        assert.equal(r.status, 1);
        assert.match(r.stderr, /no interface carries the private address 10\.0\.1\.12/);
        assert.deepEqual(log("curl.log"), []);
    });

    it("fails without installing when the first server never answers", () => {
        stubIp("10.0.1.12", "enp7s0");
        stubCurl(1_000_000);
        const r = runScript("k3s-install.sh", ["server", "v1.34.6+k3s1", "10.0.1.12", "10.0.1.11"], config());
        assert.equal(r.status, 1);
        assert.match(r.stderr, /server 10\.0\.1\.11 did not answer within 30 minutes/);
        assert.equal(log("curl.log").filter((c) => c.includes("get.k3s.io")).length, 0);
        assert.deepEqual(log("installed"), []);
    });

    it("refuses an unknown role", () => {
        const r = runScript("k3s-install.sh", ["worker", "v1.34.6+k3s1", "10.0.1.12"], config());
        assert.equal(r.status, 2);
        assert.match(r.stderr, /unknown role 'worker'/);
    });
});

describe("k3s-kubeconfig.sh", () => {
    const kubeconfig = () => path.join(dir, "k3s.yaml");

    it("prints the kubeconfig once the API is ready, and nothing before", () => {
        fs.writeFileSync(kubeconfig(), "apiVersion: v1\nkind: Config\n");
        stub("k3s", 'n=$(( $(cat "$STUB/k3s.count" 2>/dev/null || echo 0) + 1 )); echo $n > "$STUB/k3s.count"; [ "$n" -ge 3 ]');
        const r = runScript("k3s-kubeconfig.sh", [], { K3S_KUBECONFIG: kubeconfig() });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout, "apiVersion: v1\nkind: Config\n");
        assert.equal(log("sleep.log").length, 2);
    });

    it("gives up with a pointer to the logs when the API never becomes ready", () => {
        stub("k3s", "exit 1");
        const r = runScript("k3s-kubeconfig.sh", [], { K3S_KUBECONFIG: kubeconfig() });
        assert.equal(r.status, 1);
        assert.equal(r.stdout, "");
        assert.match(r.stderr, /did not become ready within 20 minutes; see: journalctl -u k3s/);
        assert.equal(log("sleep.log").length, 239);
    });
});
