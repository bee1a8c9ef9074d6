// The offline plan (`npm run render -- --compare DIR`): which edits update in
// place, which replace or delete, and which the plan calls unsafe, by the
// providers' rules (tools/replace-rules.ts cites them).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { changedPaths, isRotation, type Plan, planRenders } from "../tools/plan";
import type { Render } from "../tools/render";
import { replacementReason } from "../tools/replace-rules";
import { run } from "./support/binaries";
import { PROJECT_DIR, render } from "./support/stack";

function byName(plan: Plan, name: string) {
    const e = plan.entries.find((x) => x.name === name);
    assert.ok(e, `no plan entry ${name}`);
    return e;
}

const changed = (plan: Plan) => plan.entries.filter((e) => e.action !== "same").map((e) => `${e.action} ${e.name}`).sort();

describe("replacement rules", () => {
    it("lists every changed leaf path, arrays by index", () => {
        assert.deepEqual(changedPaths({ a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [1, 3] }, d: true }), ["b.c[1]", "d"]);
        assert.deepEqual(changedPaths({ a: 1 }, { a: 1 }), []);
    });

    it("follows pulumi-kubernetes: selectors, Job templates, PVC class and Secret data replace; a PVC size or a pod template updates", () => {
        assert.match(String(replacementReason("kubernetes:apps/v1:Deployment", ["spec.selector.matchLabels.app"])), /spec\.selector/);
        assert.equal(replacementReason("kubernetes:apps/v1:Deployment", ["spec.template.spec.containers[0].image"]), undefined);
        assert.ok(replacementReason("kubernetes:batch/v1:Job", ["spec.template.spec.containers[0].image"]));
        assert.equal(replacementReason("kubernetes:core/v1:PersistentVolumeClaim", ["spec.resources.requests.storage"]), undefined);
        assert.ok(replacementReason("kubernetes:core/v1:PersistentVolumeClaim", ["spec.storageClassName"]));
        assert.ok(replacementReason("kubernetes:core/v1:Secret", ["stringData.DATABASE_URL"]));
        assert.ok(replacementReason("kubernetes:postgresql.cnpg.io/v1:Cluster", ["metadata.name"]));
        assert.equal(replacementReason("kubernetes:postgresql.cnpg.io/v1:Cluster", ["spec.storage.size"]), undefined, "custom resources replace only on name or namespace");
        assert.equal(replacementReason("kubernetes:helm.sh/v3:Release", ["version", "values.replicas"]), undefined);
        assert.ok(replacementReason("kubernetes:helm.sh/v3:Release", ["namespace"]));
    });

    it("follows terraform-provider-hcloud: a server's image or location replaces, its type resizes in place; a subnet always replaces", () => {
        assert.ok(replacementReason("hcloud:index/server:Server", ["image"]));
        assert.ok(replacementReason("hcloud:index/server:Server", ["location"]));
        assert.equal(replacementReason("hcloud:index/server:Server", ["serverType"]), undefined);
        assert.ok(replacementReason("hcloud:index/network:Network", ["ipRange"]));
        assert.ok(replacementReason("hcloud:index/networkSubnet:NetworkSubnet", ["labels.x"]));
        assert.equal(replacementReason("hcloud:index/firewall:Firewall", ["rules[0].sourceIps[0]"]), undefined);
        assert.ok(replacementReason("random:index/randomBytes:RandomBytes", ["keepers.generation"]));
        assert.ok(replacementReason("command:remote:Command", ["triggers[0]"]));
        assert.equal(replacementReason("command:remote:Command", ["create"]), undefined);
    });
});

describe("plans between renders of the prod stack", () => {
    let base: Render;
    before(async () => {
        base = await render("prod");
    });

    it("an unchanged config plans nothing", async () => {
        const again = await render("prod");
        const plan = planRenders(base.resources, again.resources);
        assert.deepEqual(changed(plan), []);
        assert.equal(plan.destructive.length, 0);
    });

    it("more database storage updates the Cluster in place (CloudNativePG resizes the volumes)", async () => {
        const plan = planRenders(base.resources, (await render("prod", { "platform:postgresStorage": "40Gi" })).resources);
        assert.deepEqual(changed(plan), ["update prod-database-cluster"]);
        assert.deepEqual(byName(plan, "prod-database-cluster").paths, ["spec.storage.size"]);
        assert.equal(plan.destructive.length, 0);
    });

    it("more agents create servers and touch nothing that exists", async () => {
        const plan = planRenders(base.resources, (await render("prod", { "platform:agentCount": "2" })).resources);
        assert.ok(plan.entries.filter((e) => e.action !== "same" && e.action !== "create").length === 0, changed(plan).join("\n"));
        assert.ok(changed(plan).includes("create prod-agent-2"));
    });

    it("a password rotation replaces the idle login's generated password and the Secrets that carry it: a rotation, not destructive", async () => {
        const apps = (v: number) => JSON.stringify({ api: { image: "ghcr.io/acme/api:1.0.0", database: true, databasePasswordVersion: v, migrationCommand: ["migrate"] } });
        const before1 = await render("prod", { "platform:apps": apps(1) });
        const plan = planRenders(before1.resources, (await render("prod", { "platform:apps": apps(2) })).resources);
        const rotated = plan.entries.filter((e) => e.type === "random:index/randomBytes:RandomBytes" && e.action === "replace");
        assert.equal(rotated.length, 1, changed(plan).join("\n"));
        assert.ok(isRotation(rotated[0]) && rotated[0].stateful);
        const loginSecret = byName(plan, "prod-database-api-login-2");
        assert.equal(loginSecret.action, "replace");
        assert.ok(loginSecret.paths.every((p) => p.includes("(secret")), "the plan says a secret changed, never its value");
        assert.equal(plan.destructive.length, 0, plan.destructive.map((e) => e.name).join(", "));
    });

    it("renaming the cluster rebuilds everything: the plan shows it as destructive (servers, addresses, network, database deleted)", async () => {
        const plan = planRenders(base.resources, (await render("prod", { "platform:clusterName": "renamed" })).resources);
        const deleted = plan.destructive.filter((e) => e.action === "delete").map((e) => e.type);
        for (const type of ["hcloud:index/server:Server", "hcloud:index/primaryIp:PrimaryIp", "hcloud:index/network:Network", "kubernetes:postgresql.cnpg.io/v1:Cluster"]) {
            assert.ok(deleted.includes(type), `${type} not among the destructive deletions`);
        }
    });
});

describe("npm run render -- --compare", () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "plan-cli-"));
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const cli = (args: string[]) => run(path.join(PROJECT_DIR, "node_modules", ".bin", "tsx"), [path.join(PROJECT_DIR, "tools", "render.ts"), ...args], { cwd: PROJECT_DIR });

    it("prints the plan, writes plan.json, exits 0 when safe and 2 when it would delete something stateful", () => {
        const earlier = path.join(tmp, "earlier");
        assert.equal(cli(["--stack", "prod", "--out", earlier]).status, 0);

        const safe = cli(["--stack", "prod", "--out", path.join(tmp, "safe"), "--compare", earlier, "--set", "postgresStorage=40Gi"]);
        assert.equal(safe.status, 0, safe.stderr);
        assert.match(safe.stdout, /^update \(1\):$/m);
        assert.match(safe.stdout, /Safe: nothing stateful is replaced or deleted\./);
        const plan = JSON.parse(fs.readFileSync(path.join(tmp, "safe", "plan.json"), "utf8")) as Record<string, unknown>[];
        assert.deepEqual(plan.map((e) => Object.keys(e).sort()), [["action", "name", "paths", "protected", "stateful", "type", "urn"]]);
        assert.equal(plan[0].action, "update");

        const unsafe = cli(["--stack", "prod", "--out", path.join(tmp, "unsafe"), "--compare", earlier, "--set", "clusterName=renamed"]);
        assert.equal(unsafe.status, 2, unsafe.stderr);
        assert.match(unsafe.stdout, /^UNSAFE: \d+ stateful resource\(s\) would be replaced or deleted: /m);

        const missing = cli(["--stack", "prod", "--out", path.join(tmp, "x"), "--compare", path.join(tmp, "nowhere")]);
        assert.equal(missing.status, 1);
        assert.match(missing.stderr, /no resources\.json there/);
    });
});
