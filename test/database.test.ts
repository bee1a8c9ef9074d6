// The database tier as the real program creates it (mock runtime): what runs,
// what is protected, what is secret, and the order a password rotation takes.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { ConfigError, parseConfig } from "../components/config";
import { isSecretValue } from "../tools/mock-runtime";
import { Render } from "../tools/render";
import { one, ofType, plain, render, secretInput, transitiveDependencies } from "./support/stack";

type Container = { name: string; image: string; args?: string[]; env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } } }[]; resources: { requests: Record<string, string>; limits: Record<string, string> }; startupProbe?: { exec: { command: string[] }; periodSeconds: number; failureThreshold: number }; readinessProbe?: Record<string, unknown>; lifecycle?: { preStop: { exec: { command: string[] } } } };
type PodSpec = { containers: Container[]; initContainers?: Container[]; terminationGracePeriodSeconds?: number; securityContext: Record<string, unknown> };


describe("prod database tier", () => {
    let prod: Render;
    before(async () => {
        prod = await render("prod");
    });

    const cluster = () => one(prod, "kubernetes:postgresql.cnpg.io/v1:Cluster");
    type ClusterSpec = {
        instances: number; imageName: string; enablePDB: boolean;
        storage: { size: string; storageClass: string; resizeInUseVolumes: boolean };
        resources: { requests: object; limits: object };
        affinity: { enablePodAntiAffinity: boolean; podAntiAffinityType: string; topologyKey: string };
        postgresql: { parameters: Record<string, string> };
        managed: { roles: { name: string; login: boolean; inRoles?: string[]; passwordSecret?: { name: string } }[] };
    };

    it("runs a protected CloudNativePG Cluster of 3 PostgreSQL 17 instances, one per node, on the retaining StorageClass", () => {
        const c = cluster();
        assert.ok(c.protect, "the Cluster is protected from deletion");
        assert.ok(c.retainOnDelete, "and kept in the cluster if Pulumi lets go of it");
        const spec = plain(c.inputs.spec) as ClusterSpec;
        assert.equal(spec.instances, 3);
        assert.match(spec.imageName, /^ghcr\.io\/cloudnative-pg\/postgresql:17\.\d+-\d+-system-bookworm@sha256:[0-9a-f]{64}$/);
        assert.deepEqual(spec.affinity, { enablePodAntiAffinity: true, podAntiAffinityType: "required", topologyKey: "kubernetes.io/hostname" });
        assert.deepEqual(spec.storage, { size: "20Gi", storageClass: "hcloud-volumes-retain", resizeInUseVolumes: true });
        assert.deepEqual(spec.resources.requests, spec.resources.limits, "Guaranteed QoS");
        assert.equal(spec.postgresql.parameters.shared_buffers, "512MB", "a quarter of 2Gi");
        assert.equal(spec.enablePDB, true);
    });

    it("gives each app an owner role and two login roles in it, with passwords from labelled basic-auth Secrets", () => {
        const spec = plain(cluster().inputs.spec) as ClusterSpec;
        assert.deepEqual(spec.managed.roles.map((r) => [r.name, r.login, r.inRoles ?? [], r.passwordSecret?.name]), [
            ["app_api", false, [], undefined],
            ["app_api_1", true, ["app_api"], "app-api-1-password"],
            ["app_api_2", true, ["app_api"], "app-api-2-password"],
        ]);
        for (const slot of [1, 2]) {
            const secret = one(prod, "kubernetes:core/v1:Secret", `prod-database-api-login-${slot}`);
            assert.equal(secret.inputs.type, "kubernetes.io/basic-auth");
            assert.equal((plain(secret.inputs.metadata) as { labels: Record<string, string> }).labels["cnpg.io/reload"], "true");
            const data = secretInput(secret.inputs.stringData) as Record<string, string>;
            assert.equal(data.username, `app_api_${slot}`);
            assert.match(data.password, /^[0-9a-f]{32}$/);
        }
        const db = one(prod, "kubernetes:postgresql.cnpg.io/v1:Database");
        assert.deepEqual(plain(db.inputs.spec), { name: "api", owner: "app_api", cluster: { name: "postgres" }, ensure: "present", databaseReclaimPolicy: "retain" });
        assert.ok(db.retainOnDelete);
    });

    it("puts a Pooler (PgBouncer 1.25.2+, transaction mode, 2 instances spread, a PDB) in front of the primary", () => {
        const spec = plain(one(prod, "kubernetes:postgresql.cnpg.io/v1:Pooler").inputs.spec) as { instances: number; type: string; pgbouncer: { poolMode: string; image: string } };
        assert.equal(spec.instances, 2);
        assert.equal(spec.type, "rw");
        assert.equal(spec.pgbouncer.poolMode, "transaction");
        const [major, minor, patch] = (/pgbouncer:(\d+)\.(\d+)\.(\d+)$/.exec(spec.pgbouncer.image) ?? []).slice(1).map(Number);
        assert.ok(major > 1 || minor > 25 || (minor === 25 && patch >= 2), `${spec.pgbouncer.image}: 1.25.2 fixes four CVEs`);
        const pdb = one(prod, "kubernetes:policy/v1:PodDisruptionBudget", "prod-database-pooler-pdb");
        assert.deepEqual(plain(pdb.inputs.spec), { maxUnavailable: 1, selector: { matchLabels: { "cnpg.io/poolerName": "pgbouncer" } } });
    });

    it("installs the operator with Helm before any CloudNativePG object, once the cluster schedules pods", () => {
        const release = ofType(prod, "kubernetes:helm.sh/v3:Release").find((r) => r.inputs.chart === "cloudnative-pg");
        assert.ok(release);
        assert.equal(release.inputs.version, "0.29.0");
        assert.equal(release.inputs.namespace, "cnpg-system");
        assert.ok(cluster().dependencies.includes(release.urn));
        const crdWait = prod.run.resources.find((r) => r.name === "prod-ingress-traefik-crds-wait");
        assert.ok(crdWait && transitiveDependencies(prod, release).has(crdWait.urn));
    });

    it("injects DATABASE_URL through the pooler in seed 001's format; the migration alone gets the primary", () => {
        const secrets = secretInput(one(prod, "kubernetes:core/v1:Secret", "api-secrets").inputs.stringData) as Record<string, string>;
        assert.match(secrets.DATABASE_URL, /^postgresql:\/\/app_api_1:[0-9a-f]{32}@pgbouncer\.database\.svc\.cluster\.local:5432\/api(\?|$)/);
        assert.equal(secrets.DATABASE_DIRECT_URL, undefined, "the app's pods never get the direct URL");
        const migration = secretInput(one(prod, "kubernetes:core/v1:Secret", "api-migration-secrets").inputs.stringData) as Record<string, string>;
        assert.match(migration.DATABASE_URL, /^postgresql:\/\/app_api_1:[0-9a-f]{32}@postgres-rw\.database\.svc\.cluster\.local:5432\/api(\?|$)/);
        const passwords = ofType(prod, "random:index/randomBytes:RandomBytes").filter((x) => x.name.endsWith("-password"));
        assert.equal(passwords.length, 2, "the api's two login roles");
        for (const r of passwords) assert.equal(r.inputs.length, 16, "16 bytes = 32 hex characters");
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
        // The dump runs first (an init container when an upload to S3 follows it).
        const pod = b.jobTemplate.spec.template.spec;
        const c = [...(pod.initContainers ?? []), ...pod.containers].find((x) => x.name === "pg-backup");
        assert.deepEqual(c?.env?.find((e) => e.name === "RETENTION_DAYS")?.value, "7");
        assert.equal((drill.inputs.spec as { schedule: string }).schedule, "0 5 * * 0");
        // The drill never addresses production: a throwaway server in its own pod, no credentials.
        const d = (drill.inputs.spec as { jobTemplate: { spec: { template: { spec: PodSpec } } } }).jobTemplate.spec.template.spec.containers[0];
        assert.deepEqual((d as Container & { command: string[] }).command, ["bash", "/scripts/pg-drill-server.sh"]);
        const drillEnv = JSON.stringify(d.env);
        for (const production of ["postgres-rw", "pgbouncer", "postgres-superuser", "PGHOST", "PGPASSWORD"]) {
            assert.ok(!drillEnv.includes(production), `the drill's environment mentions ${production}`);
        }
        const pvc = one(prod, "kubernetes:core/v1:PersistentVolumeClaim");
        assert.ok(pvc.protect && pvc.retainOnDelete);
        const scripts = one(prod, "kubernetes:core/v1:ConfigMap", "prod-database-scripts").inputs.data as Record<string, string>;
        assert.deepEqual(Object.keys(scripts).sort(), ["db-grants.sh", "db-login-check.sh", "pg-backup.sh", "pg-common.sh", "pg-drill-server.sh", "pg-pitr-drill-check.sh", "pg-restore-drill.sh", "pg-restore.sh"]);
    });

    it("waits for the retaining StorageClass and the CSI driver before creating anything", () => {
        const ns = one(prod, "kubernetes:core/v1:Namespace", "prod-database-ns");
        const storageClass = one(prod, "kubernetes:storage.k8s.io/v1:StorageClass");
        const csi = ofType(prod, "kubernetes:helm.cattle.io/v1:HelmChart").find((c) => c.name.endsWith("hcloud-csi"));
        assert.ok(csi);
        assert.ok(ns.dependencies.includes(storageClass.urn));
        assert.ok(ns.dependencies.includes(csi.urn));
    });

    it("lets only this namespace, database apps' namespaces and the operator reach the instances", () => {
        const policy = one(prod, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "prod-database-allow-clients");
        const ingress = (policy.inputs.spec as { ingress: { from: unknown[]; ports: { port: number }[] }[] }).ingress;
        assert.deepEqual(ingress[0].from, [{ podSelector: {} }, { namespaceSelector: { matchLabels: { "platform.io/database-client": "true" } } }]);
        assert.deepEqual(ingress[1].from, [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "cnpg-system" } } }]);
        assert.deepEqual(ingress[1].ports.map((p) => p.port), [8000, 5432]);
    });
});

describe("password rotation", () => {
    const withVersion = (v: number) => JSON.stringify({ api: { image: "ghcr.io/acme/api:1.0.0", database: true, databasePasswordVersion: v, migrationCommand: ["migrate"] } });
    const loginPassword = (r: Render, slot: number) => (secretInput(one(r, "kubernetes:core/v1:Secret", `prod-database-api-login-${slot}`).inputs.stringData) as Record<string, string>).password;
    const url = (r: Render) => (secretInput(one(r, "kubernetes:core/v1:Secret", "api-secrets").inputs.stringData) as Record<string, string>).DATABASE_URL;

    it("a bumped version gives the idle login role a new password, checks it works, then moves the app to it", async () => {
        const a = await render("prod", { "platform:apps": withVersion(1) });
        const b = await render("prod", { "platform:apps": withVersion(2) });
        assert.equal(loginPassword(b, 1), loginPassword(a, 1), "the role running pods use keeps its password");
        assert.notEqual(loginPassword(b, 2), loginPassword(a, 2), "the idle role gets a new one");
        assert.match(url(a), /^postgresql:\/\/app_api_1:/);
        assert.match(url(b), /^postgresql:\/\/app_api_2:/);
        assert.ok(url(b).includes(loginPassword(b, 2)));
        // Order: the app's Secret waits for a login check with the new credentials, which waits for the new password's Secret.
        const check = one(b, "kubernetes:batch/v1:Job", "prod-database-api-login-check");
        assert.equal((plain(check.inputs.metadata) as { name: string }).name, "db-login-check-api-v2");
        const env = (plain(check.inputs.spec) as { template: { spec: { containers: { env: { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string } } }[] }[] } } }).template.spec.containers[0].env;
        assert.equal(env.find((e) => e.name === "PGUSER")?.value, "app_api_2");
        assert.equal(env.find((e) => e.name === "PGHOST")?.value, "pgbouncer.database.svc.cluster.local");
        assert.equal(env.find((e) => e.name === "PGPASSWORD")?.valueFrom?.secretKeyRef.name, "app-api-2-password");
        const loginSecret = one(b, "kubernetes:core/v1:Secret", "prod-database-api-login-2");
        assert.ok(check.dependencies.includes(loginSecret.urn));
        for (const name of ["api-secrets", "api-migration-secrets"]) {
            assert.ok(one(b, "kubernetes:core/v1:Secret", name).dependencies.includes(check.urn), `${name} after the login check`);
        }
        // Version 3 goes back to slot 1 with a new password; slot 2 (version 2's pods) keeps its.
        const c = await render("prod", { "platform:apps": withVersion(3) });
        assert.equal(loginPassword(c, 2), loginPassword(b, 2));
        assert.notEqual(loginPassword(c, 1), loginPassword(b, 1));
        assert.match(url(c), /^postgresql:\/\/app_api_1:/);
    });
});

describe("point-in-time recovery (S3-compatible storage configured)", () => {
    const s3 = { "platform:backupS3Bucket": "acme-backups", "platform:backupS3AccessKey": "AKID", "platform:backupS3SecretKey": "s3-secret-value-456" };

    it("archives WAL and takes daily base backups through plugin-barman-cloud, retained as long as the dumps", async () => {
        const r = await render("prod", s3, ["platform:backupS3SecretKey"]);
        const store = plain(one(r, "kubernetes:barmancloud.cnpg.io/v1:ObjectStore").inputs.spec) as {
            configuration: { destinationPath: string; endpointURL: string; s3Credentials: Record<string, { name: string; key: string }> }; retentionPolicy: string;
        };
        assert.equal(store.configuration.destinationPath, "s3://acme-backups/cnpg");
        assert.equal(store.configuration.endpointURL, "https://fsn1.your-objectstorage.com");
        assert.deepEqual(store.configuration.s3Credentials.secretAccessKey, { name: "backup-s3", key: "secretKey" });
        assert.equal(store.retentionPolicy, "7d");
        const cluster = plain(one(r, "kubernetes:postgresql.cnpg.io/v1:Cluster").inputs.spec) as { plugins: unknown };
        assert.deepEqual(cluster.plugins, [{ name: "barman-cloud.cloudnative-pg.io", isWALArchiver: true, parameters: { barmanObjectName: "postgres-backups" } }]);
        const scheduled = plain(one(r, "kubernetes:postgresql.cnpg.io/v1:ScheduledBackup").inputs.spec) as { schedule: string; method: string };
        // CloudNativePG's cron has seconds first: 03:00:00 UTC daily, as backupSchedule '0 3 * * *'.
        assert.equal(scheduled.schedule, "0 0 3 * * *");
        assert.equal(scheduled.method, "plugin");
        for (const text of r.files.values()) assert.ok(!text.includes("s3-secret-value-456"));
    });

    it("installs the plugin after the operator and cert-manager (its TLS), even when apps need no TLS", async () => {
        const r = await render("prod", { ...s3, "platform:tls": "off" }, ["platform:backupS3SecretKey"]);
        const releases = ofType(r, "kubernetes:helm.sh/v3:Release");
        const plugin = releases.find((x) => x.inputs.chart === "plugin-barman-cloud");
        const operator = releases.find((x) => x.inputs.chart === "cloudnative-pg");
        const certManager = releases.find((x) => x.inputs.chart === "cert-manager");
        assert.ok(plugin && operator && certManager, "cert-manager is installed for the plugin although tls is off");
        assert.equal(plugin.inputs.namespace, "cnpg-system", "the plugin runs in the operator's namespace");
        assert.ok(plugin.dependencies.includes(operator.urn) && plugin.dependencies.includes(certManager.urn));
        const cluster = one(r, "kubernetes:postgresql.cnpg.io/v1:Cluster");
        assert.ok(transitiveDependencies(r, cluster).has(plugin.urn), "the Cluster archives only once the plugin runs");
    });

    it("drills a recovery from the object store weekly: a scratch Cluster recovered, checked and deleted, production never addressed", async () => {
        const r = await render("prod", s3, ["platform:backupS3SecretKey"]);
        const cron = ofType(r, "kubernetes:batch/v1:CronJob").find((c) => (c.inputs.metadata as { name: string }).name === "postgres-pitr-drill");
        assert.ok(cron, "no postgres-pitr-drill CronJob");
        const spec = cron.inputs.spec as { schedule: string; jobTemplate: { spec: { backoffLimit: number; ttlSecondsAfterFinished: number; template: { spec: PodSpec } } } };
        assert.equal(spec.schedule, "0 5 * * 0", "the restore drill's schedule");
        assert.equal(spec.jobTemplate.spec.backoffLimit, 0, "a failed drill is not retried over its own leftovers");
        assert.ok(spec.jobTemplate.spec.ttlSecondsAfterFinished > 0, "the Job and its pod expire, and the scratch Cluster with them");
        const pod = spec.jobTemplate.spec.template.spec;
        const steps = [...(pod.initContainers ?? []), ...pod.containers];
        const argsOf = (c: Container) => (c.args ?? []).join(" ");
        assert.deepEqual(steps.map((c) => c.name), ["remove-leftover", "create", "own", "recovered", "pg-pitr-drill-check", "remove"]);
        assert.match(argsOf(steps[0]), /^delete cluster\.postgresql\.cnpg\.io\/pitr-drill --ignore-not-found/);
        assert.match(argsOf(steps[3]), /^wait cluster\.postgresql\.cnpg\.io\/pitr-drill --for=condition=Ready/);
        assert.match(argsOf(steps[5]), /^delete cluster\.postgresql\.cnpg\.io\/pitr-drill /);
        // The kubelet expands $(VAR) in args only from the container's own env: the owner is this pod.
        const own = steps[2];
        const patch = JSON.parse(String(own.args?.find((a) => a.startsWith("--patch="))?.slice("--patch=".length))) as { metadata: { ownerReferences: Record<string, string>[] } };
        assert.deepEqual(patch.metadata.ownerReferences, [{ apiVersion: "v1", kind: "Pod", name: "$(POD_NAME)", uid: "$(POD_UID)" }]);
        for (const c of steps) {
            for (const ref of argsOf(c).match(/\$\(([A-Z_]+)\)/g) ?? []) {
                const v = c.env?.find((e) => e.name === ref.slice(2, -1));
                assert.ok(v?.valueFrom?.fieldRef, `${c.name}: ${ref} is not a downward-API env var of the container`);
            }
        }
        assert.equal(own.env?.find((e) => e.name === "POD_UID")?.valueFrom?.fieldRef?.fieldPath, "metadata.uid");
        // Only the scratch Cluster: its service and Secret, never production's.
        const check = steps[4];
        assert.equal(check.env?.find((e) => e.name === "PGHOST")?.value, "pitr-drill-rw.database.svc.cluster.local");
        assert.equal(check.env?.find((e) => e.name === "DRILL_DATABASES")?.value, "api");
        const podText = JSON.stringify(pod);
        for (const production of ["postgres-rw", "pgbouncer.", "postgres-superuser", "backup-s3", "app-api"]) {
            assert.ok(!podText.includes(production), `the drill's pod mentions ${production}`);
        }
        // The scratch Cluster: recovered from production's archive (serverName postgres), archiving nowhere.
        const manifest = JSON.parse((one(r, "kubernetes:core/v1:ConfigMap", "prod-database-pitr-drill-cluster").inputs.data as Record<string, string>)["cluster.json"]) as {
            metadata: { name: string }; spec: { instances: number; plugins?: unknown; bootstrap: unknown; externalClusters: unknown; storage: { storageClass?: string } };
        };
        assert.equal(manifest.metadata.name, "pitr-drill");
        assert.equal(manifest.spec.instances, 1);
        assert.equal(manifest.spec.plugins, undefined, "the scratch Cluster must not archive into production's store");
        assert.deepEqual(manifest.spec.bootstrap, { recovery: { source: "origin" } });
        assert.deepEqual(manifest.spec.externalClusters, [{ name: "origin", plugin: { name: "barman-cloud.cloudnative-pg.io", parameters: { barmanObjectName: "postgres-backups", serverName: "postgres" } } }]);
        assert.equal(manifest.spec.storage.storageClass, undefined, "the default class (hcloud-volumes) deletes the volume with the claim");
        // Its account may create Clusters, and change or delete only the scratch one.
        const rules = (one(r, "kubernetes:rbac.authorization.k8s.io/v1:Role", "prod-database-pitr-drill-role").inputs.rules) as { verbs: string[]; resourceNames?: string[] }[];
        for (const rule of rules) {
            if (rule.resourceNames === undefined) assert.deepEqual(rule.verbs, ["create"]);
            else assert.deepEqual(rule.resourceNames, ["pitr-drill"]);
        }
    });

    it("has none of it without S3", async () => {
        const r = await render("local");
        assert.equal(ofType(r, "kubernetes:barmancloud.cnpg.io/v1:ObjectStore").length, 0);
        assert.equal(ofType(r, "kubernetes:batch/v1:CronJob").filter((c) => (c.inputs.metadata as { name: string }).name === "postgres-pitr-drill").length, 0);
        assert.equal((plain(one(r, "kubernetes:postgresql.cnpg.io/v1:Cluster").inputs.spec) as { plugins?: unknown }).plugins, undefined);
    });
});

describe("import at creation", () => {
    const url = "postgresql://neon_user:import-secret-789@ep-cool-1.eu-central-1.aws.neon.tech/neondb?sslmode=require";

    it("starts the new Cluster as a copy of the source database (CloudNativePG's import), its password only in a Secret", async () => {
        const r = await render("prod", { "platform:databaseImportUrl": url }, ["platform:databaseImportUrl"]);
        const cluster = one(r, "kubernetes:postgresql.cnpg.io/v1:Cluster");
        const spec = plain(cluster.inputs.spec) as {
            bootstrap: { initdb: { database: string; owner: string; import: { type: string; databases: string[]; source: { externalCluster: string } } } };
            externalClusters: { name: string; connectionParameters: Record<string, string>; password: { name: string; key: string } }[];
        };
        assert.ok(!isSecretValue(cluster.inputs.spec), "the Cluster's spec stays readable");
        assert.deepEqual(spec.bootstrap.initdb, {
            database: "api", owner: "app_api", import: { type: "microservice", databases: ["neondb"], source: { externalCluster: "import-source" } },
        });
        assert.deepEqual(spec.externalClusters, [{
            name: "import-source",
            connectionParameters: { host: "ep-cool-1.eu-central-1.aws.neon.tech", port: "5432", user: "neon_user", dbname: "neondb", sslmode: "require" },
            password: { name: "database-import", key: "password" },
        }]);
        assert.equal((secretInput(one(r, "kubernetes:core/v1:Secret", "prod-database-import").inputs.stringData) as Record<string, string>).password, "import-secret-789");
        // Read only when the Cluster is created: a later edit must not touch the running Cluster.
        assert.ok(cluster.ignoreChanges.includes("spec.bootstrap") && cluster.ignoreChanges.includes("spec.externalClusters"));
        for (const text of r.files.values()) assert.ok(!text.includes("import-secret-789"), "the password never reaches the render output");
    });

    it("refuses a source without TLS, in plain text, or with no single app to import into", () => {
        const base = { adminCidrs: '["198.51.100.7/32"]', acmeEmail: "ops@example.com" };
        const problems = (values: Record<string, unknown>, secret = true) => {
            try {
                parseConfig({ stack: "prod", values: { ...base, ...values }, hcloudToken: "t", isSecret: () => secret });
                return [];
            } catch (err) {
                assert.ok(err instanceof ConfigError);
                return err.problems.map((p) => `${p.key}: ${p.message}`);
            }
        };
        const one = JSON.stringify({ api: { image: "api:1", database: true } });
        const two = JSON.stringify({ api: { image: "api:1", database: true }, web: { image: "web:1", database: true } });
        assert.deepEqual(problems({ apps: one, databaseImportUrl: url }), []);
        assert.match(problems({ apps: one, databaseImportUrl: url.replace("?sslmode=require", "") }).join(), /databaseImportUrl: must require TLS/);
        assert.match(problems({ apps: one, databaseImportUrl: url }, false).join(), /databaseImportUrl: is stored in plain text/);
        assert.match(problems({ apps: two, databaseImportUrl: url }).join(), /databaseImportUrl: imports one database into the one app with database: true; 2 apps have one/);
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

    it("checks PostgreSQL's max_connections covers every pool of both login roles plus a reserve", () => {
        const p = problems({ pgbouncerReplicas: "4", apps: app() });
        assert.match(p[0], /^platform:postgresMaxConnections: PgBouncer can open 200 server connections .* plus 10 reserved, 210 in all, but PostgreSQL allows 200/);
    });

    it("refuses a per-pod pool that is not a whole number, instead of a budget of NaN", () => {
        for (const bad of ["ten", "-5", "0", "2.5"]) {
            const p = problems({ apps: app({ env: { DB_MAX_CONNECTIONS: bad } }) });
            assert.equal(p.length, 1, `${bad}: ${p.join("; ")}`);
            assert.match(p[0], /^platform:apps\.api\.env\.DB_MAX_CONNECTIONS: must be a whole number of connections per pod/);
        }
    });

    it("refuses fewer than 2 PgBouncer instances and an unknown PostgreSQL major", () => {
        assert.match(problems({ pgbouncerReplicas: "1", apps: app() })[0], /^platform:pgbouncerReplicas: must be at least 2/);
        assert.match(problems({ postgresMajor: "12", apps: app() })[0], /^platform:postgresMajor: must be a PostgreSQL major: 15, 16, 17, 18/);
    });

    it("refuses a hand-set DATABASE_URL on an app whose database the platform provides", () => {
        assert.match(problems({ apps: app({ secrets: { DATABASE_URL: "x" } }) })[0], /apps\.api\.secrets\.DATABASE_URL: is set by the platform/);
    });

    it("refuses a database volume under 10Gi", () => {
        assert.match(problems({ postgresStorage: "5Gi", apps: app() })[0], /^platform:postgresStorage: must be at least 10Gi/);
    });
});

describe("existing-cluster database", () => {
    it("uses the named StorageClass, or the default with a warning; one instance without a PDB on a laptop", async () => {
        const apps = JSON.stringify({ api: { image: "api:dev", database: true, replicas: 1 } });
        const named = await render("local", { "platform:apps": apps, "platform:postgresStorageClass": "local-retain" });
        const spec = (r: Render) => plain(one(r, "kubernetes:postgresql.cnpg.io/v1:Cluster").inputs.spec) as { instances: number; enablePDB: boolean; storage: { storageClass?: string } };
        assert.equal(spec(named).storage.storageClass, "local-retain");
        assert.equal(spec(named).instances, 1);
        assert.equal(spec(named).enablePDB, false, "a single instance would block every drain");
        const fallback = await render("local", { "platform:apps": apps });
        assert.equal(spec(fallback).storage.storageClass, undefined);
    });

    it("uses an operator that is already there when told to", async () => {
        const r = await render("local", { "platform:cnpgOperator": "existing" });
        assert.equal(ofType(r, "kubernetes:helm.sh/v3:Release").filter((x) => x.inputs.chart === "cloudnative-pg").length, 0);
        assert.equal(ofType(r, "kubernetes:postgresql.cnpg.io/v1:Cluster").length, 1);
    });
});
