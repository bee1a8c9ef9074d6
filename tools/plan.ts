// Offline plan: what `pulumi up` would do to go from an earlier render to this
// one, decided by the providers' own replacement rules (tools/replace-rules.ts).
// Pure: two lists of rendered resources in, a plan out; the render CLI
// (`--compare DIR`) prints it and writes out/<stack>/plan.json.
import type { RenderedResource } from "./render";
import { REDACTED } from "./render";
import { replacementReason, statefulKind } from "./replace-rules";

export type PlanAction = "create" | "update" | "replace" | "delete" | "same";

export interface PlanEntry {
    readonly urn: string;
    readonly type: string;
    readonly name: string;
    readonly action: PlanAction;
    /** Input paths that changed (for update and replace); a secret's path says so, never its value. */
    readonly paths: readonly string[];
    /** Why it is a replacement (or a delete/create pair), in the provider's terms. */
    readonly reason?: string;
    /** Holds data or identity that a replace or delete loses: servers, addresses, volumes, databases, generated secrets. */
    readonly stateful: boolean;
    readonly protected: boolean;
}

export interface Plan {
    readonly entries: readonly PlanEntry[];
    /** Replacements and deletions of stateful resources (a retained one's delete excepted): the plan is unsafe when there is any. */
    readonly destructive: readonly PlanEntry[];
}

/** Every leaf path where `before` and `after` differ ("spec.template.spec.containers[0].image"). */
export function changedPaths(before: unknown, after: unknown, prefix = ""): string[] {
    if (before === after) return [];
    const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
    if (Array.isArray(before) && Array.isArray(after)) {
        const out: string[] = [];
        for (let i = 0; i < Math.max(before.length, after.length); i++) out.push(...changedPaths(before[i], after[i], `${prefix}[${i}]`));
        return out;
    }
    if (isObject(before) && isObject(after)) {
        const out: string[] = [];
        for (const key of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
            out.push(...changedPaths(before[key], after[key], prefix ? `${prefix}.${key}` : key));
        }
        return out;
    }
    return [prefix || "(value)"];
}

/** True when `path` is `ignored` or inside it (Pulumi's ignoreChanges paths, dotted). */
function isUnder(path: string, ignored: string): boolean {
    return path === ignored || path.startsWith(`${ignored}.`) || path.startsWith(`${ignored}[`);
}

/** A path whose value is a secret on either side is shown as such: the plan never carries values. */
function describePath(path: string, before: unknown, after: unknown): string {
    const at = (root: unknown): unknown => {
        let cur: unknown = root;
        for (const part of path.split(/\.|\[(\d+)\]/).filter((p) => p !== undefined && p !== "")) {
            if (typeof cur !== "object" || cur === null) return undefined;
            cur = (cur as Record<string, unknown>)[part];
        }
        return cur;
    };
    return at(before) === REDACTED || at(after) === REDACTED ? `${path} (secret)` : path;
}

/**
 * The plan from `before` to `after`, matched by URN. A resource whose inputs
 * differ is replaced when a changed path forces it (replace-rules.ts), else
 * updated; paths under the resource's ignoreChanges do not count. A resource
 * that waits for a replaced one and has secret inputs is an update: its secret
 * values may come from the replacement (the render never compares them).
 */
export function planRenders(before: readonly RenderedResource[], after: readonly RenderedResource[]): Plan {
    const old = new Map(before.map((r) => [r.urn, r]));
    const now = new Map(after.map((r) => [r.urn, r]));
    const statefulNamespaces = namespacesHoldingData([...before, ...after]);
    const isStateful = (r: RenderedResource) => statefulKind(r.type, r.inputs, statefulNamespaces);
    const entries = new Map<string, PlanEntry>();

    for (const r of after) {
        const was = old.get(r.urn);
        if (!was) {
            entries.set(r.urn, entry(r, "create", [], undefined, isStateful(r)));
            continue;
        }
        const ignored = r.ignoreChanges ?? [];
        // Secret leaves are "[secret]" on both sides: their digests tell whether they changed.
        const secretChanges = [...new Set([...Object.keys(was.secretDigests ?? {}), ...Object.keys(r.secretDigests ?? {})])]
            .filter((p) => was.secretDigests?.[p] !== r.secretDigests?.[p]);
        const paths = [...new Set([...changedPaths(was.inputs, r.inputs), ...secretChanges])].sort()
            .filter((p) => !ignored.some((i) => isUnder(p, i)));
        if (paths.length === 0) {
            entries.set(r.urn, entry(r, "same", [], undefined, isStateful(r)));
            continue;
        }
        const forced = replacementReason(r.type, paths);
        // The program's deleteBeforeReplace: the old one goes first (a gap), as the engine does it.
        const reason = forced && r.deleteBeforeReplace ? `${forced}; deleteBeforeReplace: the old one is deleted before the new one is created` : forced;
        entries.set(r.urn, entry(r, reason ? "replace" : "update", paths.map((p) => describePath(p, was.inputs, r.inputs)), reason, isStateful(r)));
    }
    for (const r of before) {
        if (!now.has(r.urn)) entries.set(r.urn, entry(r, "delete", [], "not in the new render (a removed resource or a changed logical name)", isStateful(r)));
    }
    // Secret inputs fed by a replaced resource (a new password) change with it, as in a preview.
    for (const r of after) {
        const e = entries.get(r.urn);
        const secrets = secretPaths(r.inputs);
        if (!e || e.action !== "same" || secrets.length === 0) continue;
        const source = (r.dependencies ?? []).map((d) => entries.get(d)).find((d) => d?.action === "replace");
        if (!source) continue;
        const reason = replacementReason(r.type, secrets);
        entries.set(r.urn, { ...e, action: reason ? "replace" : "update", paths: secrets.map((p) => `${p} (secret, from ${source.name}, which is replaced)`), ...(reason ? { reason } : {}) });
    }
    const list = [...entries.values()];
    // A delete of a resource the program retains on delete only leaves Pulumi's state: the object stays.
    const retained = new Set(before.filter((r) => r.retainOnDelete).map((r) => r.urn));
    return { entries: list, destructive: list.filter((e) => e.stateful && ((e.action === "delete" && !retained.has(e.urn)) || (e.action === "replace" && !isRotation(e)))) };
}

/**
 * A generated secret replaced only because its keepers changed: a rotation the
 * user asked for (e.g. databasePasswordVersion), which the program rolls out
 * without losing anything; listed, but not destructive.
 */
export function isRotation(e: PlanEntry): boolean {
    return e.action === "replace" && e.type.startsWith("random:") && e.paths.length > 0 && e.paths.every((p) => p === "keepers" || p.startsWith("keepers."));
}

/** Paths of the redacted (secret) values in rendered inputs. */
function secretPaths(value: unknown, prefix = ""): string[] {
    if (value === REDACTED) return [prefix];
    if (Array.isArray(value)) return value.flatMap((v, i) => secretPaths(v, `${prefix}[${i}]`));
    if (typeof value === "object" && value !== null) {
        return Object.entries(value).flatMap(([k, v]) => secretPaths(v, prefix ? `${prefix}.${k}` : k));
    }
    return [];
}

function entry(r: RenderedResource, action: PlanAction, paths: string[], reason: string | undefined, stateful: boolean): PlanEntry {
    return { urn: r.urn, type: r.type, name: r.name, action, paths, ...(reason ? { reason } : {}), stateful, protected: r.protect === true };
}

/** Namespaces with a PersistentVolumeClaim or a CloudNativePG object: deleting one deletes that data. */
function namespacesHoldingData(resources: readonly RenderedResource[]): Set<string> {
    const out = new Set<string>();
    for (const r of resources) {
        const ns = (r.inputs as { metadata?: { namespace?: unknown } } | undefined)?.metadata?.namespace;
        if (typeof ns === "string" && statefulKind(r.type, r.inputs, new Set())) out.add(ns);
    }
    return out;
}

/** The plan as printed: grouped by action, with paths and reasons, then the verdict. */
export function describePlan(plan: Plan, label: string): string {
    const lines = [`Plan: ${label}`];
    for (const action of ["create", "update", "replace", "delete"] as const) {
        const group = plan.entries.filter((e) => e.action === action);
        if (group.length === 0) continue;
        lines.push("", `${action} (${group.length}):`);
        for (const e of group) {
            const flags = [e.stateful ? "STATEFUL" : "", e.protected ? "protected" : "", isRotation(e) ? "rotation" : ""].filter(Boolean).join(", ");
            lines.push(`  ${e.type}  ${e.name}${flags ? `  [${flags}]` : ""}`);
            if (e.paths.length > 0) lines.push(`      changed: ${e.paths.slice(0, 8).join(", ")}${e.paths.length > 8 ? `, ... (${e.paths.length} paths)` : ""}`);
            if (e.reason) lines.push(`      why: ${e.reason}`);
        }
    }
    lines.push("", `unchanged: ${plan.entries.filter((e) => e.action === "same").length}`);
    if (plan.destructive.length > 0) {
        lines.push(`UNSAFE: ${plan.destructive.length} stateful resource(s) would be replaced or deleted: ${plan.destructive.map((e) => e.name).join(", ")}`);
    } else {
        lines.push("Safe: nothing stateful is replaced or deleted.");
    }
    return lines.join("\n");
}
