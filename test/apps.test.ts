// Apps from stack config: the pure builders, the config checks, and the
// objects the real program creates under the mock runtime.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import { APP_DEFAULTS, AppSettings } from "../components/apps/app-config";
import { isPinnedImage } from "../policies/rules/workloads";
import {
    configChecksum, deployment, ingress, ingressPolicy, migrationJob, migrationJobName, migrationPgOptions, podDisruptionBudget, probeTimeout,
} from "../components/apps/app-render";
import { ConfigError, parseConfig } from "../components/config";
import { isSecretValue } from "../tools/mock-runtime";
import { Render } from "../tools/render";
import { one, ofType, plain, render, secretInput } from "./support/stack";

type Container = { name: string; image: string; env?: unknown[]; envFrom: unknown[]; ports?: unknown[]; startupProbe?: Probe; readinessProbe?: Probe; livenessProbe?: Probe; resources: { requests: object; limits: object }; securityContext: Record<string, unknown> };
type Probe = { httpGet: { path: string }; periodSeconds: number; timeoutSeconds: number; failureThreshold: number };
type PodTemplate = { metadata: { annotations: Record<string, string> }; spec: { containers: Container[]; terminationGracePeriodSeconds: number; securityContext: Record<string, unknown>; topologySpreadConstraints?: unknown[] } };

const api: AppSettings = {
    name: "api", image: "ghcr.io/acme/api:1.2.3", port: 8080, replicas: 3, cpu: "500m", memory: "256Mi",
    env: { DB_MAX_CONNECTIONS: "25" }, secrets: { DATABASE_URL: "postgresql://x", DATABASE_DIRECT_URL: "postgresql://y" },
    healthPath: "/health", livenessPath: "/livez", host: "api.example.com", migrationCommand: ["node", "dist/migrate.js"], migrationLockTimeout: 5,
    shutdownTimeout: 30, healthTimeout: 3, startupTimeout: 240, singleton: false, worker: false,
    database: false, databasePasswordVersion: 1,
};

function pod(app: AppSettings): PodTemplate {
    return (deployment(app, { image: "img:1", pullFromRegistry: false }, "sum").spec as unknown as { template: PodTemplate }).template;
}

describe("app builders", () => {
    it("readiness probes the health path (5 s); startup and liveness probe the liveness path (10 s); timeouts above the app's own", () => {
        for (const healthTimeout of [1, 3, 4, 10]) {
            const [c] = pod({ ...api, healthTimeout }).spec.containers;
            assert.ok(c.startupProbe && c.readinessProbe && c.livenessProbe);
            assert.equal(c.readinessProbe.httpGet.path, "/health");
            // A database outage fails /health; it must take pods out of the Service, not restart them.
            assert.equal(c.startupProbe.httpGet.path, "/livez");
            assert.equal(c.livenessProbe.httpGet.path, "/livez");
            for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
                assert.ok(probe.timeoutSeconds > healthTimeout, `timeout ${probe.timeoutSeconds} vs health ${healthTimeout}`);
            }
            assert.equal(c.readinessProbe.periodSeconds, 5);
            assert.equal(c.livenessProbe.periodSeconds, 10);
        }
        assert.equal(probeTimeout(api), 5);
    });

    it("gives a slow first boot its startup budget (seed 004: 240 s)", () => {
        const [c] = pod(api).spec.containers;
        assert.ok(c.startupProbe);
        assert.ok(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold >= 240);
    });

    it("keeps the grace period above the preStop pause plus the shutdown timeout (30 s -> 60 s)", () => {
        assert.equal(pod(api).spec.terminationGracePeriodSeconds, 60);
        for (const shutdownTimeout of [1, 10, 45, 300]) {
            const p = pod({ ...api, shutdownTimeout });
            const preStop = (p.spec.containers[0] as Container & { lifecycle: { preStop: { sleep: { seconds: number } } } }).lifecycle.preStop.sleep.seconds;
            assert.ok(preStop > 0, "traffic drains before SIGTERM");
            assert.ok(p.spec.terminationGracePeriodSeconds > shutdownTimeout + preStop);
        }
    });

    it("rolls out without ever dropping below the replica count, spread over nodes", () => {
        const spec = deployment(api, { image: "img:1", pullFromRegistry: false }, "sum").spec as unknown as { replicas: number; strategy: { type: string; rollingUpdate: { maxUnavailable: number } } };
        assert.equal(spec.replicas, 3);
        assert.deepEqual(spec.strategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
        assert.equal(pod(api).spec.topologySpreadConstraints?.length, 1);
    });

    it("runs restricted: non-root, read-only root, no capabilities, RuntimeDefault seccomp, requests = limits", () => {
        const p = pod(api);
        const [c] = p.spec.containers;
        assert.equal(p.spec.securityContext.runAsNonRoot, true);
        assert.equal(c.securityContext.readOnlyRootFilesystem, true);
        assert.equal(c.securityContext.allowPrivilegeEscalation, false);
        assert.deepEqual(c.securityContext.capabilities, { drop: ["ALL"] });
        assert.deepEqual(c.securityContext.seccompProfile, { type: "RuntimeDefault" });
        assert.deepEqual(c.resources.requests, { cpu: "500m", memory: "256Mi" });
        assert.deepEqual(c.resources.limits, { cpu: "500m", memory: "256Mi" });
    });

    it("reads config and secrets only by reference", () => {
        const [c] = pod(api).spec.containers;
        assert.equal(c.env, undefined);
        assert.deepEqual(c.envFrom, [{ configMapRef: { name: "api-env" } }, { secretRef: { name: "api-secrets" } }]);
    });

    it("a singleton runs one pod, is recreated rather than rolled, and gets no disruption budget", () => {
        const single = { ...api, singleton: true, replicas: 1 };
        const spec = deployment(single, { image: "img:1", pullFromRegistry: false }, "sum").spec as unknown as { replicas: number; strategy: { type: string } };
        assert.equal(spec.replicas, 1);
        assert.equal(spec.strategy.type, "Recreate");
        assert.equal(podDisruptionBudget(single), undefined);
    });

    it("a disruption budget lets a drain evict one pod at a time, even at one replica", () => {
        for (const replicas of [1, 2, 5]) {
            const pdb = podDisruptionBudget({ ...api, replicas });
            assert.deepEqual((pdb?.spec as { maxUnavailable: number }).maxUnavailable, 1);
        }
    });

    it("a worker has no port and no HTTP probes", () => {
        const [c] = pod({ ...api, worker: true, host: undefined }).spec.containers;
        assert.equal(c.ports, undefined);
        assert.equal(c.readinessProbe, undefined);
        assert.equal(c.livenessProbe, undefined);
    });

    it("the config checksum changes with any env or secret value, and not with key order", () => {
        const base = configChecksum({ A: "1", B: "2" }, { S: "x" }, "k");
        assert.equal(configChecksum({ B: "2", A: "1" }, { S: "x" }, "k"), base);
        assert.notEqual(configChecksum({ A: "1", B: "3" }, { S: "x" }, "k"), base);
        assert.notEqual(configChecksum({ A: "1", B: "2" }, { S: "y" }, "k"), base);
        assert.notEqual(configChecksum({ A: "1" }, { S: "x" }, "k"), base);
    });

    it("the config checksum confirms no guessed secret without its generated key", () => {
        const env = { A: "1" };
        const guess = { DATABASE_URL: "postgresql://app_api_1:guessed@pgbouncer/api" };
        const canonical = (o: Record<string, string>) => Object.keys(o).sort().map((k) => [k, o[k]]);
        const unkeyed = createHash("sha256").update(JSON.stringify({ env: canonical(env), secrets: canonical(guess) })).digest("hex");
        const annotation = configChecksum(env, guess, "0f".repeat(32));
        assert.notEqual(annotation, unkeyed, "knowing env and the guessed value is not enough");
        assert.notEqual(configChecksum(env, guess, "1e".repeat(32)), annotation, "the key decides the digest");
    });

    it("the migration Job alone gets the direct database URL, from its own Secret, with a lock timeout, and is named per image and command", () => {
        const job = migrationJob(api, { image: "img:2", pullFromRegistry: false }, migrationJobName(api, "img:2"));
        const [c] = (job.spec as unknown as { template: PodTemplate }).template.spec.containers as (Container & { command: string[] })[];
        assert.deepEqual(c.command, ["node", "dist/migrate.js"]);
        assert.deepEqual(c.env, [
            { name: "DATABASE_URL", valueFrom: { secretKeyRef: { name: "api-migration", key: "DATABASE_URL" } } },
            { name: "PGOPTIONS", value: "-c lock_timeout=5s" },
        ]);
        assert.equal(migrationPgOptions({ ...api, env: { PGOPTIONS: "-c statement_timeout=0" }, migrationLockTimeout: 12 }), "-c statement_timeout=0 -c lock_timeout=12s");
        assert.equal(migrationJobName(api, "img:2"), migrationJobName(api, "img:2"));
        assert.notEqual(migrationJobName(api, "img:3"), migrationJobName(api, "img:2"));
        assert.notEqual(migrationJobName({ ...api, migrationCommand: ["other"] }, "img:2"), migrationJobName(api, "img:2"));
        assert.match(migrationJobName(api, "img:2"), /^api-migrate-[0-9a-f]{10}$/);
        // A failed migration (database down) runs again on the next `pulumi up` instead of being awaited forever.
        assert.equal((job.metadata as { annotations: Record<string, string> }).annotations["pulumi.com/replaceUnready"], "true");
    });

    it("the Ingress has TLS from the cluster issuer, or none when a CDN terminates TLS", () => {
        const withTls = ingress(api, { ingressClass: "traefik", clusterIssuer: "letsencrypt", middlewares: ["kube-system-security-headers@kubernetescrd"], awaitStatus: true });
        assert.deepEqual((withTls.spec as { tls: unknown }).tls, [{ hosts: ["api.example.com"], secretName: "api-tls" }]);
        assert.equal((withTls.metadata as { annotations: Record<string, string> }).annotations["cert-manager.io/cluster-issuer"], "letsencrypt");
        const noTls = ingress(api, { ingressClass: "nginx", middlewares: [], awaitStatus: true });
        assert.equal((noTls.spec as { tls?: unknown }).tls, undefined);
        assert.deepEqual((noTls.metadata as { annotations: Record<string, string> }).annotations, {});
    });

    it("the ingress policy admits only the ingress controller, on the app's port (flows: test/network-policy.test.ts)", () => {
        const ing = ingressPolicy(api, { namespace: "kube-system", podLabels: { "app.kubernetes.io/name": "traefik" } });
        assert.deepEqual(ing.spec, {
            podSelector: {},
            policyTypes: ["Ingress"],
            ingress: [{
                from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "app.kubernetes.io/name": "traefik" } } }],
                ports: [{ port: 8080, protocol: "TCP" }],
            }],
        });
    });

    it("accepts only pinned image references", () => {
        for (const ok of ["ghcr.io/acme/api:1.2.3", "api:dev", "registry:5000/team/api:v2", `api@sha256:${"a".repeat(64)}`]) assert.ok(isPinnedImage(ok), ok);
        for (const bad of ["ghcr.io/acme/api", "api:latest", "registry:5000/team/api", "api:"]) assert.ok(!isPinnedImage(bad), bad);
    });
});

describe("app config", () => {
    const base = { adminCidrs: '["198.51.100.7/32"]', acmeEmail: "ops@example.com" };
    function problems(apps: unknown, extra: Record<string, unknown> = {}, appsAreSecret = true): string[] {
        try {
            parseConfig({ stack: "prod", values: { ...base, ...extra, apps: JSON.stringify(apps) }, hcloudToken: "t", isSecret: () => appsAreSecret });
        } catch (err) {
            assert.ok(err instanceof ConfigError);
            return err.problems.map((p) => `${p.key}: ${p.message}`);
        }
        return [];
    }

    it("fills the seed defaults: port 8080, cpu 0.5, memory 256Mi, /health, 30 s shutdown", () => {
        const config = parseConfig({ stack: "prod", values: { ...base, apps: JSON.stringify({ api: { image: "api:1" } }) }, hcloudToken: "t" });
        const [app] = config.apps;
        assert.deepEqual([app.port, app.cpu, app.memory, app.healthPath, app.shutdownTimeout, app.healthTimeout], [8080, "500m", "256Mi", "/health", 30, 3]);
        assert.equal(app.replicas, APP_DEFAULTS.replicas);
    });

    it("refuses a credential-looking env var and says to move it to secrets", () => {
        const p = problems({ api: { image: "api:1", env: { DB_PASSWORD: "hunter2", STRIPE_API_KEY: "sk" } } });
        assert.equal(p.length, 2);
        assert.match(p[0], /^platform:apps\.api\.env\.DB_PASSWORD: looks like a credential.*apps\.api\.secrets/);
        assert.ok(!p.join("").includes("hunter2"), "the value is never echoed");
    });

    it("refuses secrets stored in plain text", () => {
        const p = problems({ api: { image: "api:1", secrets: { DATABASE_URL: "postgresql://u:p@h/db" } } }, {}, false);
        assert.deepEqual(p.map((x) => x.split(":").slice(0, 2).join(":")), ["platform:apps.api.secrets"]);
        assert.match(p[0], /--secret/);
    });

    it("refuses unpinned images, and both or neither of image and build", () => {
        assert.match(problems({ api: { image: "ghcr.io/acme/api:latest" } })[0], /apps\.api\.image: must be pinned/);
        assert.match(problems({ api: {} })[0], /apps\.api: needs image .* or build/);
        assert.match(problems({ api: { image: "api:1", build: { context: "." } } })[0], /apps\.api: has both image and build: keep one/);
    });

    it("needs a registry to push a build to", () => {
        assert.match(problems({ api: { build: { context: "examples/api" } } })[0], /^platform:registryServer: apps\.api is built from source/);
    });

    it("needs a direct database URL for migrations", () => {
        assert.match(problems({ api: { image: "api:1", migrationCommand: ["migrate"] } })[0], /apps\.api\.secrets\.DATABASE_DIRECT_URL: is required by migrationCommand.*advisory lock/);
    });

    it("catches workers with hosts, replicated singletons, duplicate hosts and unknown app settings", () => {
        assert.match(problems({ w: { image: "w:1", worker: true, host: "w.example.com" } })[0], /apps\.w\.host: a worker has no port/);
        assert.match(problems({ s: { image: "s:1", singleton: true, replicas: 2 } })[0], /apps\.s\.replicas: a singleton runs exactly one pod/);
        assert.match(problems({ a: { image: "a:1", host: "x.example.com" }, b: { image: "b:1", host: "x.example.com" } })[0], /apps\.b\.host: x\.example\.com is already the host of apps\.a/);
        assert.match(problems({ api: { image: "api:1", replica: 2 } })[0], /^platform:apps\.api\.replica: unknown app setting; did you mean replicas\?/);
        assert.match(problems({ database: { image: "db:1" } })[0], /^platform:apps\.database: app names must not be a namespace the platform uses/);
    });

    it("needs an ACME email when an app is served over Let's Encrypt TLS, not when TLS is off", () => {
        const apps = { api: { image: "api:1", host: "api.example.com" } };
        assert.match(problems(apps, { acmeEmail: undefined })[0], /^platform:acmeEmail: is required with tls=letsencrypt/);
        assert.deepEqual(problems(apps, { acmeEmail: undefined, tls: "off" }), []);
    });
});

describe("prod stack apps", () => {
    let prod: Render;
    before(async () => {
        prod = await render("prod");
    });

    function apiTemplate(r: Render): PodTemplate {
        return (one(r, "kubernetes:apps/v1:Deployment", "api-deployment").inputs.spec as { template: PodTemplate }).template;
    }

    it("tunes the bundled Traefik with a HelmChartConfig that trusts the load balancer's PROXY protocol", () => {
        const config = one(prod, "kubernetes:helm.cattle.io/v1:HelmChartConfig");
        assert.deepEqual(plain(config.inputs.metadata), { name: "traefik", namespace: "kube-system" });
        const values = parse((config.inputs.spec as { valuesContent: string }).valuesContent) as { additionalArguments: string[] };
        assert.ok(values.additionalArguments.includes("--entryPoints.web.proxyProtocol.trustedIPs=10.0.1.5/32"));
        const services = ofType(prod, "hcloud:index/loadBalancerService:LoadBalancerService");
        assert.deepEqual(services.map((s) => [s.inputs.listenPort, s.inputs.proxyprotocol]), [[80, true], [443, true]]);
    });

    it("deploys api with three probes, a grace period above its shutdown timeout and the pushed image by digest", () => {
        const t = apiTemplate(prod);
        const [c] = t.spec.containers;
        assert.ok(c.startupProbe && c.readinessProbe && c.livenessProbe);
        assert.ok(t.spec.terminationGracePeriodSeconds > 30);
        const image = one(prod, "docker-build:index:Image");
        assert.deepEqual(image.inputs.platforms, ["linux/amd64"]);
        assert.equal(image.inputs.push, true);
        const registries = secretInput(image.inputs.registries) as { address: string; password: string }[];
        assert.deepEqual(registries.map((r) => r.address), ["ghcr.io"]);
        assert.match(registries[0].password, /^offline-placeholder-/);
        assert.match(c.image, /^ghcr\.io\/acme\/api:prod@sha256:[0-9a-f]{64}$/);
        assert.equal((prod.run.outputs.apps as Record<string, { image: string }>).api.image, c.image);
    });

    it("pulls the pushed image from the private registry with a dockerconfigjson Secret in the app's namespace, kept secret", () => {
        const pull = one(prod, "kubernetes:core/v1:Secret", "api-registry-credentials");
        assert.equal(pull.inputs.type, "kubernetes.io/dockerconfigjson");
        assert.deepEqual(plain(pull.inputs.metadata), { name: "registry-credentials", namespace: "api", labels: (plain(pull.inputs.metadata) as { labels: object }).labels });
        const config = JSON.parse((secretInput(pull.inputs.stringData) as Record<string, string>)[".dockerconfigjson"]) as { auths: Record<string, { username: string; password: string; auth: string }> };
        // The kubelet matches credentials by the image's registry host.
        const [c] = apiTemplate(prod).spec.containers;
        const host = c.image.split("/")[0];
        const entry = config.auths[host];
        assert.ok(entry, `no credentials for ${host}`);
        assert.equal(Buffer.from(entry.auth, "base64").toString(), `${entry.username}:${entry.password}`);
        assert.equal(entry.username, "acme-ci");
        assert.match(entry.password, /^offline-placeholder-/);
        for (const kind of ["kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job"]) {
            for (const w of ofType(prod, kind).filter((x) => (plain(x.inputs.metadata) as { namespace: string }).namespace === "api")) {
                const spec = (plain(w.inputs.spec) as { template: { spec: { imagePullSecrets?: { name: string }[] } } }).template.spec;
                assert.deepEqual(spec.imagePullSecrets, [{ name: "registry-credentials" }], w.name);
            }
        }
        for (const text of prod.files.values()) assert.ok(!text.includes(entry.password), "the registry password never reaches the render output");
    });

    it("without a registry, pods reference no pull Secret", async () => {
        const r = await render("local");
        assert.equal(ofType(r, "kubernetes:core/v1:Secret").filter((s) => s.name.endsWith("-registry-credentials")).length, 0);
        for (const d of ofType(r, "kubernetes:apps/v1:Deployment")) {
            assert.equal((plain(d.inputs.spec) as { template: { spec: { imagePullSecrets?: unknown } } }).template.spec.imagePullSecrets, undefined);
        }
    });

    it("passes DATABASE_URL only through the Secret, never in a ConfigMap or a literal env value", () => {
        const secret = one(prod, "kubernetes:core/v1:Secret", "api-secrets");
        const secrets = secretInput(secret.inputs.stringData) as Record<string, string>;
        // The app's pods get the pooled URL only: the direct one would bypass the connection budget.
        assert.deepEqual(Object.keys(secrets).sort(), ["DATABASE_URL"]);
        const migration = secretInput(one(prod, "kubernetes:core/v1:Secret", "api-migration-secrets").inputs.stringData) as Record<string, string>;
        assert.match(migration.DATABASE_URL, /@postgres-rw\.database\.svc\.cluster\.local:5432\/api/);
        assert.notEqual(migration.DATABASE_URL, secrets.DATABASE_URL);
        for (const cm of ofType(prod, "kubernetes:core/v1:ConfigMap")) {
            const text = JSON.stringify(cm.inputs);
            for (const value of Object.values(secrets)) assert.ok(!text.includes(value), `${cm.name} holds a secret`);
            assert.ok(!("DATABASE_URL" in ((cm.inputs.data ?? {}) as object)));
        }
        const [c] = apiTemplate(prod).spec.containers;
        assert.equal(c.env, undefined);
    });

    it("serves api.example.com over TLS with the security headers, after a migration Job, with a PDB and network policies", () => {
        const ing = one(prod, "kubernetes:networking.k8s.io/v1:Ingress");
        assert.deepEqual((ing.inputs.spec as { tls: unknown }).tls, [{ hosts: ["api.example.com"], secretName: "api-tls" }]);
        const annotations = (ing.inputs.metadata as { annotations: Record<string, string> }).annotations;
        assert.equal(annotations["cert-manager.io/cluster-issuer"], "letsencrypt");
        assert.equal(annotations["traefik.ingress.kubernetes.io/router.middlewares"], "kube-system-security-headers@kubernetescrd");
        const issuer = one(prod, "kubernetes:cert-manager.io/v1:ClusterIssuer");
        assert.equal((issuer.inputs.spec as { acme: { email: string } }).acme.email, "ops@example.com");
        const inApi = (type: string) => ofType(prod, type).filter((r) => (plain(r.inputs.metadata) as { namespace?: string }).namespace === "api");
        assert.equal(inApi("kubernetes:batch/v1:Job").length, 1);
        assert.equal(inApi("kubernetes:policy/v1:PodDisruptionBudget").length, 1);
        assert.deepEqual(inApi("kubernetes:networking.k8s.io/v1:NetworkPolicy").map((n) => (n.inputs.metadata as { name: string }).name).sort(),
            ["allow-acme-http01-solver", "allow-ingress-controller", "deny-cloud-metadata"]);
        assert.equal((prod.run.outputs.apps as Record<string, { url: string; namespace: string }>).api.url, "https://api.example.com");
    });
});

describe("config changes roll the pods", () => {
    const apps = (dbMax: number) => JSON.stringify({
        api: { image: "ghcr.io/acme/api:1.0.0", host: "api.example.com", env: { DB_MAX_CONNECTIONS: dbMax, DB_POOL_TIMEOUT: "30s" }, secrets: { DATABASE_URL: "postgresql://a" } },
    });
    const checksum = (r: Render) => (one(r, "kubernetes:apps/v1:Deployment", "api-deployment").inputs.spec as { template: PodTemplate }).template.metadata.annotations["platform.io/config-checksum"];

    it("changing one env value changes the pod-template checksum; the same config does not", async () => {
        const a = await render("prod", { "platform:apps": apps(25) }, ["platform:apps"]);
        const same = await render("prod", { "platform:apps": apps(25) }, ["platform:apps"]);
        const b = await render("prod", { "platform:apps": apps(30) }, ["platform:apps"]);
        assert.match(checksum(a), /^[0-9a-f]{64}$/);
        assert.equal(checksum(same), checksum(a));
        assert.notEqual(checksum(b), checksum(a));
    });

    it("rotating a secret changes the checksum too, and the checksum itself is not secret", async () => {
        const a = await render("prod", { "platform:apps": apps(25) }, ["platform:apps"]);
        const rotated = JSON.parse(apps(25)) as { api: { secrets: Record<string, string> } };
        rotated.api.secrets.DATABASE_URL = "postgresql://b";
        const b = await render("prod", { "platform:apps": JSON.stringify(rotated) }, ["platform:apps"]);
        assert.notEqual(checksum(b), checksum(a));
        assert.ok(!isSecretValue(one(b, "kubernetes:apps/v1:Deployment", "api-deployment").inputs.spec));
    });
});

describe("existing-cluster apps", () => {
    it("use the cluster's ingress class and controller, and leave its ingress controller alone", async () => {
        const r = await render("local", {
            "platform:ingressClass": "nginx",
            "platform:ingressNamespace": "ingress-nginx",
            "platform:ingressPodSelector": "app.kubernetes.io/name=ingress-nginx",
            "platform:apps": JSON.stringify({ web: { image: "web:1.0", host: "web.localhost", replicas: 1 } }),
        });
        assert.equal(ofType(r, "kubernetes:helm.cattle.io/v1:HelmChartConfig").length, 0);
        assert.equal(ofType(r, "kubernetes:traefik.io/v1alpha1:Middleware").length, 0);
        const ing = one(r, "kubernetes:networking.k8s.io/v1:Ingress");
        assert.equal((ing.inputs.spec as { ingressClassName: string }).ingressClassName, "nginx");
        const policy = ofType(r, "kubernetes:networking.k8s.io/v1:NetworkPolicy").find((n) => n.name === "web-allow-ingress-controller");
        assert.deepEqual((policy?.inputs.spec as { ingress: { from: unknown[] }[] }).ingress[0].from, [{
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ingress-nginx" } },
            podSelector: { matchLabels: { "app.kubernetes.io/name": "ingress-nginx" } },
        }]);
        assert.equal((r.run.outputs.apps as Record<string, { url: string }>).web.url, "http://web.localhost");
    });
});
