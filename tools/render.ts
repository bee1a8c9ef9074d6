// Offline render: our preview without a Pulumi CLI, provider plugins or cloud
// account. Runs the real program (index.ts) under the mock runtime with the
// stack's config and writes what would be deployed:
//   out/<stack>/resources.json      every resource: urn, type, name, parent, options, dependencies, inputs (secrets "[secret]")
//   out/<stack>/cloud-init/<node>.yaml   each server's user-data, secret values redacted
//   out/<stack>/k8s/*.yaml          one file per Kubernetes object
//   out/<stack>/outputs.json        the stack outputs (secrets "[secret]"); --compare plays them back
//   out/<stack>/policy.json         the policy pack's violations (policies/, tools/policy.ts)
//   out/<stack>/plan.json           with --compare DIR: what `pulumi up` would do from the render in DIR
// Usage: npm run render -- --stack prod [--out DIR] [--set key=value ...] [--compare DIR]
// Exit: 0; 1 invalid config or error; 2 the plan replaces or deletes something stateful, or the cost is above monthlyCostCap.
//   out/<stack>/cost.json           the monthly cost at Hetzner's list prices (policies/rules/hetzner-prices.ts)
import { createHmac, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { stringify } from "yaml";
import { isConfigError, PLAIN_SECRET_SETTINGS } from "../components/config";
import { isSecretValue, type LiveCloud, ProgramRun, RecordedResource, runProgram } from "./mock-runtime";
import { type Cost, describeCost, monthlyCost } from "../policies/rules/cost";
import { criticalPath, describeCriticalPath } from "./critical-path";
import { describePlan, planRenders } from "./plan";
import { checkResources, describeViolations, policyConfig, stackPolicyConfigFile } from "./policy";
import { previousRender, writeFailedNote, writeRenderFiles } from "./out-dir";
import { readStackConfig, StackConfig, withOverrides, withPlaceholderHcloudToken } from "./stack-config";

export const REDACTED = "[secret]";
const PROJECT_DIR = path.resolve(__dirname, "..");

export interface RenderedResource {
    readonly urn: string;
    readonly type: string;
    readonly name: string;
    readonly parent?: string;
    readonly protect?: boolean;
    readonly retainOnDelete?: boolean;
    readonly ignoreChanges?: readonly string[];
    /** Replaced by deleting the old one first. */
    readonly deleteBeforeReplace?: boolean;
    /** URNs this resource waits for (dependsOn and input dependencies). */
    readonly dependencies?: readonly string[];
    /** URN of the explicit provider it is created with (which it waits for too). */
    readonly provider?: string;
    readonly inputs: unknown;
    /** Path of each secret input -> its keyed digest (secretDigests). */
    readonly secretDigests?: Readonly<Record<string, string>>;
}

export interface Render {
    readonly stack: string;
    readonly mode: string;
    readonly resources: RenderedResource[];
    /** Relative path under the output directory -> file text. */
    readonly files: Map<string, string>;
    readonly notes: string[];
    readonly outputs: Record<string, unknown>;
    readonly cost: Cost;
    readonly run: ProgramRun;
}

/** Replaces secret values, keeping the shape of objects and lists (so manifests stay valid). */
export function redact(value: unknown, insideSecret = false): unknown {
    if (isSecretValue(value)) return redact(value.value, true);
    if (Array.isArray(value)) return value.map((v) => redact(v, insideSecret));
    if (typeof value === "object" && value !== null) {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, insideSecret)]));
    }
    return insideSecret && value !== undefined && value !== null ? REDACTED : value;
}

/**
 * A keyed digest (HMAC-SHA256, 16 hex) of every secret leaf of `value`, by path:
 * how --compare sees that a secret input changed without holding either value.
 * The render never holds a real stored secret (encrypted config becomes
 * placeholders, generated ones are fakes), and the key is the output
 * directory's own, so a digest confirms nothing about a real secret.
 */
export function secretDigests(value: unknown, key: string, prefix = "", insideSecret = false, out: Record<string, string> = {}): Record<string, string> {
    if (isSecretValue(value)) return secretDigests(value.value, key, prefix, true, out);
    if (Array.isArray(value)) value.forEach((v, i) => secretDigests(v, key, `${prefix}[${i}]`, insideSecret, out));
    else if (typeof value === "object" && value !== null) {
        for (const [k, v] of Object.entries(value)) secretDigests(v, key, prefix ? `${prefix}.${k}` : k, insideSecret, out);
    } else if (insideSecret && value !== undefined && value !== null) {
        out[prefix] = createHmac("sha256", key).update(String(value)).digest("hex").slice(0, 16);
    }
    return out;
}

function digestsOf(inputs: unknown, key: string): { secretDigests?: Record<string, string> } {
    const digests = secretDigests(inputs, key);
    return Object.keys(digests).length > 0 ? { secretDigests: digests } : {};
}

/** The key of digests when the caller gives none (renders compared in one process). */
export const DEFAULT_DIGEST_KEY = "offline-render";

/** The plain value, secrets unwrapped: only for text that is scrubbed afterwards. */
function reveal(value: unknown): unknown {
    if (isSecretValue(value)) return reveal(value.value);
    if (Array.isArray(value)) return value.map(reveal);
    if (typeof value === "object" && value !== null) {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]));
    }
    return value;
}

export function scrub(text: string, secrets: ReadonlySet<string>): string {
    let out = text;
    // Longest first, so a secret containing another is replaced whole.
    for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
        if (s.length >= 8) out = out.split(s).join(REDACTED);
    }
    return out;
}

/** Pulumi's Kubernetes SDK spells `x-kubernetes-*` schema keys with underscores. */
function kubernetesKeys(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(kubernetesKeys);
    if (typeof value === "object" && value !== null) {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [
            k.startsWith("x_kubernetes_") ? k.replace(/_/g, "-") : k,
            kubernetesKeys(v),
        ]));
    }
    return value;
}

/** A Kubernetes object (not a Helm release or other provider-side resource of the Kubernetes package). */
function isKubernetesObject(r: RecordedResource): boolean {
    return r.custom && r.type.startsWith("kubernetes:") && typeof r.inputs.apiVersion === "string" && typeof r.inputs.kind === "string";
}

function shortUrn(urn: string, byUrn: Map<string, RecordedResource>): string | undefined {
    const r = byUrn.get(urn);
    return r ? `${r.type}::${r.name}` : undefined;
}

function fileSafe(s: string): string {
    return s.toLowerCase().replace(/[^a-z0-9.-]+/g, "-");
}

/** Renders a stack from its Pulumi.<stack>.yaml, with optional `key=value` overrides. */
export function renderStack(stack: string, overrides: Readonly<Record<string, string>> = {}, secretKeys: readonly string[] = [], live?: LiveCloud,
    digestKey = DEFAULT_DIGEST_KEY): Promise<Render> {
    return renderConfig(withPlaceholderHcloudToken(withOverrides(readStackConfig(PROJECT_DIR, stack), overrides, secretKeys)), live, digestKey);
}

/** Runs the program with `sc` and builds every output file in memory. */
export async function renderConfig(sc: StackConfig, live?: LiveCloud, digestKey = DEFAULT_DIGEST_KEY): Promise<Render> {
    const stack = sc.stack;
    // The render must never act on real credentials from the environment.
    const savedToken = process.env.HCLOUD_TOKEN;
    delete process.env.HCLOUD_TOKEN;
    // The program runs where `pulumi up` runs it, in the project directory (it finds build contexts and the stack file there).
    const savedCwd = process.cwd();
    process.chdir(PROJECT_DIR);
    // Fresh program modules per run (tests render several stacks in one process).
    for (const key of Object.keys(require.cache)) {
        if (key.startsWith(PROJECT_DIR) && !key.includes(`${path.sep}node_modules${path.sep}`) && !key.includes(`${path.sep}tools${path.sep}`)) {
            delete require.cache[key];
        }
    }
    let run: ProgramRun;
    try {
        run = await runProgram({
            project: sc.project,
            stack,
            config: sc.config,
            secretKeys: sc.secretKeys,
            // A static path, so the bundle tools/cli.cjs builds includes the program.
            program: () => require("../index") as Record<string, unknown>,
            live,
        });
    } finally {
        if (savedToken !== undefined) process.env.HCLOUD_TOKEN = savedToken;
        process.chdir(savedCwd);
    }

    const byUrn = new Map(run.resources.map((r) => [r.urn, r]));
    const resources: RenderedResource[] = run.resources.map((r) => ({
        urn: r.urn,
        type: r.type,
        name: r.name,
        parent: r.parentUrn ? shortUrn(r.parentUrn, byUrn) : undefined,
        ...(r.protect ? { protect: true } : {}),
        ...(r.retainOnDelete ? { retainOnDelete: true } : {}),
        ...(r.ignoreChanges.length > 0 ? { ignoreChanges: r.ignoreChanges } : {}),
        ...(r.deleteBeforeReplace ? { deleteBeforeReplace: true } : {}),
        ...(r.dependencies.length > 0 ? { dependencies: [...new Set(r.dependencies)].filter((d) => d !== r.urn) } : {}),
        // "<urn>::<id>"; the id of a provider in the mock runtime is never empty.
        ...(r.provider ? { provider: r.provider.slice(0, r.provider.lastIndexOf("::")) } : {}),
        inputs: redact(r.inputs),
        ...digestsOf(r.inputs, digestKey),
    }));

    const files = new Map<string, string>();
    files.set("resources.json", `${JSON.stringify(resources, null, 2)}\n`);
    const outputs = redact(run.outputs) as Record<string, unknown>;
    files.set("outputs.json", `${JSON.stringify(outputs, null, 2)}\n`);

    for (const r of run.resources) {
        if (r.type === "hcloud:index/server:Server" && r.inputs.userData !== undefined) {
            const userData = String(reveal(r.inputs.userData));
            files.set(`cloud-init/${fileSafe(String(reveal(r.inputs.name) ?? r.name))}.yaml`, scrub(userData, run.secretValues));
        }
    }

    let index = 0;
    for (const [i, r] of run.resources.entries()) {
        if (!isKubernetesObject(r)) continue;
        const manifest = kubernetesKeys(resources[i].inputs) as Record<string, unknown>;
        const meta = (manifest.metadata ?? {}) as Record<string, unknown>;
        const kind = String(manifest.kind);
        const ns = typeof meta.namespace === "string" ? `${meta.namespace}-` : "";
        index += 1;
        const file = `k8s/${String(index).padStart(3, "0")}-${fileSafe(kind)}-${fileSafe(ns + String(meta.name ?? r.name))}.yaml`;
        files.set(file, scrub(stringify(manifest, { lineWidth: 0 }), run.secretValues));
    }

    const mode = typeof outputs.mode === "string" ? outputs.mode : "unknown";
    const cost = monthlyCost(resources, mode === "hetzner");
    files.set("cost.json", `${JSON.stringify(cost, null, 2)}\n`);
    return { stack, mode, resources, files, notes: sc.notes, outputs, cost, run };
}

/** The resource tree with counts, as printed after a render. */
export function describeRender(render: Render, outDir: string): string {
    const children = new Map<string | undefined, RenderedResource[]>();
    for (const r of render.resources) {
        const list = children.get(r.parent) ?? [];
        list.push(r);
        children.set(r.parent, list);
    }
    const lines: string[] = [`Offline render of stack '${render.stack}' (${render.mode} mode) -> ${outDir}`];
    const walk = (parent: string | undefined, prefix: string) => {
        const list = children.get(parent) ?? [];
        list.forEach((r, i) => {
            const last = i === list.length - 1;
            const flags = [r.protect ? "protected" : "", r.ignoreChanges?.length ? `ignores ${r.ignoreChanges.join(",")}` : ""].filter(Boolean);
            lines.push(`${prefix}${last ? "└─ " : "├─ "}${r.type}  ${r.name}${flags.length ? `  (${flags.join("; ")})` : ""}`);
            walk(`${r.type}::${r.name}`, `${prefix}${last ? "   " : "│  "}`);
        });
    };
    walk(undefined, "");

    const byPackage = new Map<string, number>();
    for (const r of render.resources) {
        const pkg = r.type.split(":")[0] === "pulumi" ? r.type.split(":")[1] : r.type.split(":")[0];
        byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + 1);
    }
    const count = (prefix: string) => [...render.files.keys()].filter((f) => f.startsWith(prefix)).length;
    lines.push("");
    lines.push(`Resources: ${render.resources.length} (${[...byPackage].map(([k, v]) => `${k} ${v}`).join(", ")})`);
    lines.push(`Kubernetes objects: ${count("k8s/")}; cloud-init files: ${count("cloud-init/")}`);
    const outputs = Object.entries(render.outputs).map(([k, v]) =>
        `${k}=${typeof v === "string" ? v : Array.isArray(v) ? `[${v.length} items]` : JSON.stringify(v)}`);
    lines.push(`Stack outputs: ${outputs.join(", ")}`);
    lines.push(describeCost(render.cost));
    lines.push(describeCriticalPath(criticalPath(render.resources)));
    for (const note of render.notes) lines.push(`Note: ${note}`);
    return lines.join("\n");
}

/** Fails if any secret value reached a file or the printed summary. */
export function assertNoSecrets(texts: Iterable<string>, secrets: ReadonlySet<string>): void {
    for (const text of texts) {
        for (const s of secrets) {
            if (s.length >= 8 && text.includes(s)) throw new Error("a secret value reached the render output; refusing to write it");
        }
    }
}

const USAGE = "usage: npm run render -- --stack <name> [--out <dir>] [--set <key or path>=<value> ...] [--set-secret <key or path>=<value> ...] [--compare <earlier render dir>]";

function parseArgs(argv: string[]): { stack: string; out?: string; compare?: string; overrides: Record<string, string>; secretOverrides: string[] } {
    let stack: string | undefined;
    let out: string | undefined;
    let compare: string | undefined;
    const overrides: Record<string, string> = {};
    const secretOverrides: string[] = [];
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--stack" || a === "-s") stack = argv[++i];
        else if (a.startsWith("--stack=")) stack = a.slice(8);
        else if (a === "--out") out = argv[++i];
        else if (a.startsWith("--out=")) out = a.slice(6);
        else if (a === "--compare") compare = argv[++i];
        else if (a.startsWith("--compare=")) compare = a.slice(10);
        else if (a === "--set" || a === "--set-secret") {
            // Try a variation without editing the stack file: --set agentCount=3, --set apps.api.replicas=5
            const pair = argv[++i] ?? "";
            const eq = pair.indexOf("=");
            if (eq <= 0) throw new Error(`${a} needs key=value, got '${pair}' (${USAGE})`);
            overrides[pair.slice(0, eq)] = pair.slice(eq + 1);
            if (a === "--set-secret") secretOverrides.push(pair.slice(0, eq));
        } else if (a === "--help" || a === "-h") {
            console.log(USAGE);
            process.exit(0);
        } else throw new Error(`unknown argument '${a}' (${USAGE})`);
    }
    if (!stack) throw new Error(`missing --stack (${USAGE})`);
    if (compare === "") throw new Error(`--compare needs a directory (${USAGE})`);
    return { stack, out, compare, overrides, secretOverrides };
}

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2));
    const outDir = path.resolve(args.out ?? path.join(PROJECT_DIR, "out", args.stack));
    // Read the earlier render before writing: it may be the output directory itself.
    const earlierRender = args.compare === undefined ? undefined : readEarlierRender(args.compare);
    const earlier = earlierRender?.resources;
    // Digests are comparable with the earlier render's: its key, else this directory's, else a new one.
    const digestKey = earlierRender?.digestKey ?? readDigestKey(outDir) ?? randomBytes(32).toString("hex");
    // Before any work: a directory this tool may not write is refused, untouched.
    const previous = previousRender(outDir);
    let render: Render;
    try {
        // A credential given with --set is on the command line, not in a stack file: render it as the secret it must be.
        const secretOverrides = [...args.secretOverrides, ...Object.keys(args.overrides).filter((k) => k === "hcloud:token" || (PLAIN_SECRET_SETTINGS as readonly string[]).includes(k.replace(/^platform:/, ""))
            || /^(platform:)?(databaseUrl|databaseImportUrl)$/.test(k))];
        render = await renderStack(args.stack, args.overrides, secretOverrides, earlierRender && earlierState(earlierRender), digestKey);
    } catch (err) {
        // The earlier render's files are gone (they would pass for this config): say why.
        if (previous.length > 0) writeFailedNote(outDir, previous, args.stack, err instanceof Error ? err.message : String(err));
        if (isConfigError(err)) {
            console.error(err.message);
            process.exit(1);
        }
        throw err;
    }
    const summary = describeRender(render, path.relative(process.cwd(), outDir) || ".");
    let planText: string | undefined;
    let unsafe = false;
    if (earlier) {
        const plan = planRenders(earlier, render.resources);
        const before = monthlyCost(earlier, earlierRender?.outputs.mode === "hetzner");
        const delta = render.cost.total - before.total;
        planText = `${describePlan(plan, `${args.compare} -> stack ${args.stack}`)}\n`
            + `Monthly cost: ${before.currency} ${before.total.toFixed(2)} -> ${render.cost.total.toFixed(2)} (${delta >= 0 ? "+" : ""}${delta.toFixed(2)})`;
        render.files.set("plan.json", `${JSON.stringify(plan.entries.filter((e) => e.action !== "same"), null, 2)}\n`);
        unsafe = plan.destructive.length > 0;
    }
    // The policy pack over the same resources, under the stack's policy config (npm run policy prints every violation).
    const violations = await checkResources(render.resources, policyConfig(stackPolicyConfigFile(args.stack)));
    render.files.set("policy.json", `${JSON.stringify(violations, null, 2)}\n`);
    assertNoSecrets([...render.files.values(), summary, planText ?? ""], render.run.secretValues);
    render.files.set(DIGEST_KEY_FILE, `${digestKey}\n`);
    writeRenderFiles(outDir, render.files, previous, new Set([DIGEST_KEY_FILE]));
    console.log(summary);
    console.log(describeViolations(violations).split("\n").pop());
    if (planText) console.log(`\n${planText}`);
    const cap = render.outputs.monthlyCostCap;
    if (typeof cap === "number" && render.cost.total > cap) {
        console.log(`OVER THE CAP: the monthly cost ${render.cost.currency} ${render.cost.total.toFixed(2)} is above platform:monthlyCostCap ${cap.toFixed(2)}`);
        unsafe = true;
    }
    // 2: the plan would replace or delete something stateful, or cost more than the cap (CI stops there).
    if (unsafe) process.exitCode = 2;
}

export interface EarlierRender {
    readonly resources: RenderedResource[];
    readonly outputs: Record<string, unknown>;
    readonly digestKey?: string;
}

const DIGEST_KEY_FILE = ".digest-key";

function readDigestKey(dir: string): string | undefined {
    const file = path.join(dir, DIGEST_KEY_FILE);
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() : undefined;
}

/** resources.json and outputs.json of an earlier render (a directory written by this tool). */
export function readEarlierRender(dir: string): EarlierRender {
    const file = path.join(dir, "resources.json");
    if (!fs.existsSync(file)) throw new Error(`--compare ${dir}: no resources.json there (render into it first: npm run render -- --stack <name> --out ${dir})`);
    const parsed: unknown = JSON.parse(fs.readFileSync(file, "utf8"));
    const outputsFile = path.join(dir, "outputs.json");
    if (!Array.isArray(parsed) || parsed.some((r) => typeof (r as { urn?: unknown }).urn !== "string") || !fs.existsSync(outputsFile)) {
        throw new Error(`--compare ${dir}: written by an older render (no URNs or no outputs.json); render the earlier config again`);
    }
    return { resources: parsed as RenderedResource[], outputs: JSON.parse(fs.readFileSync(outputsFile, "utf8")) as Record<string, unknown>, digestKey: readDigestKey(dir) };
}

/**
 * What the cloud and the stack hold after deploying `earlier`, for the program's
 * guards to read: its outputs (settings fixed at creation) and its Hetzner
 * servers and network as the provider's data sources return them.
 */
export function earlierState(earlier: EarlierRender): LiveCloud {
    const inputsOf = (type: string) => earlier.resources.filter((r) => r.type === type).map((r) => r.inputs as Record<string, unknown>);
    return {
        stackOutputs: earlier.outputs,
        servers: inputsOf("hcloud:index/server:Server").map((x) => ({
            name: x.name,
            serverType: x.serverType,
            location: x.location,
            labels: x.labels,
            status: "running",
            networks: Array.isArray(x.networks) ? x.networks.map((n) => ({ ip: (n as { ip?: unknown }).ip })) : [],
        })),
        networks: inputsOf("hcloud:index/network:Network").map((x) => ({ ipRange: x.ipRange, labels: x.labels })),
    };
}

/** Runs the command line (tsx, or the bundle tools/cli.cjs builds). */
export function cli(): void {
    main().catch((err: unknown) => {
        console.error(err instanceof Error ? err.message : err);
        process.exit(1);
    });
}

if (require.main === module) cli();
