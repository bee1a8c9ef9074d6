// Reads a stack's configuration the way the Pulumi CLI hands it to the
// program: the values of Pulumi.<stack>.yaml, keys qualified with the project
// name (defaults are the program's own, see components/config.ts). Encrypted
// values cannot be decrypted without the stack's secrets provider, so each
// becomes a deterministic placeholder that is still marked secret.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse, YAMLParseError } from "yaml";

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

/**
 * A stand-in for an encrypted value: deterministic per stack and key, and of
 * the shape the program checks the setting for (a database URL is a
 * postgresql:// URL that requires TLS), so an encrypted setting renders as
 * the real one would.
 */
function placeholder(stack: string, key: string): string {
    const hash = createHash("sha256").update(`${stack}/${key}`).digest("hex").slice(0, 24);
    if (/:(databaseUrl|databaseImportUrl)$/.test(key)) return `postgresql://offline:${hash}@offline-placeholder.invalid:5432/app?sslmode=require`;
    return `offline-placeholder-${hash}`;
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

/** A YAML file's content; a syntax error names the file and where in it. */
function parseYamlFile(file: string): unknown {
    try {
        return parse(fs.readFileSync(file, "utf8"));
    } catch (err) {
        if (err instanceof YAMLParseError) throw new Error(`${path.basename(file)}: not valid YAML: ${err.message}`);
        throw err;
    }
}

export function readStackConfig(projectDir: string, stack: string): StackConfig {
    const projectFile = path.join(projectDir, "Pulumi.yaml");
    const project = parseYamlFile(projectFile);
    if (!isRecord(project) || typeof project.name !== "string") {
        throw new Error(`${projectFile}: no project name`);
    }
    const stackFile = path.join(projectDir, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(stackFile)) {
        const known = fs.readdirSync(projectDir).filter((f) => /^Pulumi\..+\.yaml$/.test(f)).map((f) => f.slice(7, -5));
        throw new Error(`no stack file ${path.basename(stackFile)}; stacks here: ${known.join(", ") || "none"}`);
    }
    const stackDoc = parseYamlFile(stackFile) ?? {};
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
 * The segments of a `pulumi config set --path` key after its namespace:
 * `apps.api.replicas`, `adminCidrs[0]`, `apps["my.app"].host` (pulumi/pulumi
 * sdk/go/common/resource/config parseKeyPath). Throws on a malformed path.
 */
export function parseConfigPath(pathText: string): (string | number)[] {
    const segments: (string | number)[] = [];
    let i = 0;
    const fail = (why: string) => new Error(`'${pathText}' is not a config path (${why}); use a.b.c, a[0] or a["b.c"], as pulumi config set --path does`);
    while (i < pathText.length) {
        if (pathText[i] === "[") {
            const close = pathText.indexOf("]", i);
            if (close < 0) throw fail("an unclosed [");
            const inner = pathText.slice(i + 1, close);
            if (/^\d+$/.test(inner)) segments.push(Number(inner));
            else if (/^"[^"]+"$/.test(inner)) segments.push(inner.slice(1, -1));
            else throw fail(`[${inner}] is neither an index nor a quoted key`);
            i = close + 1;
            if (pathText[i] === ".") i += 1;
        } else {
            const end = pathText.slice(i).search(/[.[]/);
            const name = end < 0 ? pathText.slice(i) : pathText.slice(i, i + end);
            if (name === "") throw fail("an empty segment");
            segments.push(name);
            i += name.length;
            if (pathText[i] === ".") {
                i += 1;
                if (i === pathText.length) throw fail("a trailing dot");
            }
        }
    }
    if (segments.length === 0 || typeof segments[0] !== "string") throw fail("it must start with a key");
    return segments;
}

/** A value set at a nested path, as the CLI stores it: `true`/`false` as booleans, whole numbers without a leading zero as numbers, else the string. */
function coercePathValue(value: string): string | number | boolean {
    if (value === "true" || value === "false") return value === "true";
    if (/^(0|-?[1-9]\d*)$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
    return value;
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function setAtPath(container: Json | undefined, segments: readonly (string | number)[], value: Json | undefined, where: string): Json {
    const [head, ...rest] = segments;
    const next = (current: Json | undefined, at: string) => (rest.length === 0 ? value : setAtPath(current, rest, value, at));
    if (typeof head === "number") {
        const list = container === undefined ? [] : container;
        if (!Array.isArray(list)) throw new Error(`${where} is not a list: cannot set [${head}]`);
        if (head > list.length || (value === undefined && head >= list.length)) throw new Error(`${where}[${head}]: the list has ${list.length} item(s); set [${list.length}] to add one`);
        const copy = [...list];
        const item = next(list[head], `${where}[${head}]`);
        if (item === undefined) copy.splice(head, 1);
        else copy[head] = item;
        return copy;
    }
    const map = container === undefined ? {} : container;
    if (typeof map !== "object" || map === null || Array.isArray(map)) throw new Error(`${where} is not a map: cannot set .${head}`);
    const { [head]: current, ...others } = map;
    const item = next(current, `${where}.${head}`);
    return item === undefined ? others : { ...others, [head]: item };
}

/** One `pulumi config set [--secret] [--path]` (value given) or `pulumi config rm [--path]` (no value). */
export interface ConfigEdit {
    readonly key: string;
    readonly value?: string;
    readonly secret?: boolean;
}

/**
 * `sc` after `edits`, as the CLI would store them: a key without a namespace is
 * the project's; a key with a path (`apps.api.replicas`, `adminCidrs[0]`)
 * changes that part of its setting, and a value set at a path is typed as
 * the CLI types it. A secret edit makes its whole setting secret, as Pulumi
 * treats a setting with a secure leaf.
 */
export function withConfigEdits(sc: StackConfig, edits: readonly ConfigEdit[]): StackConfig {
    const config = { ...sc.config };
    const secretKeys = new Set(sc.secretKeys);
    for (const edit of edits) {
        const colon = edit.key.indexOf(":");
        const [namespace, rest] = colon >= 0 ? [edit.key.slice(0, colon), edit.key.slice(colon + 1)] : [sc.project, edit.key];
        const segments = parseConfigPath(rest);
        const root = `${namespace}:${String(segments[0])}`;
        if (edit.secret) secretKeys.add(root);
        if (segments.length === 1) {
            if (edit.value === undefined) {
                delete config[root];
                secretKeys.delete(root);
            } else config[root] = edit.value;
            continue;
        }
        let current: Json | undefined;
        if (config[root] !== undefined) {
            try {
                current = JSON.parse(config[root]) as Json;
            } catch {
                throw new Error(`${root} is a plain value, not a map or list: cannot set ${edit.key}`);
            }
        }
        config[root] = JSON.stringify(setAtPath(current, segments.slice(1), edit.value === undefined ? undefined : coercePathValue(edit.value), root));
    }
    return { ...sc, config, secretKeys: [...secretKeys] };
}

/** `sc` with some values set (`--set`, tests); `secretKeys` names those that are secrets. */
export function withOverrides(sc: StackConfig, overrides: Readonly<Record<string, string>>, secretKeys: readonly string[] = []): StackConfig {
    return withConfigEdits(sc, Object.entries(overrides).map(([key, value]) => ({ key, value, secret: secretKeys.includes(key) })));
}
