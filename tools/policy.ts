// Offline policy runner: the real pack (policies/rules) over every resource of
// a render, the way the engine runs it: each resource becomes the analyzer's
// AnalyzeRequest (protobuf, properties serialized as the engine sends them) and
// goes through @pulumi/policy's own analyze function (server.js
// makeAnalyzeRpcFun, as `pulumi preview --policy-pack` calls it over gRPC).
//
// Policy config is reconciled as the CLI does it (tools/policy-config.ts) from
// the pack's schema defaults and initial config and a config file, then
// applied as the pack's Configure would: each policy runs at its configured
// level and its getConfig() returns its configured properties.
//
// Usage: npm run policy -- --stack NAME [--config FILE]       render the stack, then check it
//        npm run policy -- --resources FILE [--config FILE]   check a file like out/NAME/resources.json
// With --stack, policies/config/NAME.json is the config unless --config names
// another (CI passes the same file to `pulumi preview --policy-pack-config`).
// Prints one line per violation, grouped by policy (level, policy, resource,
// the fix); writes out/NAME/policy.json (with --stack); exit 1 on a mandatory
// violation.
import * as fs from "node:fs";
import * as path from "node:path";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import * as analyzerproto from "@pulumi/pulumi/proto/analyzer_pb";
import * as policyServer from "@pulumi/policy/server";
import type { ResourceValidation, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { isConfigError } from "../components/config";
import { ALL_POLICIES, INITIAL_CONFIG, PACK_NAME } from "../policies/rules";
import { type PolicyConfigEntry, PolicyConfigError, type ReconciledEntry, parsePolicyConfig, policyConfigEntries, reconcilePolicyConfig } from "./policy-config";
import { type RenderedResource, renderStack } from "./render";

const PACK_VERSION = (JSON.parse(fs.readFileSync(path.join(__dirname, "..", "policies", "package.json"), "utf8")) as { version: string }).version;

export interface Violation {
    readonly policy: string;
    readonly level: "advisory" | "mandatory";
    readonly urn: string;
    readonly name: string;
    readonly type: string;
    readonly message: string;
    readonly fix: string;
}

type AnalyzeCall = (call: { request: analyzerproto.AnalyzeRequest }, callback: (err: unknown, resp?: analyzerproto.AnalyzeResponse) => void) => Promise<void>;
type AnalyzeStackCall = (call: { request: analyzerproto.AnalyzeStackRequest }, callback: (err: unknown, resp?: analyzerproto.AnalyzeResponse) => void) => Promise<void>;
/** Exported by server.js (1.21.0) but left out of its typings: what the pack's gRPC Analyze and AnalyzeStack calls run. */
const { makeAnalyzeRpcFun, makeAnalyzeStackRpcFun } = policyServer as unknown as {
    makeAnalyzeRpcFun(packName: string, packVersion: string, packEnforcementLevel: string, policies: unknown[]): AnalyzeCall;
    makeAnalyzeStackRpcFun(packName: string, packVersion: string, packEnforcementLevel: string, policies: unknown[]): AnalyzeStackCall;
};

/** The resource as the engine describes it to an analyzer (AnalyzeRequest, or AnalyzerResource in AnalyzeStack). */
function describe<T extends analyzerproto.AnalyzeRequest | analyzerproto.AnalyzerResource>(req: T, r: RenderedResource, properties: Struct): T {
    req.setType(r.type);
    req.setUrn(r.urn);
    req.setName(r.name);
    req.setProperties(properties);
    const opts = new analyzerproto.AnalyzerResourceOptions();
    opts.setProtect(r.protect === true);
    opts.setIgnorechangesList([...(r.ignoreChanges ?? [])]);
    if (r.deleteBeforeReplace !== undefined) {
        opts.setDeletebeforereplace(r.deleteBeforeReplace);
        opts.setDeletebeforereplacedefined(true);
    }
    req.setOptions(opts);
    return req;
}

function diagnosticsOf(response: analyzerproto.AnalyzeResponse, r: RenderedResource | undefined, byUrn: ReadonlyMap<string, RenderedResource>): Violation[] {
    const fixes = new Map(ALL_POLICIES.map((p) => [p.name, p.remediationSteps ?? ""]));
    return response.getDiagnosticsList().map((d) => {
        // The analyzer prefixes the policy's description to the reported message.
        const text = d.getMessage();
        const message = text.startsWith(`${d.getDescription()}\n`) ? text.slice(d.getDescription().length + 1) : text;
        const subject = r ?? byUrn.get(d.getUrn());
        return {
            policy: d.getPolicyname(),
            level: d.getEnforcementlevel() === analyzerproto.EnforcementLevel.MANDATORY ? "mandatory" : "advisory",
            urn: subject?.urn ?? "",
            name: subject?.name ?? "(stack)",
            type: subject?.type ?? "pulumi:pulumi:Stack",
            message,
            fix: fixes.get(d.getPolicyname()) ?? "",
        };
    });
}

/** The stack's policy config file (policies/config/<stack>.json), if it has one. */
export function stackPolicyConfigFile(stack: string): string | undefined {
    const file = path.join(__dirname, "..", "policies", "config", `${stack}.json`);
    return fs.existsSync(file) ? file : undefined;
}

/** The config the CLI would send the pack with `--policy-pack-config file` (no file: defaults and the pack's initial config). */
export function policyConfig(file?: string): Record<string, ReconciledEntry> {
    const fromFile: Record<string, PolicyConfigEntry> = file ? parsePolicyConfig(fs.readFileSync(file, "utf8"), file) : {};
    const unknown = Object.keys(fromFile).filter((name) => name !== "all" && !ALL_POLICIES.some((p) => p.name === name));
    // The CLI passes unknown names on without a word; a typo is worth one.
    for (const name of unknown) console.error(`warning: ${file ?? ""}: no policy named '${name}' in the pack`);
    const policies = ALL_POLICIES.map((p) => ({ name: p.name, enforcementLevel: p.enforcementLevel ?? "advisory", configSchema: p.configSchema }));
    return reconcilePolicyConfig(policies, policyConfigEntries(INITIAL_CONFIG, "the pack's initial config"), fromFile);
}

/** A policy as the pack runs it once configured: at its configured level, its getConfig() returning its configured properties. */
function configured(p: ResourceValidationPolicy | StackValidationPolicy, entry: ReconciledEntry | undefined): ResourceValidationPolicy | StackValidationPolicy {
    if (!entry) return p;
    const getConfig = <T extends object>() => entry.properties as T;
    if ("validateStack" in p) {
        const validateStack = p.validateStack;
        const policy: StackValidationPolicy = { ...p, enforcementLevel: entry.enforcementLevel, validateStack: (args, report) => validateStack({ ...args, getConfig }, report) };
        return policy;
    }
    const withConfig = (v: ResourceValidation): ResourceValidation => (args, report) => v({ ...args, getConfig }, report);
    const validate = p.validateResource;
    return { ...p, enforcementLevel: entry.enforcementLevel, validateResource: Array.isArray(validate) ? validate.map(withConfig) : validate && withConfig(validate as ResourceValidation) };
}

/** The two calls the engine makes of an analyzer during a preview: one per resource, then one for the stack. */
export interface Analyzer {
    analyze(request: analyzerproto.AnalyzeRequest): Promise<analyzerproto.AnalyzeResponse>;
    analyzeStack(request: analyzerproto.AnalyzeStackRequest): Promise<analyzerproto.AnalyzeResponse>;
}

/** Every violation `analyzer` reports for `resources`: each resource, then the stack as a whole. */
export async function analyzeWith(analyzer: Analyzer, resources: readonly RenderedResource[]): Promise<Violation[]> {
    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    const properties = resources.map((r) => {
        // JSON round trip: the engine's properties are plain data (secrets are "[secret]" in a render).
        const struct = Struct.fromJavaScript(JSON.parse(JSON.stringify(r.inputs ?? {})) as Record<string, never>);
        // server.js converts a resource's Struct back once per policy, in both calls; deserialize.js
        // only reads the result (it copies into new objects). Convert once: the same data, one conversion instead of one per policy.
        const plain = struct.toJavaScript();
        struct.toJavaScript = () => plain;
        return struct;
    });
    const out: Violation[] = [];
    for (const [i, r] of resources.entries()) out.push(...diagnosticsOf(await analyzer.analyze(describe(new analyzerproto.AnalyzeRequest(), r, properties[i])), r, byUrn));
    const stack = new analyzerproto.AnalyzeStackRequest();
    stack.setResourcesList(resources.map((r, i) => {
        const resource = describe(new analyzerproto.AnalyzerResource(), r, properties[i]);
        resource.setDependenciesList([...(r.dependencies ?? [])]);
        return resource;
    }));
    out.push(...diagnosticsOf(await analyzer.analyzeStack(stack), undefined, byUrn));
    return out;
}

/** Every violation of the pack's policies in `resources` under `config`, through the pack's own analyze functions in this process. */
export async function checkResources(resources: readonly RenderedResource[], config: Record<string, ReconciledEntry> = policyConfig()): Promise<Violation[]> {
    const policies = ALL_POLICIES.map((p) => configured(p, config[p.name]));
    const analyze = makeAnalyzeRpcFun(PACK_NAME, PACK_VERSION, "advisory", policies);
    const analyzeStack = makeAnalyzeStackRpcFun(PACK_NAME, PACK_VERSION, "advisory", policies);
    return analyzeWith({
        analyze: (request) => new Promise((resolve, reject) => {
            void analyze({ request }, (err, resp) => (err || !resp ? reject(err) : resolve(resp)));
        }),
        analyzeStack: (request) => new Promise((resolve, reject) => {
            void analyzeStack({ request }, (err, resp) => (err || !resp ? reject(err) : resolve(resp)));
        }),
    }, resources);
}

/** CLI-style report, grouped by policy. */
export function describeViolations(violations: readonly Violation[]): string {
    if (violations.length === 0) return `Policies: ${PACK_NAME}@v${PACK_VERSION}, ${ALL_POLICIES.length} policies, no violations.`;
    const lines: string[] = [];
    for (const policy of [...new Set(violations.map((v) => v.policy))]) {
        const group = violations.filter((v) => v.policy === policy);
        lines.push(`${group[0].level}: [${policy}] (${group.length})`);
        for (const v of group) lines.push(`    ${v.name} (${v.type}): ${v.message}`);
        lines.push(`    fix: ${group[0].fix}`);
    }
    const mandatory = violations.filter((v) => v.level === "mandatory").length;
    lines.push(`Policies: ${PACK_NAME}@v${PACK_VERSION}: ${mandatory} mandatory, ${violations.length - mandatory} advisory violation(s).`);
    return lines.join("\n");
}

const USAGE = "usage: npm run policy -- --stack <name> | --resources <resources.json> [--config <policy-config.json>]";

async function main(): Promise<void> {
    const [flag, value, ...rest] = process.argv.slice(2);
    if (!value || (flag !== "--stack" && flag !== "--resources")) throw new Error(USAGE);
    if (rest.length > 0 && (rest[0] !== "--config" || rest.length !== 2)) throw new Error(USAGE);
    const configFile = rest[1] ?? (flag === "--stack" ? stackPolicyConfigFile(value) : undefined);
    let config: Record<string, ReconciledEntry>;
    try {
        config = policyConfig(configFile);
    } catch (err) {
        if (err instanceof PolicyConfigError) {
            console.error(err.message);
            process.exit(1);
        }
        throw err;
    }
    let resources: RenderedResource[];
    if (flag === "--resources") {
        resources = JSON.parse(fs.readFileSync(value, "utf8")) as RenderedResource[];
    } else {
        try {
            resources = (await renderStack(value)).resources;
        } catch (err) {
            if (isConfigError(err)) {
                console.error(err.message);
                process.exit(1);
            }
            throw err;
        }
    }
    if (configFile) console.log(`Policy config: ${path.relative(process.cwd(), configFile)}`);
    const violations = await checkResources(resources, config);
    console.log(describeViolations(violations));
    if (flag === "--stack") {
        const out = path.join(__dirname, "..", "out", value);
        fs.mkdirSync(out, { recursive: true });
        fs.writeFileSync(path.join(out, "policy.json"), `${JSON.stringify(violations, null, 2)}\n`);
    }
    if (violations.some((v) => v.level === "mandatory")) process.exitCode = 1;
}

/** Runs the command line (tsx, or the bundle tools/cli.cjs builds). */
export function cli(): void {
    main().catch((err: unknown) => {
        console.error(err instanceof Error ? err.message : err);
        process.exit(1);
    });
}

if (require.main === module) cli();
