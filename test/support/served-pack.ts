// The policy pack as the Pulumi CLI runs it: policies/index.ts in a process of
// its own, with the pack directory as its working directory (PolicyPack reads
// ./package.json for the version, then serves the Analyzer gRPC service and
// prints its port), called over gRPC with the engine's requests.
import { type ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { AnalyzerClient } from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import * as analyzerproto from "@pulumi/pulumi/proto/analyzer_pb";
import type { ReconciledEntry } from "../../tools/policy-config";
import type { Analyzer } from "../../tools/policy";
import { PROJECT_DIR } from "./stack";

const LEVELS = {
    advisory: analyzerproto.EnforcementLevel.ADVISORY,
    mandatory: analyzerproto.EnforcementLevel.MANDATORY,
    disabled: analyzerproto.EnforcementLevel.DISABLED,
    remediate: analyzerproto.EnforcementLevel.REMEDIATE,
} as const;

type Call<Req, Resp> = (request: Req, callback: (error: grpc.ServiceError | null, response: Resp) => void) => unknown;

export class ServedPolicyPack implements Analyzer {
    private constructor(private readonly child: ChildProcess, private readonly client: AnalyzerClient) {}

    /** Starts the pack the way the CLI's nodejs policy host does (here with tsx instead of ts-node) and connects. */
    static async start(): Promise<ServedPolicyPack> {
        const child = spawn(process.execPath, ["--import", "tsx", "index.ts"], { cwd: path.join(PROJECT_DIR, "policies"), stdio: ["ignore", "pipe", "pipe"] });
        let stderr = "";
        child.stderr?.on("data", (d: Buffer) => { stderr += d.toString(); });
        const port = await new Promise<number>((resolve, reject) => {
            let stdout = "";
            child.stdout?.on("data", (d: Buffer) => {
                stdout += d.toString();
                const line = /^(\d+)\s*$/m.exec(stdout);
                if (line) resolve(Number(line[1]));
            });
            child.on("exit", (code) => reject(new Error(`the policy pack exited (${code}) before serving: ${stderr}`)));
        });
        return new ServedPolicyPack(child, new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()));
    }

    private call<Req, Resp>(method: Call<Req, Resp>, request: Req): Promise<Resp> {
        return new Promise((resolve, reject) => {
            method.call(this.client, request, (err, resp) => (err ? reject(err) : resolve(resp)));
        });
    }

    info(): Promise<analyzerproto.AnalyzerInfo> {
        return this.call(this.client.getAnalyzerInfo, new Empty());
    }

    /** The Configure call the CLI makes with the reconciled config. */
    async configure(config: Readonly<Record<string, ReconciledEntry>>): Promise<void> {
        const request = new analyzerproto.ConfigureAnalyzerRequest();
        for (const [name, entry] of Object.entries(config)) {
            const c = new analyzerproto.PolicyConfig();
            c.setEnforcementlevel(LEVELS[entry.enforcementLevel]);
            c.setProperties(Struct.fromJavaScript(entry.properties as Record<string, never>));
            request.getPolicyconfigMap().set(name, c);
        }
        await this.call(this.client.configure, request);
    }

    analyze(request: analyzerproto.AnalyzeRequest): Promise<analyzerproto.AnalyzeResponse> {
        return this.call(this.client.analyze, request);
    }

    analyzeStack(request: analyzerproto.AnalyzeStackRequest): Promise<analyzerproto.AnalyzeResponse> {
        return this.call(this.client.analyzeStack, request);
    }

    stop(): void {
        this.client.close();
        this.child.kill();
    }
}
