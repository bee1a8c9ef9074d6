// Policy pack config as the Pulumi CLI computes it before it calls the pack's
// Configure: pulumi/pulumi pkg/resource/analyzer/config.go
// (ReconcilePolicyPackConfig, parsePolicyPackConfig, extractEnforcementLevel,
// validatePolicyPackConfig), read at commit 1b5949891b3c (v3.259 line):
//   1. every policy starts at the level it reports and its schema's top-level defaults;
//   2. the pack's initial config, then the config file (--policy-pack-config),
//      are applied in turn: in each, `all` sets every policy's level first, then
//      each entry sets its policy's level and merges its properties (shallow);
//   3. the result is validated against each policy's schema
//      ({type: object, properties, required}: extra properties allowed);
//   4. every entry, `all` and unknown names included, is sent.
import type { PolicyConfigSchema } from "@pulumi/policy";
import Ajv from "ajv";

export const ENFORCEMENT_LEVELS = ["advisory", "mandatory", "remediate", "disabled"] as const;
export type EnforcementLevel = (typeof ENFORCEMENT_LEVELS)[number];

export interface PolicyConfigEntry {
    readonly enforcementLevel?: EnforcementLevel;
    readonly properties: Readonly<Record<string, unknown>>;
}

/** What GetAnalyzerInfo tells the CLI about one policy. */
export interface PolicyDescription {
    readonly name: string;
    readonly enforcementLevel: EnforcementLevel;
    readonly configSchema?: PolicyConfigSchema;
}

export interface ReconciledEntry {
    readonly enforcementLevel: EnforcementLevel;
    readonly properties: Readonly<Record<string, unknown>>;
}

export class PolicyConfigError extends Error {}

const isLevel = (value: unknown): value is EnforcementLevel => typeof value === "string" && (ENFORCEMENT_LEVELS as readonly string[]).includes(value);

/** A config file's text, parsed as the CLI does (empty: no config); `source` names the file in errors. */
export function parsePolicyConfig(text: string, source: string): Record<string, PolicyConfigEntry> {
    if (text.trim() === "") return {};
    try {
        return policyConfigEntries(JSON.parse(text), source);
    } catch (err) {
        if (err instanceof SyntaxError) throw new PolicyConfigError(`${source}: not JSON (${err.message})`);
        throw err;
    }
}

/**
 * Policy config in the form a file and the pack's initial config share: policy name to
 * an enforcement level (`"mandatory"`) or to `{enforcementLevel?, ...properties}`.
 */
export function policyConfigEntries(raw: unknown, source: string): Record<string, PolicyConfigEntry> {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new PolicyConfigError(`${source}: must be a JSON object of policy names`);
    const out: Record<string, PolicyConfigEntry> = {};
    for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof value === "string") {
            if (!isLevel(value)) throw new PolicyConfigError(`${source}: ${name}: '${value}' is not an enforcement level (${ENFORCEMENT_LEVELS.join(", ")})`);
            out[name] = { enforcementLevel: value, properties: {} };
        } else if (typeof value === "object" && value !== null && !Array.isArray(value)) {
            const { enforcementLevel, ...properties } = value as Record<string, unknown>;
            if (enforcementLevel !== undefined && !isLevel(enforcementLevel)) {
                throw new PolicyConfigError(`${source}: ${name}.enforcementLevel: '${String(enforcementLevel)}' is not an enforcement level (${ENFORCEMENT_LEVELS.join(", ")})`);
            }
            // The CLI drops an empty entry.
            if (enforcementLevel === undefined && Object.keys(properties).length === 0) continue;
            out[name] = { ...(enforcementLevel === undefined ? {} : { enforcementLevel }), properties };
        } else {
            throw new PolicyConfigError(`${source}: ${name}: must be an enforcement level or an object`);
        }
    }
    return out;
}

/** The config the CLI sends to Configure: defaults, then the pack's initial config, then the file; validated. */
export function reconcilePolicyConfig(
    policies: readonly PolicyDescription[],
    initialConfig: Readonly<Record<string, PolicyConfigEntry>>,
    fileConfig: Readonly<Record<string, PolicyConfigEntry>>,
): Record<string, ReconciledEntry> {
    const result: Record<string, { enforcementLevel?: EnforcementLevel; properties: Record<string, unknown> }> = {};
    for (const p of policies) {
        const defaults = Object.entries(p.configSchema?.properties ?? {}).filter(([, s]) => s.default !== undefined).map(([k, s]) => [k, s.default]);
        result[p.name] = { enforcementLevel: p.enforcementLevel, properties: Object.fromEntries(defaults) };
    }
    for (const layer of [initialConfig, fileConfig]) {
        const all = layer.all?.enforcementLevel;
        if (all) for (const p of policies) result[p.name].enforcementLevel = all;
        for (const [name, entry] of Object.entries(layer)) {
            const current = result[name] ?? { properties: {} };
            result[name] = {
                enforcementLevel: entry.enforcementLevel ?? current.enforcementLevel,
                properties: { ...current.properties, ...entry.properties },
            };
        }
    }
    const problems: string[] = [];
    const ajv = new Ajv({ allErrors: true, strict: false });
    for (const p of policies) {
        if (!p.configSchema) continue;
        const validate = ajv.compile({ type: "object", properties: p.configSchema.properties, required: [...(p.configSchema.required ?? [])] });
        if (!validate(result[p.name].properties)) {
            for (const e of validate.errors ?? []) problems.push(`${p.name}: ${`${e.instancePath.slice(1).replace(/\//g, ".")} ${e.message ?? "is invalid"}`.trim()}`);
        }
    }
    for (const [name, entry] of Object.entries(result)) {
        if (!entry.enforcementLevel) problems.push(`${name}: no enforcement level (an entry that names no policy of the pack needs one)`);
    }
    if (problems.length > 0) throw new PolicyConfigError(`validating policy config:\n  ${problems.join("\n  ")}`);
    return result as Record<string, ReconciledEntry>;
}
