// Validates a Kubernetes object (as parsed from YAML) against the OpenAPI
// schema of the built-in kinds, using the ajv validators precompiled into
// `kubernetes-models`.
//
// Why the API is async: kubernetes-models is ESM-only and its package.json
// "exports" has only an "import" condition. This project is CommonJS, so a
// static `import` becomes require() and fails with
// ERR_PACKAGE_PATH_NOT_EXPORTED; only dynamic import() (the ESM loader) can
// load it.
//
// What the schema does NOT catch: unknown/misspelt fields (the Kubernetes
// OpenAPI schema has no additionalProperties: false) and name formats
// (metadata.name is just a string). Only types, required fields, enums and
// formats are checked.

export interface SchemaResult {
  known: boolean;
  errors: string[];
}

// Shape of a generated top-level model class, e.g. Deployment: static
// apiVersion/kind, and validate() throws an ajv ValidationError.
interface ModelClass {
  apiVersion: string;
  kind: string;
  new (data: object): { validate(): void };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// Group-version modules export both top-level kinds and nested types
// (DeploymentSpec, Container...); only the top-level kinds carry a static
// apiVersion and kind.
function isModelClass(value: unknown): value is ModelClass {
  return (
    typeof value === "function" &&
    "apiVersion" in value &&
    typeof value.apiVersion === "string" &&
    "kind" in value &&
    typeof value.kind === "string"
  );
}

const key = (apiVersion: string, kind: string): string => `${apiVersion} ${kind}`;

let registry: Promise<Map<string, ModelClass>> | undefined;

// Stable group-versions that current clusters serve and manifests use. The
// package's root module also has removed betas (extensions/v1beta1...),
// which we would rather report as unknown than validate as if they existed.
function loadRegistry(): Promise<Map<string, ModelClass>> {
  registry ??= Promise.all([
    import("kubernetes-models/v1"),
    import("kubernetes-models/apps/v1"),
    import("kubernetes-models/batch/v1"),
    import("kubernetes-models/networking.k8s.io/v1"),
    import("kubernetes-models/policy/v1"),
    import("kubernetes-models/rbac.authorization.k8s.io/v1"),
    import("kubernetes-models/storage.k8s.io/v1"),
    import("kubernetes-models/apiextensions.k8s.io/v1"),
    import("kubernetes-models/autoscaling/v1"),
    import("kubernetes-models/autoscaling/v2"),
    import("kubernetes-models/admissionregistration.k8s.io/v1"),
    import("kubernetes-models/scheduling.k8s.io/v1"),
    import("kubernetes-models/coordination.k8s.io/v1"),
    import("kubernetes-models/discovery.k8s.io/v1"),
    import("kubernetes-models/node.k8s.io/v1"),
    import("kubernetes-models/certificates.k8s.io/v1"),
    import("kubernetes-models/apiregistration.k8s.io/v1"),
  ]).then((modules) => {
    const byKey = new Map<string, ModelClass>();
    for (const mod of modules) {
      const exported: unknown[] = Object.values(mod);
      for (const value of exported) {
        if (isModelClass(value)) byKey.set(key(value.apiVersion, value.kind), value);
      }
    }
    return byKey;
  });
  return registry;
}

// ajv reports a JSON pointer ("/spec/containers/0/image"). Walk the object
// alongside it so array indexes print as [0] even when a map key is numeric.
function formatPath(root: unknown, segments: string[]): string {
  let out = "";
  let node = root;
  for (const segment of segments) {
    if (Array.isArray(node)) {
      out += `[${segment}]`;
      node = node[Number(segment)];
    } else {
      // Keys like "app.kubernetes.io/name" would be ambiguous after a dot.
      out += /^[A-Za-z_][\w-]*$/.test(segment)
        ? (out ? "." : "") + segment
        : `[${JSON.stringify(segment)}]`;
      node = isRecord(node) ? node[segment] : undefined;
    }
  }
  return out || "(root)";
}

function describe(root: unknown, error: unknown): string {
  if (!isRecord(error) || typeof error.instancePath !== "string") return String(error);
  const segments = error.instancePath
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
  const params = isRecord(error.params) ? error.params : {};
  // ajv puts a missing property on the parent's path; name the field itself.
  if (error.keyword === "required" && typeof params.missingProperty === "string") {
    return `${formatPath(root, [...segments, params.missingProperty])}: is required`;
  }
  const path = formatPath(root, segments);
  if (error.keyword === "enum" && Array.isArray(params.allowedValues)) {
    const allowed: unknown[] = params.allowedValues;
    return `${path}: must be one of ${allowed.map((v) => JSON.stringify(v)).join(", ")}`;
  }
  const message = typeof error.message === "string" ? error.message : `fails ${String(error.keyword)}`;
  return `${path}: ${message}`;
}

// Same rule the API server applies to most object names (RFC 1123 subdomain).
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

// For custom resources we have no schema, so check only what every object needs.
function basicErrors(obj: Record<string, unknown>): string[] {
  const errors: string[] = [];
  for (const field of ["apiVersion", "kind"]) {
    const value = obj[field];
    if (typeof value !== "string" || value === "") errors.push(`${field}: must be a non-empty string`);
  }
  const name = isRecord(obj.metadata) ? obj.metadata.name : undefined;
  if (typeof name !== "string") {
    errors.push("metadata.name: is required");
  } else if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    errors.push(
      `metadata.name: ${JSON.stringify(name)} is not a valid DNS-1123 subdomain ` +
        "(lowercase alphanumerics, '-' or '.', start and end alphanumeric, at most 253 characters)",
    );
  }
  return errors;
}

export async function validateKubernetesObject(obj: unknown): Promise<SchemaResult> {
  if (!isRecord(obj)) return { known: false, errors: ["not an object"] };

  const Model =
    typeof obj.apiVersion === "string" && typeof obj.kind === "string"
      ? (await loadRegistry()).get(key(obj.apiVersion, obj.kind))
      : undefined;
  if (!Model) return { known: false, errors: basicErrors(obj) };

  try {
    new Model(obj).validate();
    return { known: true, errors: [] };
  } catch (err) {
    // ajv's ValidationError carries the structured errors; anything else is a
    // bug, not a validation result, so let it surface.
    if (err instanceof Error && "errors" in err && Array.isArray(err.errors)) {
      const list: unknown[] = err.errors;
      return { known: true, errors: list.map((e) => describe(obj, e)) };
    }
    throw err;
  }
}
