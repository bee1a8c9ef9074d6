// The offline plan (`npm run render -- --compare DIR`): which edits update in
// place, which replace or delete, and which the plan calls unsafe, by the
// providers' rules (tools/replace-rules.ts cites them).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { monthlyCost, volumeGb } from "../policies/rules/cost";
import { criticalPath } from "../tools/critical-path";
import { HETZNER_PRICES } from "../policies/rules/hetzner-prices";
import { changedPaths, isRotation, type Plan, planRenders } from "../tools/plan";
import type { Render, RenderedResource } from "../tools/render";
import { replacementReason } from "../tools/replace-rules";
import { run } from "./support/binaries";
import { PROJECT_DIR, render, transitiveDependencies } from "./support/stack";

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

describe("plans of hand-made resource lists", () => {
    const resource = (over: Partial<RenderedResource>): RenderedResource => ({ urn: "urn:pulumi:s::p::t::n", type: "hcloud:index/server:Server", name: "n", inputs: {}, ...over });

    it("honours ignoreChanges, says when the program deletes before replacing, and compares secrets by digest only", () => {
        const before = [resource({ inputs: { image: "ubuntu-24.04", userData: "a" }, ignoreChanges: ["userData"] })];
        const ignored = planRenders(before, [resource({ inputs: { image: "ubuntu-24.04", userData: "b" }, ignoreChanges: ["userData"] })]);
        assert.equal(ignored.entries[0].action, "same");
        const replaced = planRenders(before, [resource({ inputs: { image: "ubuntu-26.04", userData: "a" }, deleteBeforeReplace: true })]);
        assert.equal(replaced.entries[0].action, "replace");
        assert.match(String(replaced.entries[0].reason), /image: the provider replaces Server on this change; deleteBeforeReplace: the old one is deleted before/);
        assert.equal(replaced.destructive.length, 1);
        const secret = (digest: string) => resource({ type: "kubernetes:core/v1:ConfigMap", inputs: { data: { k: "[secret]" } }, secretDigests: { "data.k": digest } });
        assert.equal(planRenders([secret("aa")], [secret("aa")]).entries[0].action, "same");
        const changed = planRenders([secret("aa")], [secret("bb")]).entries[0];
        assert.deepEqual([changed.action, changed.paths], ["replace", ["data.k (secret)"]]);
        assert.ok(!JSON.stringify(changed).includes("aa") && !JSON.stringify(changed).includes("bb"), "no digest in the plan");
    });
});

describe("plans between renders of the prod stack", () => {
    let base: Render;
    before(async () => {
        base = await render("prod");
    });

    it("everything that holds the database's data is protected and retained on delete, its namespace included", () => {
        const holders = base.resources.filter((r) => ["kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:postgresql.cnpg.io/v1:Cluster"].includes(r.type)
            || (r.type === "kubernetes:core/v1:Namespace" && (r.inputs as { metadata: { name: string } }).metadata.name === "database"));
        assert.equal(holders.length, 3, holders.map((r) => r.name).join(", "));
        for (const r of holders) assert.ok(r.protect && r.retainOnDelete, `${r.name} is not protected and retained`);
    });

    it("an unchanged config plans nothing", async () => {
        const again = await render("prod");
        const plan = planRenders(base.resources, again.resources);
        assert.deepEqual(changed(plan), []);
        assert.equal(plan.destructive.length, 0);
    });

    it("more database storage updates the Cluster in place (CloudNativePG resizes the volumes)", async () => {
        const plan = planRenders(base.resources, (await render("prod", { "platform:postgresStorage": "40Gi" })).resources);
        // The object-store drill's scratch Cluster (a manifest in a ConfigMap) follows the size: a ConfigMap, replaced, holds no data.
        assert.deepEqual(changed(plan), ["replace prod-database-pitr-drill-cluster", "update prod-database-cluster"]);
        assert.equal(byName(plan, "prod-database-pitr-drill-cluster").stateful, false);
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

    it("a cluster rename, were it not refused (settings-walk.test.ts), would rebuild everything: the plan shows it as destructive", async () => {
        const plan = planRenders(base.resources, (await render("prod", { "platform:clusterName": "renamed" })).resources);
        const deleted = plan.destructive.filter((e) => e.action === "delete").map((e) => e.type);
        for (const type of ["hcloud:index/server:Server", "hcloud:index/primaryIp:PrimaryIp", "hcloud:index/network:Network"]) {
            assert.ok(deleted.includes(type), `${type} not among the destructive deletions`);
        }
        // The database objects are retained on delete: Pulumi forgets them, the cluster keeps them.
        const cluster = plan.entries.find((e) => e.type === "kubernetes:postgresql.cnpg.io/v1:Cluster" && e.action === "delete");
        assert.ok(cluster && !plan.destructive.includes(cluster));
    });
});

describe("npm run render -- --compare", () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "plan-cli-"));
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const cli = (args: string[]) => run(process.execPath, [path.join(PROJECT_DIR, "tools", "cli.cjs"), "render", ...args], { cwd: PROJECT_DIR });

    it("prints the plan, writes plan.json, exits 0 when safe and 2 when it would delete something stateful", () => {
        const earlier = path.join(tmp, "earlier");
        assert.equal(cli(["--stack", "prod", "--out", earlier]).status, 0);

        const safe = cli(["--stack", "prod", "--out", path.join(tmp, "safe"), "--compare", earlier, "--set", "postgresStorage=40Gi"]);
        assert.equal(safe.status, 0, safe.stderr);
        assert.match(safe.stdout, /^update \(1\):$/m);
        assert.match(safe.stdout, /^replace \(1\):$/m);
        assert.match(safe.stdout, /Safe: nothing stateful is replaced or deleted\./);
        const plan = JSON.parse(fs.readFileSync(path.join(tmp, "safe", "plan.json"), "utf8")) as Record<string, unknown>[];
        const keys = ["action", "name", "paths", "protected", "stateful", "type", "urn"];
        assert.deepEqual(plan.map((e) => [e.action, Object.keys(e).sort()]).sort(), [["replace", [...keys.slice(0, 4), "reason", ...keys.slice(4)]], ["update", keys]]);

        // Fewer agents: the documented removal (drain first) deletes servers, which CI should stop for review.
        const withAgents = path.join(tmp, "with-agents");
        assert.equal(cli(["--stack", "prod", "--out", withAgents, "--set", "agentCount=2"]).status, 0);
        const unsafe = cli(["--stack", "prod", "--out", path.join(tmp, "unsafe"), "--compare", withAgents]);
        assert.equal(unsafe.status, 2, unsafe.stderr);
        assert.match(unsafe.stdout, /^UNSAFE: \d+ stateful resource\(s\) would be replaced or deleted: .*prod-agent-2/m);

        // The earlier deployment is played back: an edit the program refuses fails here as in `pulumi up`.
        const refused = cli(["--stack", "prod", "--out", path.join(tmp, "refused"), "--compare", earlier, "--set", "clusterName=renamed"]);
        assert.equal(refused.status, 1);
        assert.match(refused.stderr, /platform:clusterName: the cluster was created as 'prod'/);

        const missing = cli(["--stack", "prod", "--out", path.join(tmp, "x"), "--compare", path.join(tmp, "nowhere")]);
        assert.equal(missing.status, 1);
        assert.match(missing.stderr, /no resources\.json there/);
    });
});

describe("destroy and disaster recovery (docs/operations.md)", () => {
    const destroySection = () => {
        const doc = fs.readFileSync(path.join(PROJECT_DIR, "docs", "operations.md"), "utf8");
        return doc.slice(doc.indexOf("## Destroy and rebuild"), doc.indexOf("## Rotate the Hetzner API token"));
    };

    it("no stack creates a LoadBalancer or NodePort Service: the cloud controller never makes a load balancer Pulumi does not know", async () => {
        for (const stack of ["prod", "dev", "local"]) {
            const r = await render(stack);
            for (const svc of r.resources.filter((x) => x.type === "kubernetes:core/v1:Service")) {
                const type = (svc.inputs as { spec?: { type?: string } }).spec?.type ?? "ClusterIP";
                assert.equal(type, "ClusterIP", `${stack}: ${svc.name}`);
            }
            const traefik = r.resources.find((x) => x.type === "kubernetes:helm.cattle.io/v1:HelmChartConfig");
            if (traefik) assert.match(String((traefik.inputs as { spec: { valuesContent: string } }).spec.valuesContent), /service:\n\s+type: ClusterIP/);
        }
    });

    it("the runbook names everything destroy keeps, and finds the retained volumes by the labels the CSI driver gives them", async () => {
        const r = await render("prod");
        const section = destroySection();
        for (const kept of r.resources.filter((x) => x.retainOnDelete)) {
            const meta = (kept.inputs as { metadata: { name: string } }).metadata;
            const kind = kept.type.split(":").pop() as string;
            assert.ok(section.includes(`\`${meta.name}\``) || section.includes(`${kind}s`), `the runbook does not name ${kind} ${meta.name}`);
        }
        const csi = r.resources.find((x) => x.name === "prod-addons-hcloud-csi");
        const values = parse((csi?.inputs as { spec: { valuesContent: string } }).spec.valuesContent) as { controller: { volumeExtraLabels: Record<string, string> } };
        assert.deepEqual(values.controller.volumeExtraLabels, { cluster: "prod", stack: "prod", "managed-by": "hcloud-csi" });
        const selector = /hcloud volume list -l (\w+)=(\S+)/.exec(section);
        assert.ok(selector, "the runbook lists volumes by label");
        const labels: Record<string, string> = values.controller.volumeExtraLabels;
        assert.equal(labels[selector[1]], selector[2], "the runbook's selector matches the labels");
    });
});

describe("monthly cost", () => {
    it("prices a claim as the CSI driver sizes its volume: whole GiB, rounded up, at least 10", () => {
        assert.equal(volumeGb("20Gi"), 20);
        assert.equal(volumeGb("2Gi"), 10);
        assert.equal(volumeGb("15G"), 14);
        assert.equal(volumeGb("1Ti"), 1024);
    });

    it("counts prod's servers, load balancer, addresses, every database volume (3 instances and the backups) and its object storage", async () => {
        const cost = monthlyCost((await render("prod")).resources, true);
        const line = (item: string) => cost.lines.find((l) => l.item === item);
        assert.deepEqual([line("servers")?.quantity, line("servers")?.unit], [3, "cx33"]);
        assert.equal(line("servers")?.monthly, Math.round(3 * HETZNER_PRICES.servers.cx33 * 100) / 100);
        assert.equal(line("load balancer")?.unit, "lb11");
        assert.equal(line("primary IPv4")?.quantity, 3);
        assert.equal(line("volumes")?.quantity, 3 * 20 + 20, "postgresStorage 20Gi x 3 instances + backupStorage 20Gi");
        // prod keeps its backups in Hetzner Object Storage: one base price.
        assert.equal(line("object storage")?.monthly, HETZNER_PRICES.objectStorageBase);
        assert.equal(cost.total, Math.round(cost.lines.reduce((s, l) => s + l.monthly, 0) * 100) / 100);
        const withoutS3 = monthlyCost((await render("dev")).resources, true);
        assert.equal(withoutS3.lines.find((l) => l.item === "object storage"), undefined);
    });

    it("counts nothing of a cluster it did not create (existing mode)", async () => {
        const cost = monthlyCost((await render("local")).resources, false);
        assert.equal(cost.total, 0);
        assert.match(cost.notes.join("\n"), /existing mode/);
    });

    it("prints the cost delta of an edit and fails a render above monthlyCostCap", () => {
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cost-cli-"));
        try {
            const cli = (args: string[]) => run(process.execPath, [path.join(PROJECT_DIR, "tools", "cli.cjs"), "render", ...args], { cwd: PROJECT_DIR });
            const earlier = path.join(tmp, "earlier");
            assert.equal(cli(["--stack", "prod", "--out", earlier]).status, 0);
            const more = cli(["--stack", "prod", "--out", path.join(tmp, "more"), "--compare", earlier, "--set", "agentCount=2"]);
            assert.equal(more.status, 0, more.stderr);
            const added = 2 * HETZNER_PRICES.servers.cx33 + 2 * HETZNER_PRICES.primaryIpv4;
            assert.match(more.stdout, new RegExp(`^Monthly cost: EUR [\\d.]+ -> [\\d.]+ \\(\\+${added.toFixed(2)}\\)$`, "m"));
            const capped = cli(["--stack", "prod", "--out", path.join(tmp, "capped"), "--set", "monthlyCostCap=20"]);
            assert.equal(capped.status, 2);
            assert.match(capped.stdout, /^OVER THE CAP: the monthly cost EUR [\d.]+ is above platform:monthlyCostCap 20\.00$/m);
        } finally {
            fs.rmSync(tmp, { recursive: true, force: true });
        }
    });
});

describe("critical path of a first up", () => {
    let prod: Render;
    before(async () => {
        prod = await render("prod");
    });
    const named = (name: string) => {
        const r = prod.run.resources.find((x) => x.name === name);
        assert.ok(r, name);
        return r;
    };
    const waitedFor = (name: string) => new Set([...transitiveDependencies(prod, named(name))].map((u) => u.split("::").pop()));

    it("independent work is not serialised: the image builds while the cluster comes up, servers are created in parallel", () => {
        const image = prod.run.resources.find((x) => x.type === "docker-build:index:Image");
        assert.ok(image);
        const imageWaits = [...transitiveDependencies(prod, image)].map((u) => prod.run.resources.find((x) => x.urn === u)?.type ?? "");
        assert.deepEqual(imageWaits.filter((t) => /^(hcloud|command|kubernetes):/.test(t)), [], "the image build waits for no server, command or Kubernetes object");
        for (const server of ["prod-server-1", "prod-server-2", "prod-server-3"]) {
            const others = [...waitedFor(server)].filter((n) => /^prod-server-\d$/.test(String(n)));
            assert.deepEqual(others, [], `${server} waits for another server`);
        }
    });

    it("the ingress and the database do not wait for each other's work (only for the one Job that proves pods schedule, and the backup plugin for cert-manager)", () => {
        const database = prod.run.resources.filter((x) => x.name.startsWith("prod-database-"));
        const ingressWork = prod.run.resources.filter((x) => x.name.startsWith("prod-ingress-") && !x.name.startsWith("prod-ingress-traefik-crds")).map((x) => x.urn);
        // plugin-barman-cloud's manifest takes its TLS certificates from cert-manager (its docs: cert-manager is a prerequisite).
        const needsCertManager = new Set(["prod-database-barman-cloud", "prod-database-object-store", "prod-database-postgres-pitr-drill"]);
        for (const d of database) {
            const waits = transitiveDependencies(prod, d);
            const expected = needsCertManager.has(d.name) || [...waits].some((u) => u.endsWith("::prod-database-barman-cloud")) ? ["prod-ingress-cert-manager"] : [];
            assert.deepEqual(ingressWork.filter((u) => waits.has(u)).map((u) => u.split("::").pop()), expected, `${d.name} waits for ingress work`);
        }
        const databaseUrns = new Set(database.map((x) => x.urn));
        for (const i of prod.run.resources.filter((x) => x.name.startsWith("prod-ingress-"))) {
            assert.deepEqual([...transitiveDependencies(prod, i)].filter((u) => databaseUrns.has(u)), [], `${i.name} waits for the database`);
        }
    });

    it("is a real chain: each step waits for the one before; prod's runs through the servers, the database and the app", () => {
        const path = criticalPath(prod.resources);
        for (let i = 1; i < path.chain.length; i++) {
            assert.ok(waitedFor(path.chain[i].name).has(path.chain[i - 1].name), `${path.chain[i].name} does not wait for ${path.chain[i - 1].name}`);
        }
        assert.equal(path.seconds, path.chain.reduce((s, step) => s + step.seconds, 0));
        const names = path.chain.map((s) => s.name);
        for (const step of ["prod-bootstrap", "prod-credential", "prod-database-api-login-check", "api-deployment"]) assert.ok(names.includes(step), names.join(" -> "));
    });
});
