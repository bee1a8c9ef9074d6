// Validates custom resources against the upstream CustomResourceDefinition
// schemas vendored in test/contracts/upstream, with the API server's
// structural-schema semantics: a field the schema does not specify (and that
// no x-kubernetes-preserve-unknown-fields keeps) is an ERROR here, because the
// API server would silently prune it and the setting would never take effect.
// Also validates Helm values against a chart's values.schema.json (Ajv).
//
// What is checked: apiVersion/kind against the CRD's group/served versions/
// kind; metadata as ObjectMeta (known fields, string maps); type, nullable,
// properties, required, additionalProperties, items, enum, pattern,
// minimum/maximum (+exclusive), multipleOf, minLength/maxLength,
// minItems/maxItems, uniqueItems, minProperties/maxProperties,
// x-kubernetes-int-or-string, x-kubernetes-preserve-unknown-fields,
// x-kubernetes-embedded-resource, x-kubernetes-list-type (set/map uniqueness),
// allOf/anyOf/oneOf/not (as value validations: they never make a field
// "known"), status sent to a CRD with the status subresource, namespace on a
// cluster-scoped kind.
//
// What is NOT checked: `format` (int32, date-time, duration...),
// x-kubernetes-validations (CEL rules), defaults (the server applies them).
import * as fs from "node:fs";
import * as path from "node:path";
import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";
import Ajv2019 from "ajv/dist/2019";
import Ajv2020 from "ajv/dist/2020";
import { parseAllDocuments } from "yaml";

/** Vendored upstream schemas (see the README there for versions and sources). */
export const UPSTREAM_DIR = path.resolve(__dirname, "..", "contracts", "upstream");

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps this validator understands. */
export interface JsonSchemaProps {
    readonly type?: string;
    readonly nullable?: boolean;
    readonly properties?: Readonly<Record<string, JsonSchemaProps>>;
    readonly required?: readonly string[];
    readonly additionalProperties?: boolean | JsonSchemaProps;
    readonly items?: JsonSchemaProps;
    readonly enum?: readonly unknown[];
    readonly pattern?: string;
    readonly minimum?: number;
    readonly maximum?: number;
    readonly exclusiveMinimum?: boolean;
    readonly exclusiveMaximum?: boolean;
    readonly multipleOf?: number;
    readonly minLength?: number;
    readonly maxLength?: number;
    readonly minItems?: number;
    readonly maxItems?: number;
    readonly uniqueItems?: boolean;
    readonly minProperties?: number;
    readonly maxProperties?: number;
    readonly allOf?: readonly JsonSchemaProps[];
    readonly anyOf?: readonly JsonSchemaProps[];
    readonly oneOf?: readonly JsonSchemaProps[];
    readonly not?: JsonSchemaProps;
    readonly format?: string;
    readonly "x-kubernetes-int-or-string"?: boolean;
    readonly "x-kubernetes-preserve-unknown-fields"?: boolean;
    readonly "x-kubernetes-embedded-resource"?: boolean;
    readonly "x-kubernetes-list-type"?: string;
    readonly "x-kubernetes-list-map-keys"?: readonly string[];
}

export interface CrdSchema {
    readonly group: string;
    readonly kind: string;
    /** Served versions. */
    readonly versions: string[];
    /** Errors as "<JSON path>: <message>"; empty when the object is valid. */
    validate(obj: unknown): string[];
}

interface CrdVersion {
    readonly name: string;
    readonly schema: JsonSchemaProps;
    readonly statusSubresource: boolean;
}

const PRUNED = "unknown field (the API server would prune it)";

// ObjectMeta fields a client may send (the API server prunes anything else).
const OBJECT_META_FIELDS = new Set([
    "name", "generateName", "namespace", "labels", "annotations", "finalizers", "ownerReferences",
    "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
    "deletionGracePeriodSeconds", "managedFields", "selfLink",
]);

function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

// --- paths --------------------------------------------------------------------

function child(at: string, key: string): string {
    // Keys like "app.kubernetes.io/name" would be ambiguous after a dot.
    if (/^[A-Za-z_][\w-]*$/.test(key)) return at ? `${at}.${key}` : key;
    return `${at}[${JSON.stringify(key)}]`;
}

function index(at: string, i: number): string {
    return `${at}[${i}]`;
}

function where(at: string): string {
    return at || "(root)";
}

// --- value checks ---------------------------------------------------------------

function describeValue(value: unknown): string {
    if (value === null) return "null";
    if (Array.isArray(value)) return "array";
    if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
    return typeof value;
}

function hasType(value: unknown, type: string): boolean {
    switch (type) {
        case "object": return isRecord(value);
        case "array": return Array.isArray(value);
        case "string": return typeof value === "string";
        case "integer": return typeof value === "number" && Number.isInteger(value);
        case "number": return typeof value === "number" && Number.isFinite(value);
        case "boolean": return typeof value === "boolean";
        default: throw new Error(`unsupported schema type ${JSON.stringify(type)}`);
    }
}

function deepEqual(a: unknown, b: unknown): boolean {
    if (a === b) return true;
    if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
    if (isRecord(a) && isRecord(b)) {
        const ka = Object.keys(a);
        return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
    }
    return false;
}

const regexCache = new Map<string, RegExp>();
function regex(pattern: string): RegExp {
    let re = regexCache.get(pattern);
    if (!re) {
        // CRD patterns are Go RE2 (unanchored match); the common subset is valid ECMAScript.
        try {
            re = new RegExp(pattern, "u");
        } catch {
            re = new RegExp(pattern);
        }
        regexCache.set(pattern, re);
    }
    return re;
}

/** The type check; int-or-string and untyped (preserve-unknown-fields) schemas accept what they allow. */
function typeError(value: unknown, schema: JsonSchemaProps, at: string): string | undefined {
    if (schema["x-kubernetes-int-or-string"]) {
        return hasType(value, "integer") || hasType(value, "string")
            ? undefined
            : `${where(at)}: expected integer or string, got ${describeValue(value)}`;
    }
    if (schema.type === undefined || schema.type === "") return undefined;
    return hasType(value, schema.type) ? undefined : `${where(at)}: expected ${schema.type}, got ${describeValue(value)}`;
}

/** Validations on the value itself (not on unknown fields); shared by the structural walk and the *Of branches. */
function valueErrors(value: unknown, schema: JsonSchemaProps, at: string): string[] {
    const errors: string[] = [];
    const w = where(at);
    if (schema.enum !== undefined && !schema.enum.some((e) => deepEqual(e, value))) {
        errors.push(`${w}: ${JSON.stringify(value)} is not one of ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}`);
    }
    if (typeof value === "string") {
        const length = [...value].length;
        if (schema.minLength !== undefined && length < schema.minLength) errors.push(`${w}: shorter than minLength ${schema.minLength}`);
        if (schema.maxLength !== undefined && length > schema.maxLength) errors.push(`${w}: longer than maxLength ${schema.maxLength}`);
        if (schema.pattern !== undefined && !regex(schema.pattern).test(value)) {
            errors.push(`${w}: ${JSON.stringify(value)} does not match pattern ${JSON.stringify(schema.pattern)}`);
        }
    }
    if (typeof value === "number") {
        if (schema.minimum !== undefined) {
            if (schema.exclusiveMinimum ? value <= schema.minimum : value < schema.minimum) {
                errors.push(`${w}: ${value} is below the minimum ${schema.minimum}${schema.exclusiveMinimum ? " (exclusive)" : ""}`);
            }
        }
        if (schema.maximum !== undefined) {
            if (schema.exclusiveMaximum ? value >= schema.maximum : value > schema.maximum) {
                errors.push(`${w}: ${value} is above the maximum ${schema.maximum}${schema.exclusiveMaximum ? " (exclusive)" : ""}`);
            }
        }
        if (schema.multipleOf !== undefined && !Number.isInteger(value / schema.multipleOf)) {
            errors.push(`${w}: ${value} is not a multiple of ${schema.multipleOf}`);
        }
    }
    if (Array.isArray(value)) {
        if (schema.minItems !== undefined && value.length < schema.minItems) errors.push(`${w}: fewer than minItems ${schema.minItems}`);
        if (schema.maxItems !== undefined && value.length > schema.maxItems) errors.push(`${w}: more than maxItems ${schema.maxItems}`);
        if (schema.uniqueItems || schema["x-kubernetes-list-type"] === "set") {
            value.forEach((item, i) => {
                if (value.findIndex((other) => deepEqual(other, item)) < i) errors.push(`${index(at, i)}: duplicate entry`);
            });
        }
        const mapKeys = schema["x-kubernetes-list-map-keys"];
        if (schema["x-kubernetes-list-type"] === "map" && mapKeys !== undefined) {
            const seen = new Map<string, number>();
            value.forEach((item, i) => {
                if (!isRecord(item)) return;
                const id = JSON.stringify(mapKeys.map((k) => item[k] ?? null));
                const first = seen.get(id);
                if (first !== undefined) errors.push(`${index(at, i)}: duplicate entry for key (${mapKeys.join(", ")}) of ${index(at, first)}`);
                else seen.set(id, i);
            });
        }
    }
    if (isRecord(value)) {
        const count = Object.keys(value).length;
        if (schema.minProperties !== undefined && count < schema.minProperties) errors.push(`${w}: fewer than minProperties ${schema.minProperties}`);
        if (schema.maxProperties !== undefined && count > schema.maxProperties) errors.push(`${w}: more than maxProperties ${schema.maxProperties}`);
    }
    errors.push(...junctorErrors(value, schema, at));
    return errors;
}

/**
 * allOf/anyOf/oneOf/not. In a structural schema these carry value validations
 * only; they can not make a field known (so they never report unknown fields).
 */
function junctorErrors(value: unknown, schema: JsonSchemaProps, at: string): string[] {
    const errors: string[] = [];
    const w = where(at);
    for (const branch of schema.allOf ?? []) errors.push(...branchErrors(value, branch, at));
    if (schema.anyOf !== undefined) {
        const results = schema.anyOf.map((b) => branchErrors(value, b, at));
        if (!results.some((r) => r.length === 0)) {
            errors.push(`${w}: matches none of anyOf (${results.map((r) => r.join("; ")).join(" | ")})`);
        }
    }
    if (schema.oneOf !== undefined) {
        const results = schema.oneOf.map((b) => branchErrors(value, b, at));
        const passing = results.filter((r) => r.length === 0).length;
        if (passing !== 1) {
            errors.push(passing === 0
                ? `${w}: matches none of oneOf (${results.map((r) => r.join("; ")).join(" | ")})`
                : `${w}: matches ${passing} of oneOf, must match exactly one`);
        }
    }
    if (schema.not !== undefined && branchErrors(value, schema.not, at).length === 0) {
        errors.push(`${w}: must not match the "not" schema`);
    }
    return errors;
}

/** Plain JSON-schema validation of a value against a *Of branch (no pruning semantics). */
function branchErrors(value: unknown, schema: JsonSchemaProps, at: string): string[] {
    if (value === null) return schema.nullable || schema.type === undefined ? [] : [`${where(at)}: null is not allowed`];
    const typeErr = typeError(value, schema, at);
    if (typeErr) return [typeErr];
    const errors = valueErrors(value, schema, at);
    if (isRecord(value)) {
        for (const r of schema.required ?? []) if (!(r in value)) errors.push(`${child(at, r)}: required field is missing`);
        for (const [k, v] of Object.entries(value)) {
            const sub = schema.properties?.[k] ?? (isRecord(schema.additionalProperties) ? schema.additionalProperties : undefined);
            if (sub) errors.push(...branchErrors(v, sub, child(at, k)));
        }
    }
    if (Array.isArray(value) && schema.items) value.forEach((v, i) => errors.push(...branchErrors(v, schema.items!, index(at, i))));
    return errors;
}

// --- structural walk ---------------------------------------------------------

function metadataErrors(meta: unknown, at: string, clusterScoped: boolean): string[] {
    if (!isRecord(meta)) return [`${where(at)}: expected object, got ${describeValue(meta)}`];
    const errors: string[] = [];
    for (const [k, v] of Object.entries(meta)) {
        const p = child(at, k);
        if (!OBJECT_META_FIELDS.has(k)) {
            errors.push(`${p}: ${PRUNED}`);
        } else if (k === "name" || k === "generateName" || k === "namespace") {
            if (typeof v !== "string") errors.push(`${p}: expected string, got ${describeValue(v)}`);
        } else if (k === "labels" || k === "annotations") {
            if (!isRecord(v)) {
                errors.push(`${p}: expected object, got ${describeValue(v)}`);
            } else {
                for (const [lk, lv] of Object.entries(v)) {
                    if (typeof lv !== "string") errors.push(`${child(p, lk)}: expected string, got ${describeValue(lv)}`);
                }
            }
        } else if (k === "finalizers") {
            if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) errors.push(`${p}: expected array of strings`);
        }
    }
    if (clusterScoped && meta.namespace !== undefined) {
        errors.push(`${child(at, "namespace")}: set on a cluster-scoped kind (the API server ignores it)`);
    }
    return errors;
}

/** Structural validation with pruning semantics: unknown fields are errors. */
function walk(value: unknown, schema: JsonSchemaProps, at: string): string[] {
    if (value === null) {
        return schema.nullable ? [] : [`${where(at)}: null, but the schema is not nullable (the API server would drop the field)`];
    }
    const typeErr = typeError(value, schema, at);
    if (typeErr) return [typeErr];
    const errors = valueErrors(value, schema, at);

    if (isRecord(value)) {
        const embedded = schema["x-kubernetes-embedded-resource"] === true;
        if (embedded) {
            for (const k of ["apiVersion", "kind"]) {
                if (typeof value[k] !== "string" || value[k] === "") errors.push(`${child(at, k)}: an embedded resource needs a non-empty string`);
            }
            if (value.metadata !== undefined) errors.push(...metadataErrors(value.metadata, child(at, "metadata"), false));
        }
        for (const r of schema.required ?? []) {
            if (!(r in value) || value[r] === undefined) errors.push(`${child(at, r)}: required field is missing`);
        }
        for (const [k, v] of Object.entries(value)) {
            if (v === undefined) continue;
            const p = child(at, k);
            if (embedded && (k === "apiVersion" || k === "kind" || k === "metadata")) continue;
            const sub = schema.properties?.[k];
            if (sub) {
                errors.push(...walk(v, sub, p));
            } else if (isRecord(schema.additionalProperties)) {
                errors.push(...walk(v, schema.additionalProperties, p));
            } else if (schema.additionalProperties === true || schema["x-kubernetes-preserve-unknown-fields"]) {
                // Kept as is: no schema below this point.
            } else {
                errors.push(`${p}: ${PRUNED}`);
            }
        }
    } else if (Array.isArray(value)) {
        if (schema.items) {
            value.forEach((v, i) => errors.push(...walk(v, schema.items!, index(at, i))));
        } else if (!schema["x-kubernetes-preserve-unknown-fields"] && value.some((v) => isRecord(v) || Array.isArray(v))) {
            errors.push(`${where(at)}: array without an items schema (the API server would prune its contents)`);
        }
    }
    return errors;
}

// --- loading ---------------------------------------------------------------------

function parseVersions(spec: Record<string, unknown>, source: string): CrdVersion[] {
    if (!Array.isArray(spec.versions)) throw new Error(`${source}: spec.versions is not a list`);
    const versions: CrdVersion[] = [];
    for (const v of spec.versions) {
        if (!isRecord(v) || typeof v.name !== "string") throw new Error(`${source}: a version without a name`);
        if (v.served === false) continue;
        const schema = isRecord(v.schema) ? v.schema.openAPIV3Schema : undefined;
        if (!isRecord(schema)) throw new Error(`${source}: version ${v.name} has no schema.openAPIV3Schema`);
        const subresources = isRecord(v.subresources) ? v.subresources : {};
        const root = schema as JsonSchemaProps;
        // apiVersion, kind and metadata are implicitly specified at the root
        // (never pruned; checked by validate()). metadata is ObjectMeta, checked
        // by metadataErrors: the CRD's own `type: object` would prune every field.
        const implicit: JsonSchemaProps = {
            ...root,
            properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                ...root.properties,
                metadata: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
            },
        };
        versions.push({ name: v.name, schema: implicit, statusSubresource: subresources.status !== undefined });
    }
    return versions;
}

/** A CrdSchema from one CustomResourceDefinition object (as parsed from YAML). */
export function crdFromObject(crd: unknown, source = "CRD"): CrdSchema {
    if (!isRecord(crd) || crd.kind !== "CustomResourceDefinition" || !isRecord(crd.spec)) {
        throw new Error(`${source}: not a CustomResourceDefinition`);
    }
    if (crd.apiVersion !== "apiextensions.k8s.io/v1") throw new Error(`${source}: expected apiextensions.k8s.io/v1, got ${String(crd.apiVersion)}`);
    const spec = crd.spec;
    const names = isRecord(spec.names) ? spec.names : {};
    if (typeof spec.group !== "string" || typeof names.kind !== "string") throw new Error(`${source}: no spec.group or spec.names.kind`);
    const group = spec.group;
    const kind = names.kind;
    const clusterScoped = spec.scope === "Cluster";
    const byName = new Map(parseVersions(spec, source).map((v) => [v.name, v]));

    return {
        group,
        kind,
        versions: [...byName.keys()],
        validate(obj: unknown): string[] {
            if (!isRecord(obj)) return [`(root): expected object, got ${describeValue(obj)}`];
            const errors: string[] = [];
            const apiVersion = obj.apiVersion;
            const slash = typeof apiVersion === "string" ? apiVersion.lastIndexOf("/") : -1;
            const version = typeof apiVersion === "string" && apiVersion.slice(0, slash) === group ? byName.get(apiVersion.slice(slash + 1)) : undefined;
            if (!version) {
                errors.push(`apiVersion: ${JSON.stringify(apiVersion)} is not one of ${[...byName.keys()].map((v) => `${group}/${v}`).join(", ")}`);
            }
            if (obj.kind !== kind) errors.push(`kind: ${JSON.stringify(obj.kind)} is not ${JSON.stringify(kind)}`);
            if (obj.metadata !== undefined) errors.push(...metadataErrors(obj.metadata, "metadata", clusterScoped));
            if (!version) return errors;
            if (version.statusSubresource && obj.status !== undefined) {
                errors.push("status: set on a kind with the status subresource (the API server ignores it on create/update)");
            }
            errors.push(...walk(obj, version.schema, ""));
            return errors;
        },
    };
}

/** The CustomResourceDefinition documents of a (multi-document) YAML text. */
function crdDocuments(text: string, source: string): unknown[] {
    const docs = parseAllDocuments(text);
    if (!Array.isArray(docs)) throw new Error(`${source}: not YAML documents`);
    const crds: unknown[] = [];
    for (const doc of docs) {
        if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0].message}`);
        const value: unknown = doc.toJS();
        if (isRecord(value) && value.kind === "CustomResourceDefinition") crds.push(value);
    }
    return crds;
}

/** The one CRD in a YAML text (multi-document allowed, exactly one CRD). */
export function parseCrd(text: string, source = "CRD"): CrdSchema {
    const crds = crdDocuments(text, source);
    if (crds.length !== 1) throw new Error(`${source}: expected exactly one CustomResourceDefinition, found ${crds.length}`);
    return crdFromObject(crds[0], source);
}

export function loadCrd(file: string): CrdSchema {
    return parseCrd(fs.readFileSync(file, "utf8"), path.basename(file));
}

/**
 * Every vendored CRD, keyed "group/version Kind" for each served version.
 * YAML files there without a CRD (e.g. a chart's values.yaml) are skipped.
 */
export function loadVendoredCrds(dir: string = UPSTREAM_DIR): Map<string, CrdSchema> {
    const byKey = new Map<string, CrdSchema>();
    for (const file of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
        const docs = crdDocuments(fs.readFileSync(path.join(dir, file), "utf8"), file);
        if (docs.length === 0) continue;
        if (docs.length > 1) throw new Error(`${file}: one CustomResourceDefinition per file, found ${docs.length}`);
        const crd = crdFromObject(docs[0], file);
        for (const v of crd.versions) {
            const key = `${crd.group}/${v} ${crd.kind}`;
            if (byKey.has(key)) throw new Error(`${file}: ${key} is vendored twice`);
            byKey.set(key, crd);
        }
    }
    return byKey;
}

// --- JSON Schema (Helm values.schema.json) ---------------------------------------

const jsonSchemaCache = new Map<string, ValidateFunction>();

function compileJsonSchema(schemaFile: string): ValidateFunction {
    const cached = jsonSchemaCache.get(schemaFile);
    if (cached) return cached;
    const schema: unknown = JSON.parse(fs.readFileSync(schemaFile, "utf8"));
    if (!isRecord(schema)) throw new Error(`${schemaFile}: not a JSON object`);
    const dialect = typeof schema.$schema === "string" ? schema.$schema : "";
    const options = { strict: false, allErrors: true };
    let ajv: Ajv;
    if (dialect.includes("2020-12")) ajv = new Ajv2020(options);
    else if (dialect.includes("2019-09")) ajv = new Ajv2019(options);
    else if (dialect === "" || dialect.includes("draft-07")) ajv = new Ajv(options);
    else throw new Error(`${schemaFile}: unsupported $schema ${dialect}`);
    const validate = ajv.compile(schema);
    jsonSchemaCache.set(schemaFile, validate);
    return validate;
}

function formatAjvError(e: ErrorObject): string {
    const segments = e.instancePath.split("/").slice(1).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
    const at = segments.reduce((p, s) => (/^\d+$/.test(s) ? index(p, Number(s)) : child(p, s)), "");
    const params: Record<string, unknown> = e.params;
    if (e.keyword === "additionalProperties" && typeof params.additionalProperty === "string") {
        return `${child(at, params.additionalProperty)}: unknown property (the values schema does not allow it)`;
    }
    if (e.keyword === "required" && typeof params.missingProperty === "string") {
        return `${child(at, params.missingProperty)}: required property is missing`;
    }
    if (e.keyword === "enum" && Array.isArray(params.allowedValues)) {
        const allowed: unknown[] = params.allowedValues;
        return `${where(at)}: must be one of ${allowed.map((v) => JSON.stringify(v)).join(", ")}`;
    }
    return `${where(at)}: ${e.message ?? e.keyword}`;
}

/** Errors of `value` against a JSON Schema file (draft-07, 2019-09 or 2020-12, by its $schema). */
export function validateJsonSchema(schemaFile: string, value: unknown): string[] {
    const validate = compileJsonSchema(schemaFile);
    if (validate(value)) return [];
    return (validate.errors ?? []).map(formatAjvError);
}
