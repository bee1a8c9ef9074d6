// The database tier as the real program creates it (mock runtime): what runs,
// what is protected, what is secret, and the order a password rotation takes.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import { ConfigError, parseConfig } from "../components/config";
import { isSecretValue, RecordedResource } from "../tools/mock-runtime";
import { Render } from "../tools/render";
import { one, ofType, plain, render, secretInput } from "./support/stack";

type Container = { name: string; image: string; args?: string[]; env?: { name: string; value?: string; valueFrom?: unknown }[]; resources: { requests: Record<string, string>; limits: Record<string, string> }; startupProbe?: { exec: { command: string[] }; periodSeconds: number; failureThreshold: number }; readinessProbe?: Record<string, unknown>; lifecycle?: { preStop: { exec: { command: string[] } } } };
type PodSpec = { containers: Container[]; initContainers?: Container[]; terminationGracePeriodSeconds?: number; securityContext: Record<string, unknown> };

function podOf(r: RecordedResource): PodSpec {
    return (r.inputs.spec as { template: { spec: PodSpec } }).template.spec;
}

describe("prod database tier", () => {
    let prod: Render;
    before(async () => {
        prod = await render("prod");
    });

    it("runs PostgreSQL 17 as uid 999 on a protected StatefulSet whose data lives in a subdirectory of a retained volume", () => {
        const sts = one(prod, "kubernetes:apps/v1:StatefulSet");
        assert.ok(sts.protect, "the StatefulSet is protected from deletion");
        assert.ok(sts.retainOnDelete);
        const spec = sts.inputs.spec as { volumeClaimTemplates: { spec: { storageClassName: string; resources: { requests: { storage: string } } } }[]; persistentVolumeClaimRetentionPolicy: unknown };
        assert.equal(spec.volumeClaimTemplates[0].spec.storageClassName, "hcloud-volumes-retain");
        assert.equal(spec.volumeClaimTemplates[0].spec.resources.requests.storage, "20Gi");
        assert.deepEqual(spec.persistentVolumeClaimRetentionPolicy, { whenDeleted: "Retain", whenScaled: "Retain" });
        const pod = podOf(sts);
        const [c] = pod.containers;
        assert.match(c.image, /^postgres:17\.\d+/);
        assert.equal(pod.securityContext.runAsUser, 999);
        assert.equal(pod.securityContext.fsGroup, 999);
        assert.equal(c.env?.find((e) => e.name === "PGDATA")?.value, "/var/lib/postgresql/data/pgdata");
        assert.deepEqual(c.startupProbe?.exec.command.slice(0, 1), ["pg_isready"]);
        assert.ok((c.startupProbe?.periodSeconds ?? 0) * (c.startupProbe?.failureThreshold ?? 0) >= 300, "a generous startup budget");
        assert.equal(pod.terminationGracePeriodSeconds, 120);
        assert.deepEqual(c.resources.requests, c.resources.limits, "Guaranteed QoS");
        assert.ok(c.args?.includes("shared_buffers=512MB"), "shared_buffers is a quarter of 2Gi");
    });

    it("puts PgBouncer (2 replicas, TCP readiness, SIGINT before the grace period ends) in front, with our rendered config", () => {
        const d = one(prod, "kubernetes:apps/v1:Deployment", "prod-database-pgbouncer");
        const spec = d.inputs.spec as { replicas: number; template: { metadata: { annotations: Record<string, string> } } };
        assert.equal(spec.replicas, 2);
        assert.match(spec.template.metadata.annotations["platform.io/config-checksum"], /^[0-9a-f]{64}$/);
        const pod = podOf(d);
        const [c] = pod.containers;
        assert.match(c.image, /pgbouncer:1\.2[5-9]/);
        assert.ok(c.readinessProbe && "tcpSocket" in c.readinessProbe);
        assert.match(c.lifecycle?.preStop.exec.command.join(" ") ?? "", /kill -INT 1; sleep (\d+)/);
        const sleep = Number(/sleep (\d+)/.exec(c.lifecycle?.preStop.exec.command.join(" ") ?? "")?.[1]);
        assert.ok(sleep < (pod.terminationGracePeriodSeconds ?? 30), "SIGINT drains before the grace period ends");
        const ini = (one(prod, "kubernetes:core/v1:ConfigMap", "prod-database-pgbouncer-config").inputs.data as Record<string, string>)["pgbouncer.ini"];
        assert.match(ini, /^pool_mode = transaction$/m);
        assert.match(ini, /^auth_type = scram-sha-256$/m);
        assert.match(ini, /^api = host=postgres\.database\.svc\.cluster\.local port=5432 dbname=api$/m);
        const userlist = String((secretInput(one(prod, "kubernetes:core/v1:Secret", "prod-database-pgbouncer-auth").inputs.stringData) as Record<string, string>)["userlist.txt"]);
        assert.match(userlist, /^"app_api" "[0-9a-f]{32}"$/m);
    });

    it("injects DATABASE_URL through PgBouncer in seed 001's format, and the migration's URL straight to PostgreSQL, as secrets", () => {
        const secrets = secretInput(one(prod, "kubernetes:core/v1:Secret", "api-secrets").inputs.stringData) as Record<string, string>;
        assert.match(secrets.DATABASE_URL, /^postgresql:\/\/app_api:[0-9a-f]{32}@pgbouncer\.database\.svc\.cluster\.local:5432\/api(\?|$)/);
        assert.equal(secrets.DATABASE_DIRECT_URL, undefined, "the app's pods never get the direct URL");
        const migration = secretInput(one(prod, "kubernetes:core/v1:Secret", "api-migration-secrets").inputs.stringData) as Record<string, string>;
        assert.match(migration.DATABASE_URL, /^postgresql:\/\/app_api:[0-9a-f]{32}@postgres\.database\.svc\.cluster\.local:5432\/api(\?|$)/);
        for (const r of ofType(prod, "random:index/randomBytes:RandomBytes")) assert.equal(r.inputs.length, 16, "16 bytes = 32 hex characters");
        const ns = one(prod, "kubernetes:core/v1:Namespace", "api-ns");
        assert.equal((ns.inputs.metadata as { labels: Record<string, string> }).labels["platform.io/database-client"], "true");
    });

    it("backs up daily (UTC) to a protected volume and drills a restore weekly", () => {
        const cron = (name: string) => ofType(prod, "kubernetes:batch/v1:CronJob").find((c) => (c.inputs.metadata as { name: string }).name === name);
        const backup = cron("postgres-backup");
        const drill = cron("postgres-restore-drill");
        assert.ok(backup && drill);
        const b = backup.inputs.spec as { schedule: string; timeZone: string; concurrencyPolicy: string; successfulJobsHistoryLimit: number; failedJobsHistoryLimit: number; jobTemplate: { spec: { backoffLimit: number; activeDeadlineSeconds: number; template: { spec: PodSpec } } } };
        assert.equal(b.schedule, "0 3 * * *");
        assert.equal(b.timeZone, "Etc/UTC");
        assert.equal(b.concurrencyPolicy, "Forbid");
        assert.ok(b.jobTemplate.spec.backoffLimit <= 2);
        assert.ok(b.jobTemplate.spec.activeDeadlineSeconds > 0);
        assert.ok(b.successfulJobsHistoryLimit > 0 && b.failedJobsHistoryLimit > 0);
        const [c] = b.jobTemplate.spec.template.spec.containers;
        assert.deepEqual(c.env?.find((e) => e.name === "RETENTION_DAYS")?.value, "7");
        assert.equal((drill.inputs.spec as { schedule: string }).schedule, "0 5 * * 0");
        const pvc = one(prod, "kubernetes:core/v1:PersistentVolumeClaim");
        assert.ok(pvc.protect && pvc.retainOnDelete);
        const scripts = one(prod, "kubernetes:core/v1:ConfigMap", "prod-database-scripts").inputs.data as Record<string, string>;
        assert.deepEqual(Object.keys(scripts).sort(), ["db-ensure-roles.sh", "pg-backup.sh", "pg-common.sh", "pg-restore-drill.sh", "pg-restore.sh"]);
    });

    it("waits for the retaining StorageClass and the CSI driver before creating anything", () => {
        const ns = one(prod, "kubernetes:core/v1:Namespace", "prod-database-ns");
        const storageClass = one(prod, "kubernetes:storage.k8s.io/v1:StorageClass");
        const csi = ofType(prod, "kubernetes:helm.cattle.io/v1:HelmChart").find((c) => c.name.endsWith("hcloud-csi"));
        assert.ok(csi);
        assert.ok(ns.dependencies.includes(storageClass.urn));
        assert.ok(ns.dependencies.includes(csi.urn));
    });

    it("lets only this namespace and database apps' namespaces reach PostgreSQL and PgBouncer", () => {
        const policy = one(prod, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "prod-database-allow-clients");
        assert.deepEqual((policy.inputs.spec as { ingress: { from: unknown[] }[] }).ingress[0].from, [
            { podSelector: {} }, { namespaceSelector: { matchLabels: { "platform.io/database-client": "true" } } },
        ]);
    });
});

describe("password rotation", () => {
    const withVersion = (v: number) => JSON.stringify({ api: { image: "ghcr.io/acme/api:1.0.0", database: true, databasePasswordVersion: v } });

    it("one bumped version changes the password, re-runs the roles Job, rolls PgBouncer, then the app, in that order", async () => {
        const a = await render("prod", { "platform:apps": withVersion(1) });
        const b = await render("prod", { "platform:apps": withVersion(2) });
        const url = (r: Render) => (secretInput(one(r, "kubernetes:core/v1:Secret", "api-secrets").inputs.stringData) as Record<string, string>).DATABASE_URL;
        assert.notEqual(url(a), url(b));
        const jobName = (r: Render) => (one(r, "kubernetes:batch/v1:Job", "prod-database-ensure-roles").inputs.metadata as { name: string }).name;
        assert.notEqual(jobName(a), jobName(b), "a new roles Job runs ALTER ROLE");
        const checksum = (r: Render) => (one(r, "kubernetes:apps/v1:Deployment", "prod-database-pgbouncer").inputs.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations["platform.io/config-checksum"];
        assert.notEqual(checksum(a), checksum(b), "PgBouncer rolls with the new userlist");
        const appChecksum = (r: Render) => (one(r, "kubernetes:apps/v1:Deployment", "api-deployment").inputs.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations["platform.io/config-checksum"];
        assert.notEqual(appChecksum(a), appChecksum(b), "the app rolls with the new URL");

        // Order: the app Secret waits for PgBouncer, which waits for the roles Job.
        const job = one(b, "kubernetes:batch/v1:Job", "prod-database-ensure-roles");
        const pgbouncer = one(b, "kubernetes:apps/v1:Deployment", "prod-database-pgbouncer");
        const appSecret = one(b, "kubernetes:core/v1:Secret", "api-secrets");
        assert.ok(pgbouncer.dependencies.includes(job.urn), "PgBouncer after the roles Job");
        assert.ok(appSecret.dependencies.includes(pgbouncer.urn), "the app's Secret after PgBouncer");
        assert.ok(appSecret.dependencies.includes(job.urn));
        // Other apps' and the superuser's passwords stay.
        const superuser = (r: Render) => (secretInput(one(r, "kubernetes:core/v1:Secret", "prod-database-superuser").inputs.stringData) as Record<string, string>).password;
        assert.equal(superuser(a), superuser(b));
    });
});

describe("external database", () => {
    it("injects the managed database's URL as is, with no database in the cluster", async () => {
        const url = "postgresql://neon:pw@ep-cool-1.eu-central-1.aws.neon.tech/app?sslmode=require";
        const r = await render("prod", {
            "platform:databaseMode": "external",
            "platform:databaseUrl": url,
            "platform:apps": JSON.stringify({ api: { image: "ghcr.io/acme/api:1.0.0", database: true } }),
        }, ["platform:databaseUrl"]);
        assert.equal(ofType(r, "platform:database:Database").length, 0);
        assert.equal(ofType(r, "kubernetes:apps/v1:StatefulSet").length, 0);
        const secret = one(r, "kubernetes:core/v1:Secret", "api-secrets");
        assert.ok(isSecretValue(secret.inputs.stringData));
        assert.deepEqual(plain(secret.inputs.stringData), { DATABASE_URL: url });
        for (const text of r.files.values()) assert.ok(!text.includes("neon:pw"), "the URL never reaches the render output");
    });
});

describe("database config", () => {
    const base = { adminCidrs: '["198.51.100.7/32"]', acmeEmail: "ops@example.com" };
    function problems(values: Record<string, unknown>, secret = true): string[] {
        try {
            parseConfig({ stack: "prod", values: { ...base, ...values }, hcloudToken: "t", isSecret: () => secret });
        } catch (err) {
            assert.ok(err instanceof ConfigError);
            return err.problems.map((p) => `${p.key}: ${p.message}`);
        }
        return [];
    }
    const app = (extra: Record<string, unknown> = {}) => JSON.stringify({ api: { image: "api:1", database: true, ...extra } });

    it("refuses an external URL without sslmode=require or stronger", () => {
        const p = problems({ databaseMode: "external", databaseUrl: "postgresql://u:p@db.example.com/app", apps: app() });
        assert.equal(p.length, 1);
        assert.match(p[0], /^platform:databaseUrl: must require TLS: add \?sslmode=require/);
        assert.ok(!p[0].includes("u:p@"), "the URL is never echoed");
        assert.deepEqual(problems({ databaseMode: "external", databaseUrl: "postgresql://u:p@db.example.com/app?sslmode=verify-full", apps: app() }), []);
        assert.match(problems({ databaseMode: "external", apps: app() })[0], /^platform:databaseUrl: is required with databaseMode external/);
        assert.match(problems({ databaseMode: "external", databaseUrl: "postgresql://u:p@h/app?sslmode=require", apps: app() }, false).join(), /plain text/);
    });

    it("checks the connection budget against PgBouncer's max_client_conn, with the numbers", () => {
        const p = problems({ apps: app({ replicas: 5, env: { DB_MAX_CONNECTIONS: 25 } }) });
        assert.equal(p.length, 1);
        assert.match(p[0], /^platform:pgbouncerMaxClientConn: apps can open 150 client connections \(api 6 pods x 25\) but PgBouncer accepts 100/);
    });

    it("checks PostgreSQL's max_connections covers every pool plus a reserve", () => {
        const p = problems({ pgbouncerReplicas: "4", apps: app() });
        assert.match(p[0], /^platform:postgresMaxConnections: PgBouncer can open 100 server connections .* plus 10 reserved, 110 in all, but PostgreSQL allows 100/);
    });

    it("refuses a hand-set DATABASE_URL on an app whose database the platform provides", () => {
        assert.match(problems({ apps: app({ secrets: { DATABASE_URL: "x" } }) })[0], /apps\.api\.secrets\.DATABASE_URL: is set by the platform/);
    });

    it("refuses a database volume under 10Gi", () => {
        assert.match(problems({ postgresStorage: "5Gi", apps: app() })[0], /^platform:postgresStorage: must be at least 10Gi/);
    });
});

describe("existing-cluster database", () => {
    it("uses the cluster's default StorageClass", async () => {
        const r = await render("local", { "platform:apps": JSON.stringify({ api: { image: "api:dev", database: true, replicas: 1 } }) });
        const sts = one(r, "kubernetes:apps/v1:StatefulSet");
        const claim = (sts.inputs.spec as { volumeClaimTemplates: { spec: Record<string, unknown> }[] }).volumeClaimTemplates[0].spec;
        assert.equal(claim.storageClassName, undefined);
        const manifest = parse([...r.files].find(([f]) => f.includes("statefulset"))?.[1] ?? "") as { kind: string };
        assert.equal(manifest.kind, "StatefulSet");
    });
});
