// What we generate, checked by the real tools that will consume it:
// cloud-init's own schema validator, shellcheck, and the Kubernetes schema.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { Render } from "../tools/render";
import { requireBinary, run } from "./support/binaries";
import { validateKubernetesObject } from "./support/k8s-schema";
import { PROJECT_DIR, render } from "./support/stack";

/** Custom resources we create; test/crd-contract.test.ts validates them against their vendored CRDs. */
const CUSTOM_KINDS = new Set([
    "helm.cattle.io/v1 HelmChart", "helm.cattle.io/v1 HelmChartConfig", "traefik.io/v1alpha1 Middleware",
    "cert-manager.io/v1 ClusterIssuer", "upgrade.cattle.io/v1 Plan",
    "postgresql.cnpg.io/v1 Cluster", "postgresql.cnpg.io/v1 Pooler", "postgresql.cnpg.io/v1 Database",
    "barmancloud.cnpg.io/v1 ObjectStore", "postgresql.cnpg.io/v1 ScheduledBackup",
]);

let tmp: string;
const renders: Render[] = [];

before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "platform-integration-"));
    renders.push(await render("prod"));
    renders.push(await render("dev"));
    renders.push(await render("prod", { "platform:agentCount": "2", "platform:apiHostname": "k8s.example.com" }));
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cloudInitFiles(): [string, string][] {
    return renders.flatMap((r) => [...r.files].filter(([f]) => f.startsWith("cloud-init/")).map(([f, text]): [string, string] => [`${r.stack}/${f}`, text]));
}

describe("cloud-init schema", () => {
    it("accepts every rendered user-data", (t) => {
        if (!requireBinary(t, "cloud-init")) return;
        const files = cloudInitFiles();
        assert.ok(files.length >= 1 + 3 + 5, `expected user-data of every node, got ${files.length}`);
        for (const [name, text] of files) {
            const file = path.join(tmp, name.replace(/\//g, "_"));
            fs.writeFileSync(file, text);
            const r = run("cloud-init", ["schema", "--config-file", file]);
            assert.equal(r.status, 0, `${name}: ${r.stdout}${r.stderr}`);
            assert.match(r.stdout, /Valid cloud-config/);
        }
    });

    it("rejects a broken user-data (the check can fail)", (t) => {
        if (!requireBinary(t, "cloud-init")) return;
        const file = path.join(tmp, "broken.yaml");
        fs.writeFileSync(file, "#cloud-config\nwrite_files: not-a-list\nruncmd: 42\n");
        const r = run("cloud-init", ["schema", "--config-file", file]);
        assert.notEqual(r.status, 0, r.stdout);
    });
});

describe("shellcheck", () => {
    const scripts = [
        ...["scripts", "tools"].flatMap((dir) => fs.readdirSync(path.join(PROJECT_DIR, dir)).filter((f) => f.endsWith(".sh")).map((f) => path.join(dir, f))),
        path.join(".ci", "run"),
    ];

    it("finds no problem in any shell script we ship", (t) => {
        if (!requireBinary(t, "shellcheck")) return;
        assert.ok(scripts.length >= 3, scripts.join(", "));
        for (const script of scripts) {
            const r = run("shellcheck", ["--shell=bash", "--severity=style", script], { cwd: PROJECT_DIR });
            assert.equal(r.status, 0, `${script}:\n${r.stdout}${r.stderr}`);
        }
    });

    it("reports a real problem (the check can fail)", (t) => {
        if (!requireBinary(t, "shellcheck")) return;
        const r = run("shellcheck", ["--shell=bash", "-"], { input: "#!/bin/bash\nrm -rf $dir/*\n" });
        assert.notEqual(r.status, 0);
        assert.match(r.stdout, /SC2086/);
    });
});

describe("Kubernetes schema", () => {
    it("validates every rendered Kubernetes object", async () => {
        let known = 0;
        for (const r of renders) {
            for (const [file, text] of r.files) {
                if (!file.startsWith("k8s/")) continue;
                for (const doc of parseAllDocuments(text)) {
                    const obj: unknown = doc.toJS();
                    const result = await validateKubernetesObject(obj);
                    assert.deepEqual(result.errors, [], `${r.stack}/${file}`);
                    const o = obj as { apiVersion: string; kind: string };
                    if (result.known) known += 1;
                    else assert.ok(CUSTOM_KINDS.has(`${o.apiVersion} ${o.kind}`), `${r.stack}/${file}: no schema for ${o.apiVersion} ${o.kind}`);
                }
            }
        }
        assert.ok(known >= 20, `only ${known} objects were schema-checked`);
    });
});
