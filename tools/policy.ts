// Offline policy runner: the real pack (policies/rules) over every resource of
// a render, the way the engine runs it: each resource becomes the analyzer's
// AnalyzeRequest (protobuf, properties serialized as the engine sends them) and
// goes through @pulumi/policy's own analyze function (server.js
// makeAnalyzeRpcFun, as `pulumi preview --policy-pack` calls it over gRPC).
//
// Usage: npm run policy -- --stack NAME        render the stack, then check it
//        npm run policy -- --resources FILE    check a file like out/NAME/resources.json
// Prints one line per violation, grouped by policy (level, policy, resource,
// the fix); writes out/NAME/policy.json (with --stack); exit 1 on a mandatory
// violation.
import * as fs from "node:fs";
import * as path from "node:path";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import * as analyzerproto from "@pulumi/pulumi/proto/analyzer_pb";
import * as policyServer from "@pulumi/policy/server";
import { isConfigError } from "../components/config";
import { ALL_POLICIES, PACK_NAME } from "../policies/rules";
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
function describe<T extends analyzerproto.AnalyzeRequest | analyzerproto.AnalyzerResource>(req: T, r: RenderedResource): T {
    req.setType(r.type);
    req.setUrn(r.urn);
    req.setName(r.name);
    // JSON round trip: the engine's properties are plain data (secrets are "[secret]" in a render).
    req.setProperties(Struct.fromJavaScript(JSON.parse(JSON.stringify(r.inputs ?? {})) as Record<string, never>));
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

/** Every violation of the pack's policies in `resources`: each resource, then the stack as a whole. */
export async function checkResources(resources: readonly RenderedResource[]): Promise<Violation[]> {
    const policies = [...ALL_POLICIES];
    const analyze = makeAnalyzeRpcFun(PACK_NAME, PACK_VERSION, "advisory", policies);
    const analyzeStack = makeAnalyzeStackRpcFun(PACK_NAME, PACK_VERSION, "advisory", policies);
    const byUrn = new Map(resources.map((r) => [r.urn, r]));
    const out: Violation[] = [];
    for (const r of resources) {
        const response = await new Promise<analyzerproto.AnalyzeResponse>((resolve, reject) => {
            void analyze({ request: describe(new analyzerproto.AnalyzeRequest(), r) }, (err, resp) => (err || !resp ? reject(err) : resolve(resp)));
        });
        out.push(...diagnosticsOf(response, r, byUrn));
    }
    const stack = new analyzerproto.AnalyzeStackRequest();
    stack.setResourcesList(resources.map((r) => {
        const resource = describe(new analyzerproto.AnalyzerResource(), r);
        resource.setDependenciesList([...(r.dependencies ?? [])]);
        return resource;
    }));
    const response = await new Promise<analyzerproto.AnalyzeResponse>((resolve, reject) => {
        void analyzeStack({ request: stack }, (err, resp) => (err || !resp ? reject(err) : resolve(resp)));
    });
    out.push(...diagnosticsOf(response, undefined, byUrn));
    return out;
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

const USAGE = "usage: npm run policy -- --stack <name> | --resources <resources.json>";

async function main(): Promise<void> {
    const [flag, value] = process.argv.slice(2);
    if (!value || (flag !== "--stack" && flag !== "--resources")) throw new Error(USAGE);
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
    const violations = await checkResources(resources);
    console.log(describeViolations(violations));
    if (flag === "--stack") {
        const out = path.join(__dirname, "..", "out", value);
        fs.mkdirSync(out, { recursive: true });
        fs.writeFileSync(path.join(out, "policy.json"), `${JSON.stringify(violations, null, 2)}\n`);
    }
    if (violations.some((v) => v.level === "mandatory")) process.exitCode = 1;
}

if (require.main === module) {
    main().catch((err: unknown) => {
        console.error(err instanceof Error ? err.message : err);
        process.exit(1);
    });
}
