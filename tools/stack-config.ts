// Reads a stack's configuration the way the Pulumi CLI hands it to the
// program: the values of Pulumi.<stack>.yaml, keys qualified with the project
// name (defaults are the program's own, see components/config.ts). Encrypted
// values cannot be decrypted without the stack's secrets provider, so each
// becomes a deterministic placeholder that is still marked secret.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

export interface StackConfig {
    readonly project: string;
    readonly stack: string;
    /** Full keys ("platform:location") to values as Pulumi passes them: strings, JSON for structures. */
    readonly config: Record<string, string>;
    readonly secretKeys: string[];
    /** Things the reader of the render should know (placeholders used). */
    readonly notes: string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

function placeholder(stack: string, key: string): string {
    return `offline-placeholder-${createHash("sha256").update(`${stack}/${key}`).digest("hex").slice(0, 24)}`;
}

/** Replaces `{secure: ...}` leaves with placeholders; reports whether any was found. */
function resolveSecure(value: unknown, stack: string, key: string): { value: unknown; secret: boolean } {
    if (isRecord(value) && typeof value.secure === "string" && Object.keys(value).length === 1) {
        return { value: placeholder(stack, key), secret: true };
    }
    if (Array.isArray(value)) {
        const items = value.map((v, i) => resolveSecure(v, stack, `${key}[${i}]`));
        return { value: items.map((i) => i.value), secret: items.some((i) => i.secret) };
    }
    if (isRecord(value)) {
        let secret = false;
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(value)) {
            const r = resolveSecure(v, stack, `${key}.${k}`);
            out[k] = r.value;
            secret ||= r.secret;
        }
        return { value: out, secret };
    }
    return { value, secret: false };
}

function asConfigString(value: unknown): string {
    return typeof value === "string" ? value : JSON.stringify(value);
}

export function readStackConfig(projectDir: string, stack: string): StackConfig {
    const projectFile = path.join(projectDir, "Pulumi.yaml");
    const project: unknown = parse(fs.readFileSync(projectFile, "utf8"));
    if (!isRecord(project) || typeof project.name !== "string") {
        throw new Error(`${projectFile}: no project name`);
    }
    const stackFile = path.join(projectDir, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(stackFile)) {
        const known = fs.readdirSync(projectDir).filter((f) => /^Pulumi\..+\.yaml$/.test(f)).map((f) => f.slice(7, -5));
        throw new Error(`no stack file ${path.basename(stackFile)}; stacks here: ${known.join(", ") || "none"}`);
    }
    const stackDoc: unknown = parse(fs.readFileSync(stackFile, "utf8")) ?? {};
    const name = project.name;
    const qualify = (key: string) => (key.includes(":") ? key : `${name}:${key}`);

    const config: Record<string, string> = {};
    const secretKeys: string[] = [];
    const values = isRecord(stackDoc) && isRecord(stackDoc.config) ? stackDoc.config : {};
    for (const [key, raw] of Object.entries(values)) {
        const full = qualify(key);
        const { value, secret } = resolveSecure(raw, stack, full);
        config[full] = asConfigString(value);
        if (secret) secretKeys.push(full);
    }
    const notes = secretKeys.length > 0
        ? [`encrypted config (${secretKeys.join(", ")}) replaced by placeholder secrets`]
        : [];
    return { project: name, stack, config, secretKeys, notes };
}

/** The render never uses a real token; it adds a placeholder when the stack has none. */
export function withPlaceholderHcloudToken(sc: StackConfig): StackConfig {
    if (sc.config["hcloud:token"] !== undefined || sc.config[`${sc.project}:mode`] === "existing") return sc;
    return {
        ...sc,
        config: { ...sc.config, "hcloud:token": placeholder(sc.stack, "hcloud:token") },
        secretKeys: [...sc.secretKeys, "hcloud:token"],
        notes: [...sc.notes, "hcloud:token is not set: using a placeholder token (offline render only; set it with `pulumi config set --secret hcloud:token <token>` before `pulumi up`)"],
    };
}

/**
 * `sc` with some values replaced (`--set`, tests). Keys without a namespace are
 * the project's; `secretKeys` marks replaced values that are secrets.
 */
export function withOverrides(sc: StackConfig, overrides: Readonly<Record<string, string>>, secretKeys: readonly string[] = []): StackConfig {
    const qualify = (key: string) => (key.includes(":") ? key : `${sc.project}:${key}`);
    const config = { ...sc.config };
    for (const [key, value] of Object.entries(overrides)) config[qualify(key)] = value;
    return { ...sc, config, secretKeys: [...sc.secretKeys, ...secretKeys.map(qualify)] };
}
