// The shell scripts that run on nodes, run for real by bash with stand-ins for
// what only a Hetzner server has (ip, curl to GitHub and to the other servers,
// systemctl, netplan, iptables, k3s itself) and an instant `sleep`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { PROJECT_DIR } from "./support/stack";

let dir: string;

function stub(name: string, body: string): void {
    fs.writeFileSync(path.join(dir, "bin", name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
}

function runScript(script: string, args: string[], env: Record<string, string> = {}, input?: string): { status: number; stdout: string; stderr: string } {
    const r = spawnSync("bash", [path.join(PROJECT_DIR, "scripts", script), ...args], {
        encoding: "utf8",
        env: { PATH: `${path.join(dir, "bin")}:${process.env.PATH ?? ""}`, STUB: dir, ...env },
        input,
        timeout: 30_000,
    });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function log(name: string): string[] {
    const file = path.join(dir, name);
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n").filter((l) => l !== "") : [];
}

/** A stand-in that records its arguments in <name>.log and exits 0. */
function recorder(name: string, extra = ""): void {
    stub(name, `echo "$*" >> "$STUB/${name}.log"\n${extra}`);
}

beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "node-scripts-"));
    fs.mkdirSync(path.join(dir, "bin"));
    stub("sleep", 'echo "$*" >> "$STUB/sleep.log"');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("node-prepare.sh", () => {
    const binary = "#!/bin/sh\necho k3s\n";
    const sha = createHash("sha256").update(binary).digest("hex");
    /** curl serving the release's checksum file and binary from "GitHub". */
    function stubRelease(sums: string): void {
        fs.writeFileSync(path.join(dir, "k3s.bin"), binary);
        fs.writeFileSync(path.join(dir, "sums.txt"), sums);
        stub("curl", `echo "$*" >> "$STUB/curl.log"
while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift ;; http*) url="$1" ;; esac; shift; done
case "$url" in
  */sha256sum-*.txt) cp "$STUB/sums.txt" "$out" ;;
  */k3s|*/k3s-arm64) cp "$STUB/k3s.bin" "$out" ;;
  *) exit 22 ;;
esac`);
        recorder("netplan");
        recorder("systemctl");
    }
    const env = () => ({ K3S_BIN_DIR: path.join(dir, "usr-bin"), PLATFORM_STATE_DIR: path.join(dir, "state") });

    it("installs the pinned release after checking it against the release's checksums, and never starts k3s", () => {
        fs.mkdirSync(path.join(dir, "usr-bin"));
        stubRelease(`${"0".repeat(64)}  k3s-airgap-images-amd64.tar\n${sha}  k3s\n`);
        const r = runScript("node-prepare.sh", ["v1.34.6+k3s1", "amd64"], env());
        assert.equal(r.status, 0, r.stderr);
        assert.equal(fs.readFileSync(path.join(dir, "usr-bin", "k3s"), "utf8"), binary);
        assert.equal(fs.readlinkSync(path.join(dir, "usr-bin", "kubectl")), "k3s");
        const urls = log("curl.log").map((l) => l.split(" ").find((w) => w.startsWith("https://")));
        assert.deepEqual(urls, [
            "https://github.com/k3s-io/k3s/releases/download/v1.34.6%2Bk3s1/sha256sum-amd64.txt",
            "https://github.com/k3s-io/k3s/releases/download/v1.34.6%2Bk3s1/k3s",
        ]);
        assert.deepEqual(log("netplan.log"), ["apply"]);
        assert.deepEqual(log("systemctl.log"), ["daemon-reload", "enable --now platform-metadata-block.service"]);
        assert.equal(fs.readFileSync(path.join(dir, "state", "node-prepared"), "utf8"), "v1.34.6+k3s1\n");
    });

    it("downloads the arm64 asset on Arm servers", () => {
        fs.mkdirSync(path.join(dir, "usr-bin"));
        stubRelease(`${sha}  k3s-arm64\n`);
        const r = runScript("node-prepare.sh", ["v1.34.6+k3s1", "arm64"], env());
        assert.equal(r.status, 0, r.stderr);
        assert.ok(log("curl.log").some((l) => l.includes("/sha256sum-arm64.txt")));
        assert.ok(log("curl.log").some((l) => l.includes("/k3s-arm64")));
    });

    it("refuses a binary whose checksum does not match, and installs nothing", () => {
        fs.mkdirSync(path.join(dir, "usr-bin"));
        stubRelease(`${"f".repeat(64)}  k3s\n`);
        const r = runScript("node-prepare.sh", ["v1.34.6+k3s1", "amd64"], env());
        assert.equal(r.status, 1);
        assert.match(r.stderr, /checksum mismatch for k3s v1\.34\.6\+k3s1/);
        assert.ok(!fs.existsSync(path.join(dir, "usr-bin", "k3s")));
        assert.ok(!fs.existsSync(path.join(dir, "state", "node-prepared")));
    });

    it("refuses a release without a checksum for the binary", () => {
        fs.mkdirSync(path.join(dir, "usr-bin"));
        stubRelease(`${sha}  k3s-arm64\n`);
        const r = runScript("node-prepare.sh", ["v1.34.6+k3s1", "amd64"], env());
        assert.equal(r.status, 1);
        assert.match(r.stderr, /no checksum for k3s/);
    });
});

describe("node-metadata-block.sh", () => {
    /** iptables that keeps its rules in a file: -C checks, -I inserts. */
    function stubIptables(): void {
        stub("iptables", `rules="$STUB/rules"; touch "$rules"; echo "$*" >> "$STUB/iptables.log"
table="$2"; op="$3"; shift 3; rule="$table $*"
case "$op" in
  -C) grep -qxF -- "$rule" "$rules" ;;
  -I) echo "$rule" >> "$rules" ;;
  *) exit 2 ;;
esac`);
    }

    it("drops pod traffic to 169.254.169.254 in raw PREROUTING, once however often it runs", () => {
        stubIptables();
        for (let i = 0; i < 3; i++) {
            const r = runScript("node-metadata-block.sh", ["10.42.0.0/16"]);
            assert.equal(r.status, 0, r.stderr);
        }
        assert.deepEqual(log("rules"), ["raw PREROUTING -s 10.42.0.0/16 -d 169.254.169.254/32 -j DROP"]);
    });
});

describe("k3s-apply-config.sh", () => {
    const config = "token: server-token-do-not-print\nnode-name: prod-server-2\n";
    const paths = () => ({
        K3S_CONFIG_FILE: path.join(dir, "etc", "config.yaml"),
        K3S_DATA_DIR: path.join(dir, "data"),
        PLATFORM_STATE_DIR: path.join(dir, "state"),
        K3S_KUBECONFIG: path.join(dir, "k3s.yaml"),
        K3S_BIN: path.join(dir, "usr-local-bin-k3s"),
    });
    /** A prepared node with its private address on enp7s0; `answering` servers reply to /ping. */
    function node(answering: string[], opts: { active?: boolean; ready?: boolean } = {}): void {
        fs.mkdirSync(path.join(dir, "state"), { recursive: true });
        fs.writeFileSync(path.join(dir, "state", "node-prepared"), "v1.34.6+k3s1\n");
        stub("ip", 'echo "1: lo    inet 127.0.0.1/8 scope host lo"; echo "3: enp7s0    inet 10.0.1.12/32 brd 10.0.1.12 scope global dynamic enp7s0"');
        stub("curl", `echo "$*" >> "$STUB/curl.log"
case "$*" in
${answering.map((a) => `  *https://${a}:6443/ping*) echo pong ;;`).join("\n")}
  *127.0.0.1:10248/healthz*) echo ok ;;
  *) exit 7 ;;
esac`);
        recorder("systemctl", `[ "$1" != is-active ] || exit ${opts.active ? 0 : 3}`);
        stub("k3s", `echo "$*" >> "$STUB/k3s.log"
case "$*" in
  *readyz*) exit ${opts.ready === false ? 1 : 0} ;;
  *"get node"*) echo True ;;
esac`);
    }
    const written = () => fs.readFileSync(path.join(dir, "etc", "config.yaml"), "utf8");

    it("joins the first candidate that answers, pins flannel to the private interface, starts k3s and waits until Ready", () => {
        node(["10.0.1.13"]);
        const r = runScript("k3s-apply-config.sh", ["server", "prod-server-2", "10.0.1.12", "10.0.1.11", "10.0.1.13"], paths(), config);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(written(), `${config}server: https://10.0.1.13:6443\nflannel-iface: enp7s0\n`);
        assert.equal(fs.statSync(path.join(dir, "etc", "config.yaml")).mode & 0o777, 0o600);
        assert.deepEqual(log("systemctl.log").filter((l) => !l.startsWith("is-active")), ["enable k3s", "restart k3s"]);
        assert.ok(log("k3s.log").some((l) => l.includes("get --raw=/readyz")), "waits for the API and etcd");
        assert.ok(log("k3s.log").some((l) => l.includes("get node prod-server-2")), "waits for its node to be Ready");
        assert.ok(!r.stdout.includes("server-token") && !r.stderr.includes("server-token"), "never prints the config");
    });

    it("bootstraps with cluster-init only when no other server answers", () => {
        node([]);
        const r = runScript("k3s-apply-config.sh", ["server", "prod-server-1", "10.0.1.12", "--cluster-init", "10.0.1.13"], paths(), config);
        assert.equal(r.status, 0, r.stderr);
        assert.match(written(), /^cluster-init: true$/m);
        assert.doesNotMatch(written(), /^server:/m);
    });

    it("a replaced first server joins the running cluster instead of initialising a second one", () => {
        node(["10.0.1.13"]);
        const r = runScript("k3s-apply-config.sh", ["server", "prod-server-1", "10.0.1.12", "--cluster-init", "10.0.1.13"], paths(), config);
        assert.equal(r.status, 0, r.stderr);
        assert.doesNotMatch(written(), /cluster-init/);
        assert.match(written(), /^server: https:\/\/10\.0\.1\.13:6443$/m);
        assert.match(r.stderr, /joining the existing cluster instead of initialising one/);
    });

    it("leaves a running node alone when its config did not change, whichever server answers now", () => {
        node(["10.0.1.11"], { active: true });
        fs.mkdirSync(path.join(dir, "etc"));
        fs.mkdirSync(path.join(dir, "data", "server", "db", "etcd", "member", "wal"), { recursive: true });
        fs.writeFileSync(path.join(dir, "etc", "config.yaml"), `${config}cluster-init: true\nflannel-iface: enp7s0\n`);
        const r = runScript("k3s-apply-config.sh", ["server", "prod-server-2", "10.0.1.12", "10.0.1.11"], paths(), config);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /configuration unchanged/);
        assert.deepEqual(log("systemctl.log").filter((l) => !l.startsWith("is-active")), []);
        assert.ok(log("k3s.log").some((l) => l.includes("readyz")), "still checks health before the next server");
    });

    it("restarts a running server whose config changed, and fails the apply when it does not come back", () => {
        node(["10.0.1.11"], { active: true, ready: false });
        fs.mkdirSync(path.join(dir, "etc"));
        fs.mkdirSync(path.join(dir, "data", "server", "db", "etcd", "member", "wal"), { recursive: true });
        fs.writeFileSync(path.join(dir, "etc", "config.yaml"), `token: server-token-do-not-print\nnode-name: old\nflannel-iface: enp7s0\n`);
        const r = runScript("k3s-apply-config.sh", ["server", "prod-server-2", "10.0.1.12", "10.0.1.11"], paths(), config);
        assert.equal(r.status, 1);
        assert.deepEqual(log("systemctl.log").filter((l) => !l.startsWith("is-active")), ["enable k3s", "restart k3s"]);
        assert.match(r.stderr, /k3s did not become ready within 15 minutes/);
    });

    it("a server with etcd data starts even when no other server answers; a new one waits, then fails without starting", () => {
        node([], { active: false });
        fs.mkdirSync(path.join(dir, "data", "server", "db", "etcd", "member", "wal"), { recursive: true });
        const member = runScript("k3s-apply-config.sh", ["server", "prod-server-2", "10.0.1.12", "10.0.1.11"], paths(), config);
        assert.equal(member.status, 0, member.stderr);
        assert.doesNotMatch(written(), /^server:/m);

        fs.rmSync(path.join(dir, "data"), { recursive: true });
        fs.rmSync(path.join(dir, "etc"), { recursive: true });
        fs.rmSync(path.join(dir, "systemctl.log"));
        const fresh = runScript("k3s-apply-config.sh", ["server", "prod-server-2", "10.0.1.12", "10.0.1.11"], paths(), config);
        assert.equal(fresh.status, 1);
        assert.match(fresh.stderr, /none of 10\.0\.1\.11 answered within 30 minutes/);
        assert.deepEqual(log("systemctl.log"), []);
    });

    it("runs agents as k3s-agent and checks the kubelet", () => {
        node(["10.0.1.11"]);
        const r = runScript("k3s-apply-config.sh", ["agent", "prod-agent-1", "10.0.1.12", "10.0.1.11"], paths(), "token: agent-token\n");
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(log("systemctl.log").filter((l) => !l.startsWith("is-active")), ["enable k3s-agent", "restart k3s-agent"]);
        assert.ok(log("curl.log").some((l) => l.includes("127.0.0.1:10248/healthz")));
        assert.equal(runScript("k3s-apply-config.sh", ["agent", "a", "10.0.1.12", "--cluster-init"], paths(), "x\n").status, 2);
    });

    it("waits for the node preparation, and for the private interface", () => {
        node(["10.0.1.11"]);
        fs.rmSync(path.join(dir, "state", "node-prepared"));
        const unprepared = runScript("k3s-apply-config.sh", ["server", "prod-server-2", "10.0.1.12", "10.0.1.11"], paths(), config);
        assert.equal(unprepared.status, 1);
        assert.match(unprepared.stderr, /node preparation did not finish within 20 minutes/);

        node(["10.0.1.11"]);
        // A node installed by an earlier version of this program has k3s but no marker.
        fs.writeFileSync(path.join(dir, "usr-local-bin-k3s"), "#!/bin/sh\n", { mode: 0o755 });
        fs.rmSync(path.join(dir, "state", "node-prepared"));
        const earlier = runScript("k3s-apply-config.sh", ["server", "prod-server-2", "10.0.1.12", "10.0.1.11"], paths(), config);
        assert.equal(earlier.status, 0, earlier.stderr);
        fs.rmSync(path.join(dir, "usr-local-bin-k3s"));

        node(["10.0.1.11"]);
        stub("ip", 'echo "1: lo    inet 127.0.0.1/8 scope host lo"');
        const noNic = runScript("k3s-apply-config.sh", ["server", "prod-server-2", "10.0.1.12", "10.0.1.11"], paths(), config);
        assert.equal(noNic.status, 1);
        assert.match(noNic.stderr, /no interface carries the private address 10\.0\.1\.12/);
    });
});

describe("k3s-credential.sh", () => {
    it("issues a ServiceAccount token bound to cluster-admin, prints it with the CA, and revokes older versions", () => {
        stub("k3s", `echo "$*" >> "$STUB/k3s.log"
case "$*" in
  *"apply -f -"*) cat > "$STUB/applied.yaml" ;;
  *"jsonpath={.data.token}"*) printf 'dG9rZW4=' ;;
  *"jsonpath={.data.ca"*) printf 'Q0E=' ;;
esac`);
        const r = runScript("k3s-credential.sh", ["3"], { K3S_KUBECONFIG: path.join(dir, "k3s.yaml") });
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(JSON.parse(r.stdout), { token: "dG9rZW4=", caData: "Q0E=" });
        const applied = fs.readFileSync(path.join(dir, "applied.yaml"), "utf8");
        assert.match(applied, /type: kubernetes\.io\/service-account-token/);
        assert.match(applied, /name: platform-deployer-token-v3/);
        assert.match(applied, /name: cluster-admin/);
        assert.ok(log("k3s.log").some((l) => l.includes("delete secret -l platform.io/credential=platform-deployer,platform.io/credential-version!=v3")));
    });
});
