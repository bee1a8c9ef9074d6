// Every setting of the README's configuration reference, changed on a deployed
// stack to another valid value: the program refuses it before any change (key,
// why, the command that sets it back), or its plan replaces and deletes nothing
// stateful; where the change rolls through the cluster, the program's own
// mechanism does it (k3s config re-applied per node, upgrade Plans, the
// operator's rolling restart). The earlier deployment is played back as
// `--compare` does (its outputs and its Hetzner servers and network).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { isConfigError, parseConfig, plainAppSecretsInStackFile } from "../components/config";
import { type Plan, planRenders } from "../tools/plan";
import { earlierState, type Render, renderConfig } from "../tools/render";
import { readStackConfig, withPlaceholderHcloudToken } from "../tools/stack-config";
import { PROJECT_DIR, render } from "./support/stack";

type Expect =
    | { readonly kind: "refused" }
    /** Deletes or replaces something stateful, flagged by the plan (exit 2), after a documented procedure (a heading of docs/operations.md). */
    | { readonly kind: "procedure"; readonly doc: string }
    | { readonly kind: "safe" }
    /** Safe, and the change is carried out by these resources (names matched). */
    | { readonly kind: "rolling"; readonly by: RegExp };

interface Case {
    /** The key as the reference names it. */
    readonly key: string;
    readonly stack: "prod" | "local";
    /** Settings of the deployed stack beside the committed ones (e.g. S3 configured). */
    readonly deployed?: Readonly<Record<string, string>>;
    readonly value: string;
    /** Settings that must change with it to be valid (e.g. databaseUrl with databaseMode external). */
    readonly with?: Readonly<Record<string, string>>;
    readonly expect: Expect;
    /** Why, for the table's reader. */
    readonly note?: string;
}

const refused: Expect = { kind: "refused" };
const safe: Expect = { kind: "safe" };
const rolling = (by: RegExp): Expect => ({ kind: "rolling", by });
const K3S_CONFIG = /-k3s-config$|^prod-bootstrap$/;
const etcdS3 = { "platform:etcdS3Bucket": "etcd-backups", "platform:etcdS3AccessKey": "AK", "platform:etcdS3SecretKey": "etcd-s3-secret-value" };
const backupS3 = { "platform:backupS3Bucket": "db-backups", "platform:backupS3AccessKey": "AK", "platform:backupS3SecretKey": "backup-s3-secret-value" };
const external = { "platform:databaseMode": "external", "platform:databaseUrl": "postgresql://u:p@db.example.com/app?sslmode=require" };
const apps = (change: Record<string, unknown>) => JSON.stringify({
    api: { build: { context: "examples/api" }, host: "api.example.com", replicas: 3, migrationCommand: ["/nodejs/bin/node", "dist/migrate.js"], database: true, env: { DB_MAX_CONNECTIONS: "10", LOG_LEVEL: "info" }, ...change },
});

const CASES: readonly Case[] = [
    { key: "mode", stack: "prod", value: "existing", expect: refused },
    { key: "clusterName", stack: "prod", value: "renamed", expect: refused },
    { key: "location", stack: "prod", value: "nbg1", expect: refused },
    { key: "controlPlaneCount", stack: "prod", value: "5", expect: safe, note: "new servers join; lowering is refused (below)" },
    { key: "controlPlaneCount", stack: "prod", value: "1", expect: refused },
    { key: "controlPlaneServerType", stack: "prod", value: "cx43", expect: refused, note: "all servers at once: resize one at a time (docs/operations.md)" },
    { key: "agentCount", stack: "prod", value: "2", expect: safe },
    { key: "agentCount", stack: "prod", deployed: { "platform:agentCount": "2" }, value: "1", expect: { kind: "procedure", doc: "### Agents" },
        note: "deletes agent-2: the plan exits 2; drain it first (docs/operations.md)" },
    { key: "agentServerType", stack: "prod", deployed: { "platform:agentCount": "2" }, value: "cx43", expect: safe },
    { key: "serverImage", stack: "prod", value: "ubuntu-26.04", expect: safe, note: "servers ignore image changes: new nodes only" },
    { key: "k3sVersion", stack: "prod", value: "v1.34.7+k3s1", expect: rolling(/-upgrades-plan-(server|agent)$/), note: "system-upgrade-controller, one server at a time" },
    { key: "adminCidrs", stack: "prod", value: JSON.stringify(["203.0.113.0/24"]), expect: safe },
    { key: "loadBalancer", stack: "prod", value: "false", expect: safe },
    { key: "loadBalancerType", stack: "prod", value: "lb21", expect: safe },
    { key: "loadBalancerApi", stack: "prod", value: "true", expect: safe },
    { key: "apiHostname", stack: "prod", value: "k8s.example.com", expect: rolling(K3S_CONFIG), note: "tls-san: k3s config re-applied node by node" },
    { key: "protection", stack: "prod", value: "false", expect: safe },
    { key: "networkCidr", stack: "prod", value: "10.0.0.0/15", expect: refused },
    { key: "subnetCidr", stack: "prod", value: "10.0.2.0/24", expect: refused },
    { key: "etcdSnapshotSchedule", stack: "prod", value: "0 */4 * * *", expect: rolling(K3S_CONFIG) },
    { key: "etcdSnapshotRetention", stack: "prod", value: "30", expect: rolling(K3S_CONFIG) },
    { key: "etcdS3Bucket", stack: "prod", deployed: etcdS3, value: "other-bucket", expect: safe, note: "k3s reads its Secret at each snapshot" },
    { key: "etcdS3AccessKey", stack: "prod", deployed: etcdS3, value: "AK2", expect: safe },
    { key: "etcdS3SecretKey", stack: "prod", deployed: etcdS3, value: "another-secret-value", expect: safe },
    { key: "etcdS3Endpoint", stack: "prod", deployed: etcdS3, value: "nbg1.your-objectstorage.com", expect: safe, note: "k3s reads its Secret at each snapshot" },
    { key: "etcdS3Folder", stack: "prod", deployed: etcdS3, value: "snapshots", expect: safe, note: "k3s reads its Secret at each snapshot" },
    { key: "etcdS3Region", stack: "prod", deployed: etcdS3, value: "nbg1", expect: safe, note: "k3s reads its Secret at each snapshot" },
    { key: "clusterCredentialVersion", stack: "prod", value: "2", expect: rolling(/-credential$/), note: "a new token for Pulumi, the old one revoked" },
    { key: "tls", stack: "prod", value: "letsencrypt-staging", expect: safe },
    { key: "acmeEmail", stack: "prod", value: "ops@example.org", expect: safe },
    { key: "certManager", stack: "prod", value: "existing", expect: safe },
    { key: "ingressClass", stack: "local", value: "nginx", expect: safe },
    { key: "ingressNamespace", stack: "local", value: "ingress-nginx", expect: safe },
    { key: "ingressPodSelector", stack: "local", value: "app.kubernetes.io/name=ingress-nginx", expect: safe },
    { key: "registryServer", stack: "prod", value: "registry.example.com/acme", expect: safe },
    { key: "registryUsername", stack: "prod", value: "other-ci", expect: safe },
    { key: "registryPassword", stack: "prod", value: "another-registry-token", expect: safe },
    { key: "apps", stack: "prod", value: apps({ replicas: 4 }), expect: safe },
    { key: "databaseMode", stack: "prod", value: "external", with: { "platform:databaseUrl": external["platform:databaseUrl"] }, expect: refused },
    { key: "databaseUrl", stack: "prod", deployed: external, value: "postgresql://u:p@db2.example.com/app?sslmode=require", expect: safe },
    { key: "postgresInstances", stack: "prod", value: "2", expect: safe },
    { key: "postgresMajor", stack: "prod", value: "18", expect: safe, note: "CloudNativePG upgrades the major in place" },
    { key: "postgresMajor", stack: "prod", value: "16", expect: refused },
    { key: "cnpgOperator", stack: "prod", value: "existing", expect: refused },
    { key: "postgresStorageClass", stack: "local", deployed: { "platform:postgresStorageClass": "local-path-retain" }, value: "other-retain", expect: refused,
        note: "a volume's class cannot change: the backup claim would be replaced" },
    { key: "databaseImportUrl", stack: "prod", value: "postgresql://u:p@old.example.com/app?sslmode=require", expect: safe, note: "read only when the Cluster is created" },
    { key: "postgresStorage", stack: "prod", value: "40Gi", expect: safe },
    { key: "postgresStorage", stack: "prod", value: "10Gi", expect: refused },
    { key: "postgresCpu", stack: "prod", value: "2", expect: safe, note: "the operator restarts replicas first, then switches over" },
    { key: "postgresMemory", stack: "prod", value: "4Gi", expect: safe },
    { key: "postgresMaxConnections", stack: "prod", value: "300", expect: safe },
    { key: "pgbouncerPoolSize", stack: "prod", value: "25", expect: safe },
    { key: "pgbouncerReservePool", stack: "prod", value: "3", expect: safe },
    { key: "pgbouncerMaxClientConn", stack: "prod", value: "200", expect: safe },
    { key: "pgbouncerReplicas", stack: "prod", value: "3", expect: safe },
    { key: "backupSchedule", stack: "prod", value: "0 2 * * *", expect: safe },
    { key: "backupRetentionDays", stack: "prod", value: "14", expect: safe },
    { key: "backupStorage", stack: "prod", value: "40Gi", expect: safe },
    { key: "backupStorage", stack: "prod", value: "10Gi", expect: refused },
    { key: "backupS3Bucket", stack: "prod", deployed: backupS3, value: "db-backups-2", expect: safe },
    { key: "backupS3AccessKey", stack: "prod", deployed: backupS3, value: "AK2", expect: safe },
    { key: "backupS3SecretKey", stack: "prod", deployed: backupS3, value: "another-backup-secret", expect: safe },
    { key: "backupS3Endpoint", stack: "prod", deployed: backupS3, value: "nbg1.your-objectstorage.com", expect: safe },
    { key: "backupS3Region", stack: "prod", deployed: backupS3, value: "nbg1", expect: safe },
    { key: "restoreDrillSchedule", stack: "prod", value: "0 6 * * 0", expect: safe },
    { key: "restoreDrillCheckQuery", stack: "prod", value: "SELECT true", expect: safe },
    { key: "kubeContext", stack: "local", value: "kind-other", expect: refused },
    { key: "kubeconfig", stack: "local", value: "apiVersion: v1\nkind: Config\n", expect: safe, note: "the same context in another file" },
    { key: "monthlyCostCap", stack: "prod", value: "500", expect: safe, note: "read by the offline plan only" },
    { key: "hcloud:token", stack: "prod", value: "another-hcloud-token-value-0123456789", expect: safe },
];

function byAction(plan: Plan, action: string, type: string): string[] {
    return plan.entries.filter((e) => e.action === action && e.type === type).map((e) => e.name).sort();
}

/** The keys of the README's configuration reference table. */
function referenceKeys(): string[] {
    const readme = fs.readFileSync(path.join(PROJECT_DIR, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Configuration reference"), readme.indexOf("\n## Apps"));
    return [...section.matchAll(/^\| `([^`]+)`/gm)].map((m) => m[1]);
}

const SECRET_KEYS = /SecretKey$|Password$|Url$|^kubeconfig$|^hcloud:token$/;
const fullKey = (key: string) => (key.includes(":") ? key : `platform:${key}`);
const secretKeysOf = (o: Record<string, string>) => Object.keys(o).filter((k) => SECRET_KEYS.test(k.replace(/^platform:/, "")));

interface Outcome {
    readonly kind: "refused" | "planned";
    readonly problemKeys?: readonly string[];
    readonly plan?: Plan;
}

async function outcome(c: Case, deployed: Render): Promise<Outcome> {
    const settings = { ...c.deployed, ...c.with, [fullKey(c.key)]: c.value };
    try {
        const after = await render(c.stack, settings, secretKeysOf(settings), earlierState({ resources: deployed.resources, outputs: deployed.outputs }));
        return { kind: "planned", plan: planRenders(deployed.resources, after.resources) };
    } catch (err) {
        if (!isConfigError(err)) throw err;
        return { kind: "refused", problemKeys: (err as unknown as { problems: readonly { key: string }[] }).problems.map((p) => p.key) };
    }
}

describe("every setting of the configuration reference, changed on a deployed stack", () => {
    const deployedRenders = new Map<string, Render>();
    before(async () => {
        for (const c of CASES) {
            const id = JSON.stringify([c.stack, c.deployed ?? {}]);
            if (!deployedRenders.has(id)) deployedRenders.set(id, await render(c.stack, c.deployed ?? {}, secretKeysOf(c.deployed ?? {})));
        }
    });

    it("covers every key of the reference", () => {
        const covered = new Set(CASES.map((c) => c.key));
        assert.deepEqual(referenceKeys().filter((k) => !covered.has(k)), []);
        assert.ok(referenceKeys().length >= 60, "the reference table was read");
    });

    for (const c of CASES) {
        it(`${c.key} -> ${c.value.length > 40 ? `${c.value.slice(0, 40)}...` : c.value} (${c.stack}): ${c.expect.kind}${c.note ? `; ${c.note}` : ""}`, async () => {
            const deployed = deployedRenders.get(JSON.stringify([c.stack, c.deployed ?? {}])) as Render;
            const o = await outcome(c, deployed);
            if (c.expect.kind === "refused") {
                assert.equal(o.kind, "refused", `planned instead: ${o.plan?.entries.filter((e) => e.action !== "same").map((e) => `${e.action} ${e.name}`).join(", ")}`);
                assert.ok(o.problemKeys?.includes(fullKey(c.key)), `refused, but naming ${o.problemKeys?.join(", ")}`);
                return;
            }
            assert.equal(o.kind, "planned", `refused: ${o.problemKeys?.join(", ")}`);
            const plan = o.plan as Plan;
            if (c.expect.kind === "procedure") {
                assert.ok(plan.destructive.length > 0, "the plan must flag it");
                assert.ok(fs.readFileSync(path.join(PROJECT_DIR, "docs", "operations.md"), "utf8").includes(`\n${c.expect.doc}\n`), `docs/operations.md has no ${c.expect.doc}`);
                return;
            }
            assert.deepEqual(plan.destructive.map((e) => `${e.action} ${e.name}`), [], "replaces or deletes something stateful");
            if (c.expect.kind === "rolling") {
                const by = c.expect.by;
                const changedNames = plan.entries.filter((e) => e.action !== "same").map((e) => e.name);
                assert.ok(changedNames.some((n) => by.test(n)), `no change through ${by}: ${changedNames.join(", ")}`);
            }
        });
    }
});

describe("settings fixed at creation, beyond single edits", () => {
    it("after `pulumi stack rename prod prod-eu` the default cluster name would change: refused, with the old name as the fix", async () => {
        const deployed = await render("prod");
        const renamed = { ...withPlaceholderHcloudToken(readStackConfig(PROJECT_DIR, "prod")), stack: "prod-eu" };
        await assert.rejects(renderConfig(renamed, earlierState({ resources: deployed.resources, outputs: deployed.outputs })), (err: Error) => {
            assert.ok(isConfigError(err));
            assert.match(err.message, /platform:clusterName: the cluster was created as 'prod'/);
            assert.match(err.message, /fix: pulumi config set platform:clusterName prod$/m);
            return true;
        });
        // With the fix applied, the renamed stack keeps everything (`pulumi stack rename` rewrites the stack name in every URN of the state):
        // only the `stack` labels change, in place.
        const fixed = { ...renamed, config: { ...renamed.config, "platform:clusterName": "prod" } };
        const renameUrn = (urn: string) => urn.replace(/^urn:pulumi:prod::/, "urn:pulumi:prod-eu::").replace(/::platform-prod$/, "::platform-prod-eu");
        const state = deployed.resources.map((r) => ({ ...r, urn: renameUrn(r.urn), dependencies: r.dependencies?.map(renameUrn) }));
        const plan = planRenders(state, (await renderConfig(fixed, earlierState({ resources: state, outputs: deployed.outputs }))).resources);
        assert.deepEqual(plan.destructive.map((e) => `${e.action} ${e.name}`), []);
        assert.deepEqual(plan.entries.filter((e) => e.action === "delete").map((e) => e.name), []);
        assert.deepEqual(byAction(plan, "update", "hcloud:index/server:Server"), ["prod-server-1", "prod-server-2", "prod-server-3"]);
    });

    it("a new stack (no earlier outputs) refuses nothing", async () => {
        const r = await render("prod", { "platform:clusterName": "fresh" }, [], earlierState({ resources: [], outputs: {} }));
        assert.equal((r.outputs.establishedSettings as { clusterName: string }).clusterName, "fresh");
    });
});

describe("credentials stored in plain text", () => {
    // Stacks whose file does not already hold the key encrypted (prod's holds both S3 keys).
    const cases: [string, "prod" | "dev" | "local", Record<string, string>][] = [
        ["platform:registryPassword", "local", { "platform:registryServer": "ghcr.io/acme", "platform:registryUsername": "ci", "platform:registryPassword": "plain-registry-token" }],
        ["platform:etcdS3SecretKey", "dev", { ...etcdS3 }],
        ["platform:backupS3SecretKey", "local", { ...backupS3 }],
        ["platform:kubeconfig", "local", { "platform:kubeconfig": "apiVersion: v1\nkind: Config\n" }],
        ["platform:databaseUrl", "prod", { ...external }],
        ["platform:databaseImportUrl", "prod", { "platform:databaseImportUrl": "postgresql://u:p@old.example.com/app?sslmode=require" }],
        ["hcloud:token", "prod", { "hcloud:token": "plain-hcloud-token-0123456789abcdef" }],
    ];
    for (const [key, stack, settings] of cases) {
        it(`${key}: refused in plain text with the --secret command; accepted when encrypted`, async () => {
            const secretOnes = Object.keys(settings).filter((k) => k !== key && secretKeysOf({ [k]: "" }).length > 0);
            await assert.rejects(render(stack, settings, secretOnes), (err: Error) => {
                assert.ok(isConfigError(err));
                const problem = (err as unknown as { problems: readonly { key: string; message: string; fix?: string }[] }).problems.find((p) => p.key === key);
                assert.ok(problem, err.message);
                assert.match(problem.message, /plain text/);
                assert.match(String(problem.fix), new RegExp(`^pulumi config set --secret ${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} `));
                return true;
            });
            await render(stack, settings, [...secretOnes, key]);
        });
    }
});

describe("an app secret in plain text beside an encrypted one", () => {
    it("is found in the stack file (Pulumi marks the whole apps value secret) and refused with the --secret --path command", () => {
        const text = [
            "config:",
            "  platform:apps:",
            "    api:",
            "      image: ghcr.io/acme/api:1.0.0",
            "      secrets:",
            "        STRIPE_KEY:",
            "          secure: v1:abcdef",
            "        SESSION_SECRET: plain-value",
        ].join("\n");
        assert.deepEqual(plainAppSecretsInStackFile(text), ["apps.api.secrets.SESSION_SECRET"]);
        assert.throws(() => parseConfig({
            stack: "prod",
            values: { adminCidrs: '["203.0.113.0/24"]', apps: JSON.stringify({ api: { image: "ghcr.io/acme/api:1.0.0", secrets: { STRIPE_KEY: "k", SESSION_SECRET: "plain-value" } } }) },
            hcloudToken: "token",
            isSecret: () => true,
            plainAppSecrets: plainAppSecretsInStackFile(text),
        }), (err: Error) => {
            assert.match(err.message, /platform:apps\.api\.secrets\.SESSION_SECRET: is stored in plain text/);
            assert.match(err.message, /fix: pulumi config set --secret --path 'platform:apps\.api\.secrets\.SESSION_SECRET' <value>/);
            return true;
        });
    });
});
