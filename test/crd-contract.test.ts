// Contract tests: every custom resource the program renders is valid against
// the REAL upstream CRD schema of the pinned version (vendored in
// test/contracts/upstream, see its README), with unknown fields an error
// (the API server would prune them silently), and the Traefik
// HelmChartConfig values are valid against the pinned chart's
// values.schema.json.
import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { parse } from "yaml";
import { isSecretValue } from "../tools/mock-runtime";
import type { Render } from "../tools/render";
import { type CrdSchema, loadVendoredCrds, parseCrd, UPSTREAM_DIR, validateJsonSchema } from "./support/crd-schema";
import { validateKubernetesObject } from "./support/k8s-schema";
import { ofType, render } from "./support/stack";

const TRAEFIK_VALUES_SCHEMA = path.join(UPSTREAM_DIR, "traefik-values.schema.json");

function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Inputs with every secret wrapper removed, at any depth. */
function unwrapSecrets(value: unknown): unknown {
    if (isSecretValue(value)) return unwrapSecrets(value.value);
    if (Array.isArray(value)) return value.map(unwrapSecrets);
    if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
    return value;
}

// --- the validator itself, on a tiny inline CRD -----------------------------------

const WIDGET_CRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: { kind: Widget, plural: widgets }
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: { status: {} }
    schema:
      openAPIV3Schema:
        type: object
        properties:
          apiVersion: { type: string }
          kind: { type: string }
          metadata: { type: object }
          spec:
            type: object
            required: [size]
            properties:
              size: { type: integer, minimum: 1 }
              mode: { type: string, enum: [fast, slow] }
              port:
                x-kubernetes-int-or-string: true
                anyOf: [{ type: integer }, { type: string }]
              name: { type: string, pattern: "^[a-z]+$", maxLength: 5 }
              config: { type: object, x-kubernetes-preserve-unknown-fields: true }
              partial:
                type: object
                x-kubernetes-preserve-unknown-fields: true
                properties:
                  known: { type: string }
              tags:
                type: array
                items: { type: string }
                x-kubernetes-list-type: set
              labels: { type: object, additionalProperties: { type: string } }
              note: { type: string, nullable: true }
              template:
                type: object
                x-kubernetes-embedded-resource: true
                x-kubernetes-preserve-unknown-fields: true
              source:
                type: object
                properties:
                  a: { type: string }
                  b: { type: string }
                oneOf:
                - required: [a]
                - required: [b]
          status: { type: object, x-kubernetes-preserve-unknown-fields: true }
  - name: v0
    served: false
    storage: false
    schema:
      openAPIV3Schema: { type: object }
`;

const CLUSTER_CRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.example.com
spec:
  group: example.com
  names: { kind: Gizmo, plural: gizmos }
  scope: Cluster
  versions:
  - name: v1beta1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: { type: object, properties: { on: { type: boolean } } }
`;

function widget(spec: Record<string, unknown> = {}): Record<string, unknown> {
    return {
        apiVersion: "example.com/v1",
        kind: "Widget",
        metadata: { name: "w", namespace: "default", labels: { "app.kubernetes.io/name": "w" } },
        spec: { size: 3, ...spec },
    };
}

describe("crd-schema: the structural validator", () => {
    const crd = parseCrd(WIDGET_CRD, "widget");

    it("reads group, kind and only the served versions", () => {
        assert.equal(crd.group, "example.com");
        assert.equal(crd.kind, "Widget");
        assert.deepEqual(crd.versions, ["v1"]);
    });

    it("accepts a valid object", () => {
        assert.deepEqual(crd.validate(widget({
            mode: "fast", port: 8080, name: "abc", tags: ["a", "b"], labels: { x: "y" }, note: null,
            source: { a: "x" }, template: { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: { any: 1 } },
        })), []);
    });

    it("reports an unknown field with its path, at any level", () => {
        assert.deepEqual(crd.validate(widget({ colour: "red" })), ["spec.colour: unknown field (the API server would prune it)"]);
        assert.deepEqual(crd.validate({ ...widget(), extra: 1 }), ["extra: unknown field (the API server would prune it)"]);
        assert.deepEqual(crd.validate({ ...widget(), metadata: { name: "w", lables: {} } }), ["metadata.lables: unknown field (the API server would prune it)"]);
    });

    it("keeps unknown fields under x-kubernetes-preserve-unknown-fields, still checking specified ones", () => {
        assert.deepEqual(crd.validate(widget({ config: { anything: { deeply: ["nested", 1, true] } } })), []);
        assert.deepEqual(crd.validate(widget({ partial: { known: "k", other: { x: 1 } } })), []);
        assert.deepEqual(crd.validate(widget({ partial: { known: 1 } })), ["spec.partial.known: expected string, got integer"]);
    });

    it("accepts an integer or a string for x-kubernetes-int-or-string, and nothing else", () => {
        assert.deepEqual(crd.validate(widget({ port: 8080 })), []);
        assert.deepEqual(crd.validate(widget({ port: "http" })), []);
        assert.deepEqual(crd.validate(widget({ port: true })), ["spec.port: expected integer or string, got boolean"]);
        assert.deepEqual(crd.validate(widget({ port: 1.5 })), ["spec.port: expected integer or string, got number"]);
    });

    it("reports a missing required field", () => {
        const obj = widget();
        delete (obj.spec as Record<string, unknown>).size;
        assert.deepEqual(crd.validate(obj), ["spec.size: required field is missing"]);
    });

    it("reports a wrong type", () => {
        assert.deepEqual(crd.validate(widget({ size: "3" })), ["spec.size: expected integer, got string"]);
        assert.deepEqual(crd.validate(widget({ tags: "a" })), ["spec.tags: expected array, got string"]);
        assert.deepEqual(crd.validate(widget({ labels: { x: 1 } })), ["spec.labels.x: expected string, got integer"]);
    });

    it("reports an enum violation", () => {
        assert.deepEqual(crd.validate(widget({ mode: "medium" })), ['spec.mode: "medium" is not one of "fast", "slow"']);
    });

    it("reports pattern, length, minimum, set and nullable violations", () => {
        assert.deepEqual(crd.validate(widget({ name: "ABC" })), ['spec.name: "ABC" does not match pattern "^[a-z]+$"']);
        assert.deepEqual(crd.validate(widget({ name: "abcdef" })), ["spec.name: longer than maxLength 5"]);
        assert.deepEqual(crd.validate(widget({ size: 0 })), ["spec.size: 0 is below the minimum 1"]);
        assert.deepEqual(crd.validate(widget({ tags: ["a", "a"] })), ["spec.tags[1]: duplicate entry"]);
        assert.match(crd.validate(widget({ mode: null })).join("\n"), /^spec\.mode: null, but the schema is not nullable/);
    });

    it("checks oneOf as a value validation", () => {
        assert.deepEqual(crd.validate(widget({ source: { b: "y" } })), []);
        assert.match(crd.validate(widget({ source: { a: "x", b: "y" } })).join("\n"), /^spec\.source: matches 2 of oneOf/);
        assert.match(crd.validate(widget({ source: {} })).join("\n"), /^spec\.source: matches none of oneOf/);
    });

    it("needs apiVersion and kind on an embedded resource", () => {
        assert.deepEqual(crd.validate(widget({ template: { spec: {} } })), [
            "spec.template.apiVersion: an embedded resource needs a non-empty string",
            "spec.template.kind: an embedded resource needs a non-empty string",
        ]);
    });

    it("checks apiVersion, kind, status subresource and scope", () => {
        assert.match(crd.validate({ ...widget(), apiVersion: "example.com/v0" }).join("\n"), /^apiVersion: "example.com\/v0" is not one of example.com\/v1$/);
        assert.match(crd.validate({ ...widget(), apiVersion: "other.com/v1" }).join("\n"), /^apiVersion: /);
        assert.deepEqual(crd.validate({ ...widget(), kind: "Gadget" }), ['kind: "Gadget" is not "Widget"']);
        assert.match(crd.validate({ ...widget(), status: { ready: true } }).join("\n"), /^status: set on a kind with the status subresource/);
        const gizmo = parseCrd(CLUSTER_CRD, "gizmo");
        assert.deepEqual(gizmo.validate({ apiVersion: "example.com/v1beta1", kind: "Gizmo", metadata: { name: "g" }, spec: { on: true } }), []);
        assert.match(
            gizmo.validate({ apiVersion: "example.com/v1beta1", kind: "Gizmo", metadata: { name: "g", namespace: "x" } }).join("\n"),
            /^metadata\.namespace: set on a cluster-scoped kind/,
        );
    });
});

describe("crd-schema: the vendored upstream schemas", () => {
    it("has the CRDs of every custom kind the platform renders", () => {
        assert.deepEqual([...loadVendoredCrds().keys()].sort(), [
            "barmancloud.cnpg.io/v1 ObjectStore",
            "cert-manager.io/v1 ClusterIssuer",
            "helm.cattle.io/v1 HelmChart",
            "helm.cattle.io/v1 HelmChartConfig",
            "postgresql.cnpg.io/v1 Cluster",
            "postgresql.cnpg.io/v1 Database",
            "postgresql.cnpg.io/v1 Pooler",
            "postgresql.cnpg.io/v1 ScheduledBackup",
            "traefik.io/v1alpha1 Middleware",
            "upgrade.cattle.io/v1 Plan",
        ]);
    });

    it("validates Helm values against the Traefik chart's values.schema.json", () => {
        assert.deepEqual(validateJsonSchema(TRAEFIK_VALUES_SCHEMA, {}), []);
        assert.deepEqual(validateJsonSchema(TRAEFIK_VALUES_SCHEMA, { ports: { web: { port: 8000 } } }), []);
        assert.deepEqual(validateJsonSchema(TRAEFIK_VALUES_SCHEMA, { portz: {} }), ["portz: unknown property (the values schema does not allow it)"]);
    });
});

// --- the renders of the committed stacks ------------------------------------------

const CASES: readonly (readonly [string, Record<string, string>])[] = [
    ["prod", {}],
    ["dev", {}],
    ["local", {}],
    ["prod", { "platform:tls": "off" }],
    ["prod", { "platform:loadBalancer": "false" }],
    // Point-in-time recovery: the backup plugin's ObjectStore and the ScheduledBackup.
    ["prod", { "platform:backupS3Bucket": "backups", "platform:backupS3AccessKey": "AK", "platform:backupS3SecretKey": "SK" }],
    // Import at creation: the Cluster's import bootstrap and external cluster.
    ["prod", { "platform:databaseImportUrl": "postgresql://u:p@db.example.com/app?sslmode=require" }],
];

interface KubernetesObject {
    readonly resource: string;
    readonly apiVersion: string;
    readonly kind: string;
    readonly object: Record<string, unknown>;
}

/** Kubernetes objects of a render (not Helm releases or other provider-side resources), secrets unwrapped. */
function kubernetesObjects(r: Render): KubernetesObject[] {
    const out: KubernetesObject[] = [];
    for (const res of r.run.resources) {
        if (!res.custom || !res.type.startsWith("kubernetes:")) continue;
        const object = unwrapSecrets(res.inputs);
        if (!isRecord(object) || typeof object.apiVersion !== "string" || typeof object.kind !== "string") continue;
        out.push({ resource: `${res.type}::${res.name}`, apiVersion: object.apiVersion, kind: object.kind, object });
        // Manifests a Job creates at run time (e.g. the object-store drill's scratch Cluster) ride in ConfigMaps.
        if (object.kind === "ConfigMap" && isRecord(object.data)) {
            for (const [key, text] of Object.entries(object.data)) {
                if (!key.endsWith(".json") || typeof text !== "string") continue;
                const embedded: unknown = JSON.parse(text);
                if (!isRecord(embedded) || typeof embedded.apiVersion !== "string" || typeof embedded.kind !== "string") continue;
                out.push({ resource: `${res.type}::${res.name} data.${key}`, apiVersion: embedded.apiVersion, kind: embedded.kind, object: embedded });
            }
        }
    }
    return out;
}

/**
 * Errors of one object: a kind with a vendored CRD must validate against it; a
 * kind that is neither built in nor vendored is an error (vendor its CRD).
 */
async function contractErrors(o: KubernetesObject, crds: ReadonlyMap<string, CrdSchema>): Promise<string[]> {
    const crd = crds.get(`${o.apiVersion} ${o.kind}`);
    if (crd) return crd.validate(o.object);
    const group = o.apiVersion.includes("/") ? o.apiVersion.slice(0, o.apiVersion.lastIndexOf("/")) : "";
    const vendoredGroups = new Set([...crds.values()].map((c) => c.group));
    if (vendoredGroups.has(group)) return [`${o.apiVersion} ${o.kind}: a kind of a vendored group without a vendored CRD (vendor it in test/contracts/upstream)`];
    if ((await validateKubernetesObject(o.object)).known) return [];
    return [`${o.apiVersion} ${o.kind}: a custom kind without a vendored CRD (vendor it in test/contracts/upstream)`];
}

function traefikConfig(objects: readonly KubernetesObject[]): Record<string, unknown> | undefined {
    const found = objects.filter((o) => o.apiVersion === "helm.cattle.io/v1" && o.kind === "HelmChartConfig"
        && isRecord(o.object.metadata) && o.object.metadata.name === "traefik");
    assert.ok(found.length <= 1, "more than one HelmChartConfig named traefik");
    return found[0]?.object;
}

function valuesOf(helmChartConfig: Record<string, unknown>): unknown {
    const spec = helmChartConfig.spec;
    assert.ok(isRecord(spec) && typeof spec.valuesContent === "string", "the traefik HelmChartConfig has no spec.valuesContent");
    return parse(spec.valuesContent);
}

describe("crd-contract: rendered custom resources against the upstream schemas", () => {
    const crds = loadVendoredCrds();
    const renders: [string, Render][] = [];

    before(async () => {
        // One at a time: a render swaps the process-wide Pulumi mock runtime.
        // Settings that must be stored encrypted are set as secrets, as `pulumi config set --secret` would.
        const secretKeys = (o: Record<string, string>) => Object.keys(o).filter((k) => /SecretKey$|Url$/.test(k));
        for (const [stack, overrides] of CASES) renders.push([`${stack} ${JSON.stringify(overrides)}`, await render(stack, overrides, secretKeys(overrides))]);
    });

    it("every custom resource of every render validates with zero errors", async () => {
        const failures: string[] = [];
        for (const [label, r] of renders) {
            for (const o of kubernetesObjects(r)) {
                for (const e of await contractErrors(o, crds)) failures.push(`${label} ${o.resource}: ${e}`);
            }
        }
        assert.deepEqual(failures, []);
    });

    it("the renders exercise every vendored CRD", () => {
        const seen = new Set(renders.flatMap(([, r]) => kubernetesObjects(r).map((o) => `${o.apiVersion} ${o.kind}`)));
        assert.deepEqual([...crds.keys()].filter((k) => !seen.has(k)), []);
    });

    it("the traefik HelmChartConfig values are valid against the chart's values.schema.json", () => {
        let checked = 0;
        for (const [label, r] of renders) {
            const config = traefikConfig(kubernetesObjects(r));
            if (!config) continue;
            checked += 1;
            assert.deepEqual(validateJsonSchema(TRAEFIK_VALUES_SCHEMA, valuesOf(config)).map((e) => `${label}: ${e}`), []);
        }
        assert.ok(checked >= 4, `expected the traefik HelmChartConfig in the prod and dev renders, checked ${checked}`);
    });

    it("fails a custom kind without a vendored CRD", async () => {
        const object = { apiVersion: "traefik.io/v1alpha1", kind: "IngressRoute", metadata: { name: "x" }, spec: {} };
        assert.match((await contractErrors({ resource: "test", apiVersion: "traefik.io/v1alpha1", kind: "IngressRoute", object }, crds)).join("\n"),
            /without a vendored CRD/);
        const other = { apiVersion: "example.com/v1", kind: "Thing", metadata: { name: "x" } };
        assert.match((await contractErrors({ resource: "test", apiVersion: "example.com/v1", kind: "Thing", object: other }, crds)).join("\n"),
            /a custom kind without a vendored CRD/);
        const builtIn = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" }, data: { a: "b" } };
        assert.deepEqual(await contractErrors({ resource: "test", apiVersion: "v1", kind: "ConfigMap", object: builtIn }, crds), []);
    });

    it("catches a misspelt Plan field (pruned by the API server)", () => {
        const prod = renders[0][1];
        const plans = ofType(prod, "kubernetes:upgrade.cattle.io/v1:Plan").filter((p) => p.name.endsWith("-plan-agent"));
        assert.equal(plans.length, 1);
        const plan = unwrapSecrets(plans[0].inputs); // a fresh copy
        assert.ok(isRecord(plan) && isRecord(plan.spec) && isRecord(plan.spec.drain), "the agent Plan has no spec.drain");
        const crd = crds.get("upgrade.cattle.io/v1 Plan");
        assert.ok(crd);
        assert.deepEqual(crd.validate(plan), []);
        plan.spec.drain.timeoutt = "15m";
        assert.deepEqual(crd.validate(plan), ["spec.drain.timeoutt: unknown field (the API server would prune it)"]);
    });

    it("catches a pre-v39 Traefik values key", () => {
        const config = traefikConfig(kubernetesObjects(renders[0][1]));
        assert.ok(config, "no traefik HelmChartConfig in prod");
        const values = valuesOf(config); // freshly parsed
        assert.ok(isRecord(values) && isRecord(values.ports) && isRecord(values.ports.web), "the traefik values have no ports.web");
        values.ports.web.redirectTo = { port: "websecure" };
        assert.deepEqual(validateJsonSchema(TRAEFIK_VALUES_SCHEMA, values), ["ports.web.redirectTo: unknown property (the values schema does not allow it)"]);
    });
});
