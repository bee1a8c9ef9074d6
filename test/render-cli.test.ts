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

const TSX = path.join(PROJECT_DIR, "node_modules", ".bin", "tsx");

function render(args: string[]): { status: number; stdout: string; stderr: string } {
    return run(TSX, [path.join(PROJECT_DIR, "tools", "render.ts"), ...args], { cwd: PROJECT_DIR });
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
