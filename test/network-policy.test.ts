// The rendered NetworkPolicies, evaluated with Kubernetes semantics
// (support/netpol.ts) over the pods the render deploys plus the ones other
// systems start (Traefik, CoreDNS, cert-manager's HTTP-01 solver): the flows
// the platform needs must be allowed, and the ones it promises to block denied.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import { ACME_SOLVER } from "../components/apps/app-render";
import type { Render } from "../tools/render";
import { type Flow, type Namespace, type NetworkPolicy, NetworkPolicyEvaluator, type Pod } from "./support/netpol";
import { podTemplatesOf } from "../policies/rules/pod-security";
import { render } from "./support/stack";

interface K8sObject {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace?: string; labels?: Record<string, string> };
    spec?: unknown;
}

function objects(r: Render): K8sObject[] {
    return [...r.files].filter(([file]) => file.startsWith("k8s/")).map(([, text]) => parse(text) as K8sObject);
}

/** One pod per rendered workload, with its template's labels and container ports. */
function renderedPods(objs: K8sObject[]): Pod[] {
    const pods: Pod[] = [];
    for (const o of objs) {
        for (const template of podTemplatesOf(o)) {
            const meta = (o.kind === "CronJob"
                ? (o.spec as { jobTemplate: { spec: { template: { metadata?: { labels?: Record<string, string> } } } } }).jobTemplate.spec.template.metadata
                : (o.spec as { template: { metadata?: { labels?: Record<string, string> } } }).template.metadata) ?? {};
            const ports = (template.spec.containers ?? []).flatMap((c) => (c.ports ?? []).map((p) => ({ name: p.name ?? "", containerPort: p.containerPort ?? 0, protocol: p.protocol ?? undefined })));
            pods.push({ name: `${o.kind.toLowerCase()}/${o.metadata.name}`, namespace: o.metadata.namespace ?? "default", labels: meta.labels ?? {}, ports });
        }
    }
    return pods;
}

interface World {
    evaluator: NetworkPolicyEvaluator;
    /** The one pod in `namespace` whose name is `name` or matches it. */
    pod(namespace: string, name: string | RegExp): Pod;
}

/** Pods the platform does not render, as their upstreams label them. */
function outsidePods(controller: { namespace: string; labels: Record<string, string> }, appNamespace: string): Pod[] {
    // CloudNativePG's instances and pooler pods (cloudnative-pg v1.30.0 pkg/utils/labels_annotations.go) and its operator.
    const cnpg: Pod[] = [
        { name: "postgres-1", namespace: "database", labels: { "cnpg.io/cluster": "postgres", "cnpg.io/instanceName": "postgres-1", role: "primary" } },
        { name: "postgres-2", namespace: "database", labels: { "cnpg.io/cluster": "postgres", "cnpg.io/instanceName": "postgres-2", role: "replica" } },
        { name: "pgbouncer-1", namespace: "database", labels: { "cnpg.io/poolerName": "pgbouncer", "app.kubernetes.io/name": "pgbouncer" } },
        { name: "cnpg-operator", namespace: "cnpg-system", labels: { "app.kubernetes.io/name": "cloudnative-pg" } },
    ];
    return [
        ...cnpg,
        { name: "ingress-controller", namespace: controller.namespace, labels: controller.labels },
        { name: "coredns", namespace: "kube-system", labels: { "k8s-app": "kube-dns" }, ports: [{ name: "dns", containerPort: 53, protocol: "UDP" }] },
        // cert-manager v1.19.1 pkg/issuer/acme/http/pod.go: the solver runs in the Certificate's namespace.
        {
            name: "cm-acme-http-solver", namespace: appNamespace,
            labels: { ...ACME_SOLVER.labels, "acme.cert-manager.io/http-domain": "1234", "acme.cert-manager.io/http-token": "5678" },
            ports: [{ name: "http", containerPort: ACME_SOLVER.port, protocol: "TCP" }],
        },
        { name: "intruder", namespace: "default", labels: { app: "something-else" } },
    ];
}

function world(r: Render, controller: { namespace: string; labels: Record<string, string> }): World {
    const objs = objects(r);
    const namespaces: Namespace[] = objs.filter((o) => o.kind === "Namespace").map((o) => ({ name: o.metadata.name, labels: o.metadata.labels ?? {} }));
    for (const name of ["default", "kube-system", "cnpg-system", controller.namespace]) {
        if (!namespaces.some((n) => n.name === name)) namespaces.push({ name, labels: {} });
    }
    const policies = objs.filter((o) => o.kind === "NetworkPolicy") as unknown as NetworkPolicy[];
    const pods = [...renderedPods(objs), ...outsidePods(controller, "api")];
    const evaluator = new NetworkPolicyEvaluator(policies, namespaces);
    return {
        evaluator,
        pod(namespace, name) {
            const found = pods.filter((p) => p.namespace === namespace && (typeof name === "string" ? p.name === name : name.test(p.name)));
            assert.equal(found.length, 1, `pod ${namespace}/${name}; have ${pods.map((p) => `${p.namespace}/${p.name}`).join(", ")}`);
            return found[0];
        },
    };
}

function expectFlows(w: World, flows: [string, Flow, boolean][]): void {
    for (const [what, flow, allowed] of flows) {
        const verdict = w.evaluator.evaluate(flow);
        assert.equal(verdict.allowed, allowed, `${what}: ${verdict.reason}`);
    }
}

describe("network policies (prod)", () => {
    let w: World;
    before(async () => {
        w = world(await render("prod"), { namespace: "kube-system", labels: { "app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": "traefik-kube-system" } });
    });

    it("admit what the platform needs", () => {
        const traefik = { pod: w.pod("kube-system", "ingress-controller") };
        const api = { pod: w.pod("api", "deployment/api") };
        expectFlows(w, [
            ["ingress controller -> app port", { from: traefik, to: api, port: 8080 }, true],
            ["ingress controller -> ACME HTTP-01 solver", { from: traefik, to: { pod: w.pod("api", "cm-acme-http-solver") }, port: ACME_SOLVER.port }, true],
            ["app -> PgBouncer", { from: api, to: { pod: w.pod("database", "pgbouncer-1") }, port: 5432 }, true],
            ["app -> DNS", { from: api, to: { pod: w.pod("kube-system", "coredns") }, port: 53, protocol: "UDP" }, true],
            ["app -> the internet", { from: api, to: { ip: "1.1.1.1" }, port: 443 }, true],
            ["PgBouncer -> PostgreSQL", { from: { pod: w.pod("database", "pgbouncer-1") }, to: { pod: w.pod("database", "postgres-1") }, port: 5432 }, true],
            ["replication", { from: { pod: w.pod("database", "postgres-2") }, to: { pod: w.pod("database", "postgres-1") }, port: 5432 }, true],
            ["operator -> instance status", { from: { pod: w.pod("cnpg-system", "cnpg-operator") }, to: { pod: w.pod("database", "postgres-1") }, port: 8000 }, true],
        ]);
    });

    it("the migration Job and the database Jobs reach PostgreSQL directly", () => {
        const postgres = { pod: w.pod("database", "postgres-1") };
        expectFlows(w, [
            ["migration Job -> PostgreSQL", { from: { pod: w.pod("api", /^job\/api-migrate-[0-9a-f]{10}$/) }, to: postgres, port: 5432 }, true],
            ["backup CronJob -> PostgreSQL", { from: { pod: w.pod("database", "cronjob/postgres-backup") }, to: postgres, port: 5432 }, true],
            ["grants Job -> PostgreSQL", { from: { pod: w.pod("database", /^job\/db-grants-/) }, to: postgres, port: 5432 }, true],
            ["login check -> PgBouncer", { from: { pod: w.pod("database", /^job\/db-login-check-api-v1$/) }, to: { pod: w.pod("database", "pgbouncer-1") }, port: 5432 }, true],
        ]);
    });

    it("deny what the platform promises to block", () => {
        const api = { pod: w.pod("api", "deployment/api") };
        expectFlows(w, [
            ["another namespace -> app", { from: { pod: w.pod("default", "intruder") }, to: api, port: 8080 }, false],
            ["ingress controller -> another port of the app", { from: { pod: w.pod("kube-system", "ingress-controller") }, to: api, port: 9090 }, false],
            ["another namespace -> ACME solver", { from: { pod: w.pod("default", "intruder") }, to: { pod: w.pod("api", "cm-acme-http-solver") }, port: ACME_SOLVER.port }, false],
            ["app -> cloud metadata", { from: api, to: { ip: "169.254.169.254" }, port: 80 }, false],
            ["PostgreSQL -> cloud metadata", { from: { pod: w.pod("database", "postgres-1") }, to: { ip: "169.254.169.254" }, port: 80 }, false],
            ["another namespace -> PgBouncer", { from: { pod: w.pod("default", "intruder") }, to: { pod: w.pod("database", "pgbouncer-1") }, port: 5432 }, false],
            ["another namespace -> PostgreSQL", { from: { pod: w.pod("default", "intruder") }, to: { pod: w.pod("database", "postgres-1") }, port: 5432 }, false],
            ["operator -> instance, another port", { from: { pod: w.pod("cnpg-system", "cnpg-operator") }, to: { pod: w.pod("database", "postgres-1") }, port: 9187 }, false],
        ]);
    });
});

describe("network policies (existing cluster, another ingress controller)", () => {
    it("admit that controller and nobody else", async () => {
        const r = await render("local", {
            "platform:tls": "letsencrypt-staging",
            "platform:acmeEmail": "ops@example.com",
            "platform:ingressClass": "nginx",
            "platform:ingressNamespace": "ingress-nginx",
            "platform:ingressPodSelector": "app.kubernetes.io/name=ingress-nginx",
            "platform:databaseMode": "external",
            "platform:databaseUrl": "postgresql://u:p@db.example.com/app?sslmode=require",
            "platform:apps": JSON.stringify({ api: { image: "ghcr.io/acme/api:1.0.0", host: "api.example.com", replicas: 1, database: true } }),
        }, ["platform:databaseUrl"]);
        const w = world(r, { namespace: "ingress-nginx", labels: { "app.kubernetes.io/name": "ingress-nginx" } });
        const api = { pod: w.pod("api", "deployment/api") };
        const solver = { pod: w.pod("api", "cm-acme-http-solver") };
        expectFlows(w, [
            ["controller -> app", { from: { pod: w.pod("ingress-nginx", "ingress-controller") }, to: api, port: 8080 }, true],
            ["controller -> ACME solver", { from: { pod: w.pod("ingress-nginx", "ingress-controller") }, to: solver, port: ACME_SOLVER.port }, true],
            ["kube-system pod -> app", { from: { pod: w.pod("kube-system", "coredns") }, to: api, port: 8080 }, false],
            ["app -> cloud metadata", { from: api, to: { ip: "169.254.169.254" }, port: 80 }, false],
            ["app -> external database", { from: api, to: { ip: "203.0.113.10" }, port: 5432 }, true],
        ]);
    });
});
