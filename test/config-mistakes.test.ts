// Mistakes a user makes in stack config, by class: each is refused before any
// resource, naming the exact key; every problem of a config is reported at
// once; and every printed fix, applied to the stack as the CLI would apply it,
// removes its problem (the config is rendered again to prove it).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ConfigProblem, isConfigError } from "../components/config";
import { renderConfig } from "../tools/render";
import { type ConfigEdit, readStackConfig, type StackConfig, withConfigEdits, withPlaceholderHcloudToken } from "../tools/stack-config";
import { PROJECT_DIR } from "./support/stack";

type Stack = "prod" | "dev" | "local";
interface Mistake {
    readonly stack: Stack;
    readonly set: Readonly<Record<string, string>>;
    /** Keys that must be among the problems (exactly these, in any order, when `only`). */
    readonly keys: readonly string[];
    readonly only?: boolean;
}

const config = (stack: Stack, edits: readonly ConfigEdit[]) => withConfigEdits(readStackConfig(PROJECT_DIR, stack), edits);
const edits = (set: Readonly<Record<string, string>>): ConfigEdit[] => Object.entries(set).map(([key, value]) => ({ key, value }));

/** The problems of a config, or [] when it renders. Anything thrown that is not a ConfigError fails the test. */
async function problemsOf(sc: StackConfig): Promise<readonly ConfigProblem[]> {
    try {
        await renderConfig(withPlaceholderHcloudToken(sc));
        return [];
    } catch (err) {
        if (isConfigError(err)) return err.problems;
        throw err;
    }
}

/** Values a user types where a fix shows a placeholder. */
const PLACEHOLDERS: Readonly<Record<string, string>> = {
    "<value>": "value-from-the-user", "<access key>": "EXAMPLEACCESSKEY", "<secret key>": "example-secret-key", "<token>": "example-token",
    "<user>": "ci", "<directory with the Dockerfile>": "examples/api",
};

/** Splits a shell command into words: quotes and a <placeholder> group, `#` starts a comment. */
function words(command: string): string[] {
    const out: string[] = [];
    const re = /'([^']*)'|"([^"]*)"|(<[^>]*>)|(#.*$)|(\S+)/g;
    for (let m = re.exec(command); m; m = re.exec(command)) {
        if (m[4] !== undefined) break;
        out.push(m[1] ?? m[2] ?? m[3] ?? m[5]);
    }
    return out;
}

/** The edits a fix makes: `pulumi config set [--secret] [--path] KEY VALUE` and `pulumi config rm [--path] KEY`, joined by &&. */
function fixEdits(fix: string): ConfigEdit[] {
    return fix.split(" && ").map((command) => {
        const w = words(command);
        assert.deepEqual(w.slice(0, 2), ["pulumi", "config"], `a fix is a pulumi config command: ${fix}`);
        const secret = w.includes("--secret");
        const args = w.slice(3).filter((a) => a !== "--secret" && a !== "--path");
        if (w[2] === "rm") return { key: args[0] };
        assert.equal(w[2], "set", fix);
        assert.equal(args.length, 2, `set takes a key and a value: ${fix}`);
        const value = PLACEHOLDERS[args[1]] ?? args[1];
        assert.ok(!/^<.*>$/.test(value), `a placeholder with no example value: ${args[1]}`);
        return { key: args[0], value, secret };
    });
}

const MISTAKES: Record<string, readonly Mistake[]> = {
    "world-open admin networks, in any spelling": [
        { stack: "prod", set: { adminCidrs: '["0.0.0.0/00"]' }, keys: ["platform:adminCidrs[0]"], only: true },
        { stack: "prod", set: { adminCidrs: '["::/0"]' }, keys: ["platform:adminCidrs[0]"], only: true },
        { stack: "prod", set: { adminCidrs: '["0::0/0"]' }, keys: ["platform:adminCidrs[0]"], only: true },
        { stack: "prod", set: { adminCidrs: '["203.0.113.0/24", "0.0.0.0/0"]' }, keys: ["platform:adminCidrs[1]"], only: true },
    ],
    "invalid or host-bit IPv6 networks": [
        { stack: "prod", set: { adminCidrs: '["2001:db8::1/32"]' }, keys: ["platform:adminCidrs[0]"], only: true },
        { stack: "prod", set: { adminCidrs: '["2001:db8:::/48"]' }, keys: ["platform:adminCidrs[0]"], only: true },
        { stack: "prod", set: { adminCidrs: '["2001:db8::/129"]' }, keys: ["platform:adminCidrs[0]"], only: true },
        { stack: "prod", set: { adminCidrs: '["2001:db8::/48", "10.0.0.1/8"]' }, keys: ["platform:adminCidrs[1]"], only: true },
    ],
    "a public range as the private network": [
        { stack: "prod", set: { networkCidr: "8.8.0.0/16", subnetCidr: "8.8.1.0/24" }, keys: ["platform:networkCidr"], only: true },
        { stack: "prod", set: { networkCidr: "100.64.0.0/16", subnetCidr: "100.64.1.0/24" }, keys: ["platform:networkCidr"], only: true },
        { stack: "prod", set: { networkCidr: "172.32.0.0/16", subnetCidr: "172.32.1.0/24" }, keys: ["platform:networkCidr"], only: true },
    ],
    "cron fields out of range or malformed": [
        { stack: "prod", set: { etcdSnapshotSchedule: "0 25 * * *" }, keys: ["platform:etcdSnapshotSchedule"], only: true },
        { stack: "prod", set: { backupSchedule: "61 3 * * *" }, keys: ["platform:backupSchedule"], only: true },
        { stack: "prod", set: { restoreDrillSchedule: "0 5 * * 8" }, keys: ["platform:restoreDrillSchedule"], only: true },
        // robfig/cron (CronJob, k3s) takes 0-6: Vixie cron's 7 for Sunday is refused by the API server.
        { stack: "prod", set: { restoreDrillSchedule: "0 5 * * 7" }, keys: ["platform:restoreDrillSchedule"], only: true },
        { stack: "prod", set: { backupSchedule: "0 3 32 * *" }, keys: ["platform:backupSchedule"], only: true },
        { stack: "prod", set: { backupSchedule: "0 3 * 13 *" }, keys: ["platform:backupSchedule"], only: true },
        { stack: "prod", set: { backupSchedule: "5-1 * * * *" }, keys: ["platform:backupSchedule"], only: true },
        { stack: "prod", set: { backupSchedule: "*/0 * * * *" }, keys: ["platform:backupSchedule"], only: true },
        { stack: "prod", set: { backupSchedule: "0 3 * *" }, keys: ["platform:backupSchedule"], only: true },
    ],
    "credential-looking env names": [
        { stack: "prod", set: { "apps.api.env.STRIPE_KEY": "sk" }, keys: ["platform:apps.api.env.STRIPE_KEY"], only: true },
        { stack: "prod", set: { "apps.api.env.AWS_SECRET_ACCESS_KEY": "x" }, keys: ["platform:apps.api.env.AWS_SECRET_ACCESS_KEY"], only: true },
        { stack: "prod", set: { "apps.api.env.GITHUB_TOKEN": "x" }, keys: ["platform:apps.api.env.GITHUB_TOKEN"], only: true },
        { stack: "prod", set: { "apps.api.env.SMTP_PASSWORD": "x" }, keys: ["platform:apps.api.env.SMTP_PASSWORD"], only: true },
    ],
    "malformed image references": [
        { stack: "local", set: { "apps.api.image": "ghcr.io/acme/API:1.0" }, keys: ["platform:apps.api.image"], only: true },
        { stack: "local", set: { "apps.api.image": "ghcr.io/acme/api:" }, keys: ["platform:apps.api.image"], only: true },
        { stack: "local", set: { "apps.api.image": "ghcr.io/" }, keys: ["platform:apps.api.image"], only: true },
        { stack: "local", set: { "apps.api.image": "api:latest" }, keys: ["platform:apps.api.image"], only: true },
    ],
    "a build that cannot run": [
        { stack: "prod", set: { "apps.api.build.context": "examples/nope" }, keys: ["platform:apps.api.build.context"], only: true },
        { stack: "prod", set: { "apps.api.build.dockerfile": "Nope.Dockerfile" }, keys: ["platform:apps.api.build.dockerfile"], only: true },
        { stack: "prod", set: { "apps.api.image": "ghcr.io/acme/api:1.0" }, keys: ["platform:apps.api"], only: true },
        { stack: "local", set: { "apps.api.build.context": "examples/api" }, keys: ["platform:apps.api", "platform:registryServer"], only: true },
    ],
    "a connection pool that is not a count": [
        { stack: "prod", set: { "apps.api.env.DB_MAX_CONNECTIONS": "abc" }, keys: ["platform:apps.api.env.DB_MAX_CONNECTIONS"], only: true },
        { stack: "prod", set: { "apps.api.env.DB_MAX_CONNECTIONS": "-3" }, keys: ["platform:apps.api.env.DB_MAX_CONNECTIONS"], only: true },
        { stack: "prod", set: { "apps.api.env.DB_MAX_CONNECTIONS": "1.5" }, keys: ["platform:apps.api.env.DB_MAX_CONNECTIONS"], only: true },
    ],
    "connection budgets that do not fit": [
        { stack: "prod", set: { "apps.api.env.DB_MAX_CONNECTIONS": "40" }, keys: ["platform:pgbouncerMaxClientConn"], only: true },
        { stack: "prod", set: { "apps.api.replicas": "30" }, keys: ["platform:pgbouncerMaxClientConn"], only: true },
        { stack: "prod", set: { pgbouncerPoolSize: "60" }, keys: ["platform:postgresMaxConnections"], only: true },
    ],
    "probes that cannot pass in time": [
        { stack: "prod", set: { "apps.api.healthTimeout": "60", "apps.api.startupTimeout": "10" }, keys: ["platform:apps.api.healthTimeout"], only: true },
        { stack: "prod", set: { "apps.api.healthTimeout": "30", "apps.api.startupTimeout": "30" }, keys: ["platform:apps.api.healthTimeout"], only: true },
        { stack: "prod", set: { "apps.api.livenessPath": "/health" }, keys: ["platform:apps.api.livenessPath"], only: true },
    ],
    "settings of another mode": [
        { stack: "local", set: { location: "nbg1" }, keys: ["platform:location", "platform:mode"], only: true },
        { stack: "local", set: { etcdS3Bucket: "b", etcdS3AccessKey: "a" }, keys: ["platform:etcdS3Bucket", "platform:etcdS3AccessKey", "platform:mode"], only: true },
        { stack: "prod", set: { kubeContext: "k3d-platform" }, keys: ["platform:kubeContext"], only: true },
        { stack: "prod", set: { ingressClass: "nginx" }, keys: ["platform:ingressClass"], only: true },
    ],
    "app volume backups that cannot run": [
        // The local stack has no backup bucket: asking for backups needs one (the fix sets it).
        { stack: "local", set: { "apps.notes.volume.backup.keepDays": "3" }, keys: ["platform:apps.notes.volume.backup"], only: true },
        { stack: "prod", set: { "apps.notes.image": "ghcr.io/acme/notes:1.0.0", "apps.notes.volume.path": "/data", "apps.notes.volume.size": "10Gi", "apps.notes.volume.backup.keepDays": "0" },
            keys: ["platform:apps.notes.volume.backup.keepDays"], only: true },
        { stack: "prod", set: { "apps.notes.image": "ghcr.io/acme/notes:1.0.0", "apps.notes.volume.path": "/data", "apps.notes.volume.size": "10Gi", "apps.notes.volume.backup.schedule": "0 * * * 7" },
            keys: ["platform:apps.notes.volume.backup.schedule"], only: true },
        { stack: "prod", set: { "apps.notes.image": "ghcr.io/acme/notes:1.0.0", "apps.notes.volume.path": "/data", "apps.notes.volume.size": "10Gi", "apps.notes.volume.backup.every": "1h" },
            keys: ["platform:apps.notes.volume.backup.every"], only: true },
    ],
    "a misspelt namespace": [
        { stack: "prod", set: { "plattform:agentCount": "2" }, keys: ["plattform:agentCount"], only: true },
        { stack: "prod", set: { "platfrom:location": "nbg1" }, keys: ["platfrom:location"], only: true },
        { stack: "prod", set: { "hcluod:token": "x" }, keys: ["hcluod:token"], only: true },
        // A namespace of its own (another provider's, say) is not ours to judge.
        { stack: "prod", set: { "aws:region": "eu-central-1" }, keys: [], only: true },
    ],
    "one malformed value does not hide the others": [
        { stack: "prod", set: { postgresStorage: "2GB", agentCount: "x", location: "mars" }, keys: ["platform:postgresStorage", "platform:agentCount", "platform:location"], only: true },
        { stack: "prod", set: { backupStorage: "1TB", "apps.api.replicas": "0" }, keys: ["platform:backupStorage", "platform:apps.api.replicas"], only: true },
        { stack: "prod", set: { apps: "[1, 2]", adminCidrs: '{"a": 1}' }, keys: ["platform:apps", "platform:adminCidrs"], only: true },
    ],
    "typos inside an app": [
        { stack: "prod", set: { "apps.api.replica": "3" }, keys: ["platform:apps.api.replica"], only: true },
        { stack: "prod", set: { "apps.api.hosts": "x.example.com" }, keys: ["platform:apps.api.hosts"], only: true },
        { stack: "prod", set: { "apps.api.port": "http" }, keys: ["platform:apps.api.port"], only: true },
        { stack: "prod", set: { "apps.api.memory": "1GB" }, keys: ["platform:apps.api.memory"], only: true },
    ],
    "server types not sold where the cluster is": [
        { stack: "prod", set: { location: "ash" }, keys: ["platform:controlPlaneServerType"], only: true },
        { stack: "dev", set: { location: "hil" }, keys: ["platform:controlPlaneServerType"], only: true },
    ],
};

describe("config mistakes", () => {
    for (const [mistakeClass, cases] of Object.entries(MISTAKES)) {
        describe(mistakeClass, () => {
            cases.forEach((m, i) => {
                it(`${m.stack} ${JSON.stringify(m.set)}`, async () => {
                    const sc = config(m.stack, edits(m.set));
                    const problems = await problemsOf(sc);
                    const keys = problems.map((p) => p.key);
                    if (m.keys.length === 0) {
                        // Not the project's namespace, nor near it: the provider's to judge.
                        assert.deepEqual(keys, [], `case ${i}`);
                        return;
                    }
                    for (const key of m.keys) assert.ok(keys.includes(key), `${key} not among ${keys.join(", ")}`);
                    if (m.only) assert.deepEqual([...new Set(keys)].sort(), [...m.keys].sort());
                    // Each fix, applied as the CLI would, removes its problem.
                    for (const p of problems) {
                        const after = await problemsOf(withConfigEdits(sc, fixEdits(p.fix)));
                        assert.ok(!after.some((q) => q.key === p.key && q.message === p.message), `the fix '${p.fix}' leaves '${p.key}: ${p.message}'`);
                    }
                });
            });
        });
    }

    it("the shipped stacks have no problem", async () => {
        for (const stack of ["prod", "dev", "local"] as const) assert.deepEqual(await problemsOf(config(stack, [])), [], stack);
    });
});
