// `npm run render` as a user runs it: a separate process, files on disk,
// a readable summary, and exit 1 with the problems on bad config.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { renderStack } from "../tools/render";
import { run } from "./support/binaries";
import { PROJECT_DIR } from "./support/stack";

/** `npm run render -- ARGS`, as package.json runs it. */
function render(args: string[]): { status: number; stdout: string; stderr: string } {
    return run(process.execPath, [path.join(PROJECT_DIR, "tools", "cli.cjs"), "render", ...args], { cwd: PROJECT_DIR });
}

function walk(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]);
}

describe("npm run render -- --stack prod", () => {
    let out: string;
    let result: ReturnType<typeof render>;
    before(() => {
        out = fs.mkdtempSync(path.join(os.tmpdir(), "render-prod-"));
        result = render(["--stack", "prod", "--out", out]);
    });
    after(() => fs.rmSync(out, { recursive: true, force: true }));

    it("exits 0 and prints the resource tree with counts", () => {
        assert.equal(result.status, 0, result.stderr);
        assert.match(result.stdout, /Offline render of stack 'prod' \(hetzner mode\)/);
        assert.match(result.stdout, /├─ hcloud:index\/server:Server {2}prod-server-2 {2}\(ignores userData,image,sshKeys\)/);
        assert.match(result.stdout, /Resources: \d+ \(.*hcloud \d+.*kubernetes \d+/);
        assert.match(result.stdout, /Kubernetes objects: \d+; cloud-init files: 3/);
        assert.match(result.stdout, /kubeconfig=\[secret\]/);
        assert.match(result.stdout, /Note: hcloud:token is not set: using a placeholder token/);
    });

    it("writes resources.json, one user-data per server and one file per Kubernetes object", () => {
        const resources = JSON.parse(fs.readFileSync(path.join(out, "resources.json"), "utf8")) as { type: string; name: string; parent?: string; inputs: unknown }[];
        assert.ok(Array.isArray(resources));
        const server = resources.find((r) => r.name === "prod-server-1");
        assert.equal(server?.parent, "platform:cluster:K3sCluster::prod");
        // User-data holds no secret, so it is shown as is, and written beside.
        const userData = (server?.inputs as { userData: string }).userData;
        assert.match(userData, /^#cloud-config\n/);
        assert.deepEqual(fs.readdirSync(path.join(out, "cloud-init")).sort(), ["prod-server-1.yaml", "prod-server-2.yaml", "prod-server-3.yaml"]);
        assert.equal(fs.readFileSync(path.join(out, "cloud-init", "prod-server-1.yaml"), "utf8"), userData);
        const k8sFiles = fs.readdirSync(path.join(out, "k8s"));
        const objects = resources.filter((r) => r.type.startsWith("kubernetes:") && typeof (r.inputs as { kind?: unknown }).kind === "string");
        assert.equal(k8sFiles.length, objects.length);
        assert.ok(k8sFiles.some((f) => /secret-kube-system-hcloud\.yaml$/.test(f)));
    });

    it("writes and prints no secret value", async () => {
        // Same stack, same deterministic fakes: the in-process run knows every secret value.
        const { run: programRun } = await renderStack("prod");
        assert.ok(programRun.secretValues.size >= 3);
        const texts = [result.stdout, result.stderr, ...walk(out).map((f) => fs.readFileSync(f, "utf8"))];
        for (const secret of programRun.secretValues) {
            for (const text of texts) assert.ok(!text.includes(secret), "a secret value leaked into the render");
        }
        // The k3s config with the tokens is the stdin of each node's apply command.
        assert.ok(texts.some((t) => t.includes('"stdin": "[secret]"')), "the redaction marker shows where a secret was");
    });
});

describe("node tools/cli.cjs render from another directory", () => {
    it("runs the program in the project directory, as pulumi up does (build contexts resolve there), and writes --out relative to where it was started", () => {
        const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), "render-elsewhere-"));
        try {
            const r = run(process.execPath, [path.join(PROJECT_DIR, "tools", "cli.cjs"), "render", "--stack", "prod", "--out", "out-prod"], { cwd: elsewhere });
            assert.equal(r.status, 0, r.stderr);
            assert.ok(fs.existsSync(path.join(elsewhere, "out-prod", "resources.json")));
        } finally {
            fs.rmSync(elsewhere, { recursive: true, force: true });
        }
    });
});

describe("npm run render with bad input", () => {
    const stackFile = path.join(PROJECT_DIR, `Pulumi.render-cli-test-${process.pid}.yaml`);
    after(() => fs.rmSync(stackFile, { force: true }));

    it("prints every config problem with its key and fix, and exits 1", () => {
        fs.writeFileSync(stackFile, [
            "config:",
            "  platform:location: mars",
            '  platform:controlPlaneCount: "4"',
            "  platform:k3sVersion: latest",
            "  platform:adminCidrs:",
            "    - 10.0.0.0/40",
            "",
        ].join("\n"));
        const r = render(["--stack", `render-cli-test-${process.pid}`]);
        assert.equal(r.status, 1);
        assert.match(r.stderr, /Invalid stack configuration \(4 problems\)/);
        for (const key of ["platform:location", "platform:controlPlaneCount", "platform:k3sVersion", "platform:adminCidrs\\[0\\]"]) {
            assert.match(r.stderr, new RegExp(`- ${key}: `));
        }
        assert.match(r.stderr, /fix: pulumi config set platform:controlPlaneCount 3/);
        assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, "no stack trace for a config error");
        assert.equal(r.stdout, "");
    });

    it("names the stacks that exist when the stack file is missing", () => {
        const r = render(["--stack", "no-such-stack"]);
        assert.equal(r.status, 1);
        assert.match(r.stderr, /no stack file Pulumi\.no-such-stack\.yaml; stacks here: .*prod/);
    });
});

describe("npm run render --out: removes only what a render wrote", () => {
    let tmp: string;
    before(() => {
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "render-out-"));
    });
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));

    it("refuses a directory holding anything else, and leaves it untouched (--out . in a checkout)", () => {
        const checkout = path.join(tmp, "checkout");
        fs.mkdirSync(path.join(checkout, "src"), { recursive: true });
        fs.writeFileSync(path.join(checkout, "src", "index.ts"), "export {};\n");
        fs.writeFileSync(path.join(checkout, "resources.json"), "[]\n");
        const before = walk(checkout).sort();
        const r = render(["--stack", "dev", "--out", checkout]);
        assert.equal(r.status, 1);
        assert.match(r.stderr, /the directory holds files the render did not write \(src\/index\.ts\); the render only ever removes its own files/);
        assert.deepEqual(walk(checkout).sort(), before);
    });

    it("a new render removes the earlier one's files, even ones it no longer writes; a file added since is refused", () => {
        const out = path.join(tmp, "dev");
        assert.equal(render(["--stack", "dev", "--out", out, "--set", "agentCount=2"]).status, 0);
        assert.ok(fs.existsSync(path.join(out, "cloud-init", "dev-agent-2.yaml")));
        assert.equal(render(["--stack", "dev", "--out", out]).status, 0);
        assert.ok(!fs.existsSync(path.join(out, "cloud-init", "dev-agent-2.yaml")), "the removed agent's user-data is gone");
        assert.ok(fs.existsSync(path.join(out, "cloud-init", "dev-server-1.yaml")));
        fs.writeFileSync(path.join(out, "my-notes.md"), "mine\n");
        const r = render(["--stack", "dev", "--out", out]);
        assert.equal(r.status, 1);
        assert.match(r.stderr, /my-notes\.md/);
        assert.ok(fs.existsSync(path.join(out, "resources.json")), "nothing was removed");
    });

    it("a render rewrites only the files whose text changed", () => {
        const out = path.join(tmp, "rewrite");
        assert.equal(render(["--stack", "dev", "--out", out]).status, 0);
        const old = new Date(Date.now() - 3600_000);
        const files = ["resources.json", "cloud-init/dev-server-1.yaml", "outputs.json"];
        for (const f of files) fs.utimesSync(path.join(out, f), old, old);
        assert.equal(render(["--stack", "dev", "--out", out, "--set", "agentCount=1"]).status, 0);
        const changed = (f: string) => fs.statSync(path.join(out, f)).mtimeMs > old.getTime() + 1000;
        assert.ok(!changed("cloud-init/dev-server-1.yaml"), "the server's user-data is the same: left as it was");
        assert.ok(changed("resources.json"), "the new agent is in resources.json: rewritten");
        assert.ok(fs.existsSync(path.join(out, "cloud-init", "dev-agent-1.yaml")));
        assert.equal(fs.statSync(path.join(out, ".digest-key")).mode & 0o777, 0o600);
    });

    it("a failed render leaves no stale files, only a note saying why", () => {
        const out = path.join(tmp, "failing");
        assert.equal(render(["--stack", "dev", "--out", out]).status, 0);
        const r = render(["--stack", "dev", "--out", out, "--set", "controlPlaneCount=2"]);
        assert.equal(r.status, 1);
        assert.deepEqual(fs.readdirSync(out).sort(), [".render-files.json", "RENDER-FAILED.txt"]);
        assert.match(fs.readFileSync(path.join(out, "RENDER-FAILED.txt"), "utf8"), /platform:controlPlaneCount: must be odd/);
        assert.equal(render(["--stack", "dev", "--out", out]).status, 0);
        assert.ok(!fs.existsSync(path.join(out, "RENDER-FAILED.txt")), "the next render removes the note");
        // A failure with no earlier render there creates nothing.
        const fresh = path.join(tmp, "never");
        assert.equal(render(["--stack", "dev", "--out", fresh, "--set", "controlPlaneCount=2"]).status, 1);
        assert.ok(!fs.existsSync(fresh));
    });
});

describe("npm run render --set / --set-secret", () => {
    let tmp: string;
    before(() => {
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "render-set-"));
    });
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const resources = (out: string) => JSON.parse(fs.readFileSync(path.join(out, "resources.json"), "utf8")) as { name: string; inputs: Record<string, any> }[];

    it("sets nested keys as pulumi config set --path does: maps, list items, numbers and booleans typed", () => {
        const out = path.join(tmp, "path");
        const r = render(["--stack", "prod", "--out", out, "--set", "apps.api.replicas=5", "--set", "adminCidrs[1]=198.51.100.0/24", "--set", "apps.api.env.FEATURE_X=true"]);
        assert.equal(r.status, 0, r.stderr);
        const rs = resources(out);
        assert.equal(rs.find((x) => x.name === "api-deployment")?.inputs.spec.replicas, 5);
        const fw = rs.find((x) => x.name === "prod-fw")?.inputs.rules as { port?: string; sourceIps: string[] }[];
        assert.deepEqual(fw.find((x) => x.port === "22")?.sourceIps, ["203.0.113.0/24", "198.51.100.0/24"]);
        assert.equal(rs.find((x) => x.name === "api-env")?.inputs.data.FEATURE_X, "true");
    });

    it("warns about a setting that waits for another's value, and renders", () => {
        const r = render(["--stack", "prod", "--out", path.join(tmp, "warn"), "--set", "tls=off", "--set", "databaseMode=external", "--set-secret", "databaseUrl=postgresql://u:p@db.example.com/app?sslmode=require"]);
        assert.equal(r.status, 0, r.stderr);
        const output = r.stdout + r.stderr;
        assert.match(output, /platform:acmeEmail: only acts with tls letsencrypt or letsencrypt-staging: here it would be ignored \(pulumi config rm platform:acmeEmail\)/);
        assert.match(output, /platform:backupS3Bucket: only acts with the in-cluster database/);
    });

    it("refuses a path it cannot apply, naming it", () => {
        const gap = render(["--stack", "prod", "--out", path.join(tmp, "gap"), "--set", "adminCidrs[3]=198.51.100.0/24"]);
        assert.equal(gap.status, 1);
        assert.match(gap.stderr, /platform:adminCidrs\[3\]: the list has 1 item\(s\); set \[1\] to add one/);
        const plain = render(["--stack", "prod", "--out", path.join(tmp, "plain"), "--set", "location.zone=1"]);
        assert.equal(plain.status, 1);
        assert.match(plain.stderr, /platform:location is a plain value, not a map or list/);
        const malformed = render(["--stack", "prod", "--out", path.join(tmp, "bad"), "--set", "apps..replicas=2"]);
        assert.equal(malformed.status, 1);
        assert.match(malformed.stderr, /is not a config path \(an empty segment\)/);
    });

    it("--set-secret renders the value as a secret: never written, never printed", () => {
        const out = path.join(tmp, "secret");
        const value = "sk_live_offline_test_4f9a2c";
        const r = render(["--stack", "prod", "--out", out, "--set-secret", `apps.api.secrets.STRIPE_KEY=${value}`]);
        assert.equal(r.status, 0, r.stderr);
        for (const text of [r.stdout, r.stderr, ...walk(out).map((f) => fs.readFileSync(f, "utf8"))]) assert.ok(!text.includes(value));
        assert.ok(resources(out).some((x) => x.name === "api-secrets"));
    });
});

describe("offline render of encrypted settings", () => {
    const stack = `render-encrypted-${process.pid}`;
    const stackFile = path.join(PROJECT_DIR, `Pulumi.${stack}.yaml`);
    after(() => fs.rmSync(stackFile, { force: true }));

    it("renders external database mode with the encrypted URL the README tells users to store", async () => {
        const prod = fs.readFileSync(path.join(PROJECT_DIR, "Pulumi.prod.yaml"), "utf8");
        fs.writeFileSync(stackFile, `${prod}  platform:databaseMode: external\n  platform:databaseUrl:\n    secure: AAABAHrGoQ0example0ciphertext\n`);
        const r = await renderStack(stack);
        assert.equal((r.outputs.establishedSettings as { databaseMode: string }).databaseMode, "external");
        assert.ok(r.run.resources.every((x) => x.type !== "kubernetes:postgresql.cnpg.io/v1:Cluster"), "no in-cluster database in external mode");
    });

    it("names the file and the place of a YAML syntax error", () => {
        fs.writeFileSync(stackFile, "config:\n  platform:location: [fsn1\n");
        const r = render(["--stack", stack, "--out", path.join(os.tmpdir(), `never-${process.pid}`)]);
        assert.equal(r.status, 1);
        assert.match(r.stderr, new RegExp(`^Pulumi\\.${stack}\\.yaml: not valid YAML: .* at line 3, column 1`, "m"));
    });
});
