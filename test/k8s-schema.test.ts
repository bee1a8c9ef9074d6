import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { validateKubernetesObject } from "./support/k8s-schema";

function deployment(container: Record<string, unknown>, replicas: unknown = 2): Record<string, unknown> {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "api", namespace: "app", labels: { "app.kubernetes.io/name": "api" } },
    spec: {
      replicas,
      selector: { matchLabels: { app: "api" } },
      template: {
        metadata: { labels: { app: "api" } },
        spec: { containers: [container] },
      },
    },
  };
}

const goodContainer = {
  name: "api",
  image: "ghcr.io/example/api:1.2.3",
  ports: [{ containerPort: 8080, protocol: "TCP" }],
  resources: { requests: { cpu: "100m", memory: "128Mi" } },
};

describe("validateKubernetesObject: built-in kinds", () => {
  it("accepts a valid Deployment", async () => {
    assert.deepEqual(await validateKubernetesObject(deployment(goodContainer)), { known: true, errors: [] });
  });

  it("rejects a Deployment with string replicas and a container without a name, naming the fields", async () => {
    const { name: _omitted, ...noName } = goodContainer;
    const result = await validateKubernetesObject(deployment(noName, "three"));
    assert.equal(result.known, true);
    assert.deepEqual(result.errors.sort(), [
      "spec.replicas: must be integer",
      "spec.template.spec.containers[0].name: is required",
    ]);
  });

  it("rejects a non-string container image", async () => {
    const result = await validateKubernetesObject(deployment({ ...goodContainer, image: 42 }));
    assert.deepEqual(result.errors, ["spec.template.spec.containers[0].image: must be string"]);
  });

  it("accepts a container without an image: the OpenAPI schema marks only `name` required", async () => {
    const { image: _omitted, ...noImage } = goodContainer;
    assert.deepEqual(await validateKubernetesObject(deployment(noImage)), { known: true, errors: [] });
  });

  it("rejects a ConfigMap whose data value is not a string", async () => {
    const result = await validateKubernetesObject({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "settings" },
      data: { LOG_LEVEL: "info", PORT: 8080 },
    });
    assert.deepEqual(result, { known: true, errors: ["data.PORT: must be string"] });
  });

  it("reports enum violations with the allowed values", async () => {
    const result = await validateKubernetesObject({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "api" },
      spec: { type: "Public", selector: { app: "api" }, ports: [{ port: 80, targetPort: 8080 }] },
    });
    assert.equal(result.errors.length, 1);
    assert.match(result.errors[0], /^spec\.type: must be one of .*"ClusterIP"/);
  });

  it("accepts a valid Namespace", async () => {
    const ns = { apiVersion: "v1", kind: "Namespace", metadata: { name: "app", labels: { team: "api" } } };
    assert.deepEqual(await validateKubernetesObject(ns), { known: true, errors: [] });
  });

  it("accepts a valid StorageClass and requires its provisioner", async () => {
    const sc = {
      apiVersion: "storage.k8s.io/v1",
      kind: "StorageClass",
      metadata: { name: "hcloud-volumes" },
      provisioner: "csi.hetzner.cloud",
      reclaimPolicy: "Retain",
      volumeBindingMode: "WaitForFirstConsumer",
      allowVolumeExpansion: true,
    };
    assert.deepEqual(await validateKubernetesObject(sc), { known: true, errors: [] });
    const { provisioner: _omitted, ...noProvisioner } = sc;
    assert.deepEqual((await validateKubernetesObject(noProvisioner)).errors, ["provisioner: is required"]);
  });

  it("accepts a valid CustomResourceDefinition and rejects one without scope", async () => {
    const spec = {
      group: "example.com",
      names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
      scope: "Namespaced",
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: { spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
            },
          },
        },
      ],
    };
    const crd = {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "widgets.example.com" },
      spec,
    };
    assert.deepEqual(await validateKubernetesObject(crd), { known: true, errors: [] });
    const { scope: _omitted, ...noScope } = spec;
    assert.deepEqual((await validateKubernetesObject({ ...crd, spec: noScope })).errors, ["spec.scope: is required"]);
  });

  it("looks kinds up by apiVersion and kind together", async () => {
    // Deployment exists, but not in this group-version (removed beta).
    const old = { ...deployment(goodContainer), apiVersion: "extensions/v1beta1" };
    assert.equal((await validateKubernetesObject(old)).known, false);
  });
});

describe("validateKubernetesObject: custom resources and bad input", () => {
  const helmChart = (name: unknown): Record<string, unknown> => ({
    apiVersion: "helm.cattle.io/v1",
    kind: "HelmChart",
    metadata: { name, namespace: "kube-system" },
    spec: { chart: "traefik", version: "1.2.3" },
  });

  it("passes an unknown kind with a valid name as known:false", async () => {
    assert.deepEqual(await validateKubernetesObject(helmChart("traefik")), { known: false, errors: [] });
    const plan = { apiVersion: "upgrade.cattle.io/v1", kind: "Plan", metadata: { name: "server-plan.v1-30" } };
    assert.deepEqual(await validateKubernetesObject(plan), { known: false, errors: [] });
  });

  it("rejects an unknown kind whose name is not a DNS-1123 subdomain", async () => {
    for (const name of ["Traefik", "-traefik", "traefik_1", "a".repeat(254)]) {
      const result = await validateKubernetesObject(helmChart(name));
      assert.equal(result.known, false);
      assert.equal(result.errors.length, 1, name);
      assert.match(result.errors[0], /^metadata\.name: .* is not a valid DNS-1123 subdomain/);
    }
  });

  it("requires apiVersion, kind and metadata.name on an unknown kind", async () => {
    assert.deepEqual(await validateKubernetesObject({ kind: "", spec: {} }), {
      known: false,
      errors: ["apiVersion: must be a non-empty string", "kind: must be a non-empty string", "metadata.name: is required"],
    });
  });

  it("rejects non-objects", async () => {
    for (const input of [null, undefined, "kind: Namespace", 42, [{ kind: "Namespace" }]]) {
      assert.deepEqual(await validateKubernetesObject(input), { known: false, errors: ["not an object"] });
    }
  });

  it("catches an unquoted YAML number in ConfigMap data", async () => {
    const docs = parseAllDocuments(`
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: app}
data:
  PORT: 8080
  ENABLED: "true"
`).map((doc) => doc.toJS());
    const results = await Promise.all(docs.map((doc) => validateKubernetesObject(doc)));
    assert.deepEqual(results, [
      { known: true, errors: [] },
      { known: true, errors: ["data.PORT: must be string"] },
    ]);
  });
});
