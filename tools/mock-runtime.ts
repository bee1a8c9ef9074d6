// Runs a Pulumi program under the SDK's mock runtime and records every resource
// it registers: type, name, parent, inputs (secrets kept marked) and the
// options a reviewer cares about (protect, ignoreChanges). Provider outputs are
// deterministic fakes, so two runs of the same config give the same result.
// Used by the offline render and by the unit tests.
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
// The mock monitor does not pass a resource's parent or options to `Mocks`;
// a subclass sees the raw request. Internal module, pinned by package-lock.
import { type MockCallArgs, MockMonitor, type MockResourceArgs, type MockResourceResult, type Mocks } from "@pulumi/pulumi/runtime/mocks";
import { setMockOptions } from "@pulumi/pulumi/runtime/settings";

export interface RecordedResource {
    readonly urn: string;
    readonly type: string;
    readonly name: string;
    readonly parentUrn?: string;
    readonly custom: boolean;
    /** Provider reference ("<urn>::<id>") the resource was registered with, if explicit. */
    readonly provider?: string;
    /** Inputs as the engine received them; secret values stay wrapped (see isSecretValue). */
    readonly inputs: Record<string, unknown>;
    readonly protect: boolean;
    readonly retainOnDelete: boolean;
    /** URNs this resource waits for (dependsOn and input dependencies). */
    readonly dependencies: readonly string[];
    readonly ignoreChanges: readonly string[];
    readonly additionalSecretOutputs: readonly string[];
    /** Replaced by deleting the old one first (it holds names or addresses the new one needs). */
    readonly deleteBeforeReplace: boolean;
    /** How long the engine lets the provider wait ("20m"); absent: the provider's default. */
    readonly customTimeouts?: { readonly create?: string; readonly update?: string; readonly delete?: string };
}

export interface ProgramRun {
    readonly resources: RecordedResource[];
    /** Stack outputs (secret ones wrapped). */
    readonly outputs: Record<string, unknown>;
    /** Every secret value the fakes produced or config held; nothing written may contain one. */
    readonly secretValues: ReadonlySet<string>;
}

export interface ProgramRunOptions {
    readonly project: string;
    readonly stack: string;
    /** Full keys ("platform:location") to values as Pulumi passes them (strings; JSON for objects). */
    readonly config: Readonly<Record<string, string>>;
    readonly secretKeys: readonly string[];
    /** The program; its resolved return value becomes the stack outputs. */
    readonly program: () => unknown;
    /** What the cloud already holds (an earlier `pulumi up`); absent: an empty project. */
    readonly live?: LiveCloud;
}

/** Servers and networks a data source (hcloud getServers, getNetworks) finds, as the provider returns them. */
export interface LiveCloud {
    readonly servers?: readonly Record<string, unknown>[];
    readonly networks?: readonly Record<string, unknown>[];
    /** The stack's outputs after its last `up`, as a StackReference to itself reads them. */
    readonly stackOutputs?: Readonly<Record<string, unknown>>;
}

/** The wrapper Pulumi's RPC layer puts around a secret value. */
export function isSecretValue(v: unknown): v is { value: unknown } {
    return typeof v === "object" && v !== null
        && (v as Record<string, unknown>)[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig;
}

/** Minimal view of the protobuf RegisterResourceRequest the monitor receives. */
interface RegisterRequest {
    getType(): string;
    getName(): string;
    getParent(): string;
    getCustom(): boolean;
    getProvider(): string;
    getProtect(): boolean;
    getRetainondelete(): boolean;
    getDependenciesList(): string[];
    getIgnorechangesList(): string[];
    getAdditionalsecretoutputsList(): string[];
    getDeletebeforereplace(): boolean;
    getCustomtimeouts(): { getCreate(): string; getUpdate(): string; getDelete(): string } | undefined;
    getObject(): Parameters<typeof pulumi.runtime.deserializeProperties>[0];
}
interface RegisterResponse { getUrn(): string; toString(): string }
type Callback = (err: unknown, response: RegisterResponse | undefined) => void;

function customTimeouts(t: ReturnType<RegisterRequest["getCustomtimeouts"]>): RecordedResource["customTimeouts"] {
    if (!t) return undefined;
    const set = Object.entries({ create: t.getCreate(), update: t.getUpdate(), delete: t.getDelete() }).filter(([, v]) => v !== "");
    return set.length > 0 ? Object.fromEntries(set) : undefined;
}

class RecordingMonitor extends MockMonitor {
    /** In registration order; the URN is filled in when the mock answers. */
    readonly recorded: { resource: Omit<RecordedResource, "urn">; urn?: string }[] = [];

    override registerResource(req: RegisterRequest, callback: Callback): Promise<void> {
        const entry: { resource: Omit<RecordedResource, "urn">; urn?: string } = {
            resource: {
                type: req.getType(),
                name: req.getName(),
                custom: req.getCustom(),
                provider: req.getProvider() || undefined,
                inputs: pulumi.runtime.deserializeProperties(req.getObject()) as Record<string, unknown>,
                parentUrn: req.getParent() || undefined,
                protect: req.getProtect(),
                retainOnDelete: req.getRetainondelete(),
                dependencies: req.getDependenciesList(),
                ignoreChanges: req.getIgnorechangesList(),
                additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                deleteBeforeReplace: req.getDeletebeforereplace(),
                customTimeouts: customTimeouts(req.getCustomtimeouts()),
            },
        };
        this.recorded.push(entry);
        return super.registerResource(req, (err: unknown, response: RegisterResponse | undefined) => {
            if (response) {
                entry.urn = response.getUrn();
                // The SDK puts every response into a debug message (`resp: ${innerResponse}`, @pulumi/pulumi
                // 3.270.0 runtime/resource.js) whether or not debug logging is on: protobuf's toString
                // would write out the resource's whole state each time; the type says enough.
                response.toString = () => "RegisterResourceResponse";
            }
            callback(err, response);
        });
    }
}

/** Deterministic fake provider outputs, keyed by resource type. */
class FakeCloud implements Mocks {
    readonly secretValues = new Set<string>();
    live: LiveCloud = {};
    private readonly usedIds = new Set<string>();
    private readonly usedAddresses = new Set<string>();

    constructor(private readonly seed: string) {}

    private secret(label: string, length = 32): string {
        const value = createHash("sha256").update(`${this.seed}/${label}`).digest("hex").slice(0, length);
        this.secretValues.add(value);
        return value;
    }

    /**
     * Numeric ids (as Hetzner's) and addresses from the resource's name, not its
     * creation order: two renders of similar configs give a resource the same id,
     * so --compare sees only real changes.
     */
    private stableId(key: string): string {
        let n = parseInt(createHash("sha256").update(key).digest("hex").slice(0, 8), 16) % 900_000_000 + 100_000_000;
        while (this.usedIds.has(String(n))) n += 1;
        this.usedIds.add(String(n));
        return String(n);
    }

    private stableAddress(net: string, name: string): string {
        let host = parseInt(createHash("sha256").update(name).digest("hex").slice(0, 8), 16) % 254 + 1;
        while (this.usedAddresses.has(`${net}.${host}`)) host = host % 254 + 1;
        this.usedAddresses.add(`${net}.${host}`);
        return `${net}.${host}`;
    }

    newResource(args: MockResourceArgs): MockResourceResult {
        const inputs = args.inputs as Record<string, unknown>;
        const id = this.stableId(`${args.type}::${args.name}`);
        const state: Record<string, unknown> = { ...inputs };
        switch (args.type) {
            case "pulumi:pulumi:StackReference":
                state.outputs = this.live.stackOutputs ?? {};
                state.secretOutputNames = [];
                break;
            case "random:index/randomPassword:RandomPassword":
                state.result = this.secret(`password/${args.name}/${JSON.stringify(inputs.keepers ?? {})}`, Number(inputs.length ?? 32));
                break;
            case "random:index/randomBytes:RandomBytes": {
                // Keepers in the label: bumping a version yields a new value, as the provider would.
                const hex = this.secret(`bytes/${args.name}/${JSON.stringify(inputs.keepers ?? {})}`, Number(inputs.length ?? 16) * 2);
                const base64 = Buffer.from(hex, "hex").toString("base64");
                state.hex = hex;
                state.base64 = base64;
                this.secretValues.add(base64);
                break;
            }
            case "tls:index/privateKey:PrivateKey": {
                const key = this.secret(`key/${args.name}`, 64);
                state.privateKeyOpenssh = `-----BEGIN OPENSSH PRIVATE KEY-----\n${key}\n-----END OPENSSH PRIVATE KEY-----\n`;
                state.privateKeyPem = state.privateKeyOpenssh;
                state.publicKeyOpenssh = `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5${createHash("sha256").update(key).digest("base64").slice(0, 43)} offline-render\n`;
                break;
            }
            case "hcloud:index/primaryIp:PrimaryIp":
                // TEST-NET-2, never routed.
                state.ipAddress = this.stableAddress("198.51.100", args.name);
                break;
            case "hcloud:index/loadBalancer:LoadBalancer":
                state.ipv4 = this.stableAddress("192.0.2", args.name);
                break;
            case "docker-build:index:Image": {
                const digest = `sha256:${createHash("sha256").update(`${this.seed}/image/${args.name}`).digest("hex")}`;
                const tags = Array.isArray(inputs.tags) ? inputs.tags.map(String) : [];
                state.digest = digest;
                state.ref = `${tags[0] ?? args.name}@${digest}`;
                break;
            }
            case "command:remote:Command":
                // k3s-credential.sh prints the ServiceAccount token and the cluster CA; the others log to stderr only.
                state.stdout = args.name.endsWith("-credential") ? this.fakeCredential(args.name) : "";
                state.stderr = "";
                break;
            default:
                break;
        }
        return { id, state };
    }

    call(args: MockCallArgs): Record<string, unknown> {
        const selector = typeof args.inputs.withSelector === "string" ? args.inputs.withSelector : "";
        const selected = (items: readonly Record<string, unknown>[] | undefined) => (items ?? []).filter((item) => matchesSelector(item.labels, selector));
        switch (args.token) {
            case "hcloud:index/getServers:getServers": {
                const statuses = Array.isArray(args.inputs.withStatuses) ? args.inputs.withStatuses.map(String) : undefined;
                return { servers: selected(this.live.servers).filter((x) => !statuses || statuses.includes(String(x.status))) };
            }
            case "hcloud:index/getNetworks:getNetworks":
                return { networks: selected(this.live.networks) };
            default:
                return {};
        }
    }

    /** What k3s-credential.sh prints: a ServiceAccount token and the cluster CA, base64. */
    private fakeCredential(name: string): string {
        const token = Buffer.from(`offline-token.${this.secret(`sa-token/${name}`, 48)}`).toString("base64");
        this.secretValues.add(token);
        const caData = Buffer.from(`offline-render-ca/${name}`).toString("base64");
        return JSON.stringify({ token, caData });
    }
}

/** An equality-based label selector ("a=b,c=d") over a resource's labels. */
function matchesSelector(labels: unknown, selector: string): boolean {
    if (selector === "") return true;
    const have = (typeof labels === "object" && labels !== null ? labels : {}) as Record<string, unknown>;
    return selector.split(",").every((term) => {
        const [key, value] = term.split("=");
        return have[key] === value;
    });
}

/** The stack's outputs as the engine received them, secret ones still wrapped. */
function stackOutputs(monitor: MockMonitor): Record<string, unknown> {
    const stack = [...monitor.getRegisteredResources().values()].find((r) => r.urn.includes("::pulumi:pulumi:Stack::"));
    const state: unknown = stack?.state;
    if (typeof state === "object" && state !== null && "toJavaScript" in state) {
        return pulumi.runtime.deserializeProperties(state as Parameters<typeof pulumi.runtime.deserializeProperties>[0]) as Record<string, unknown>;
    }
    return {};
}

/**
 * Where Pulumi finds each resource's source position: `Resource.callsites`, a
 * private static of @pulumi/pulumi 3.270.0 resource.js that sets
 * Error.stackTraceLimit to Infinity, captures the whole stack and parses every
 * frame, once per resource, for the engine's diagnostics. The mock monitor
 * drops positions, and for a render with a hundred nodes that capture (and
 * the garbage it leaves) was a tenth of the time the extra resources cost.
 */
const sourcePositions = pulumi.Resource as unknown as { callsites: () => unknown[] };

/** Runs `run` with Pulumi's per-resource source positions off (restored after). */
async function withoutSourcePositions<T>(run: () => Promise<T>): Promise<T> {
    const callsites = sourcePositions.callsites;
    if (typeof callsites !== "function") throw new Error("@pulumi/pulumi no longer has Resource.callsites: update tools/mock-runtime.ts");
    sourcePositions.callsites = () => [];
    try {
        return await run();
    } finally {
        sourcePositions.callsites = callsites;
    }
}

/**
 * Runs `program` as stack `stack` of `project` under mocks and returns what it registered.
 * Runs are sequential: the Pulumi SDK keeps one global runtime state.
 */
export function runProgram(options: ProgramRunOptions): Promise<ProgramRun> {
    return withoutSourcePositions(() => runMocked(options));
}

async function runMocked(options: ProgramRunOptions): Promise<ProgramRun> {
    const fake = new FakeCloud(`${options.project}/${options.stack}`);
    fake.live = options.live ?? {};
    const monitor = new RecordingMonitor(fake);
    // setMocks switches on the SDK features mocks support; then swap in our recording monitor.
    // "organization": what a self-managed backend (pulumi login file://...) calls every stack's organization.
    await pulumi.runtime.setMocks(fake, options.project, options.stack, false, "organization");
    setMockOptions(monitor, options.project, options.stack, false, "organization");
    pulumi.runtime.setAllConfig({ ...options.config }, [...options.secretKeys]);
    for (const key of options.secretKeys) {
        const value = options.config[key];
        if (value) fake.secretValues.add(value);
    }

    // A program that fails (bad config, a refused edit) fails the run, not the
    // stack resource: Pulumi's stack would leave its outputs' promises rejected
    // and unobserved.
    let failure: { error: unknown } | undefined;
    await pulumi.runtime.runInPulumiStack(async () => {
        try {
            const result = await options.program();
            return (result ?? {}) as pulumi.Inputs;
        } catch (error) {
            failure = { error };
            return {};
        }
    });
    await pulumi.runtime.disconnect();
    if (failure) throw failure.error;
    const outputs = stackOutputs(monitor);

    const resources = monitor.recorded.map(({ resource, urn }): RecordedResource => {
        if (urn === undefined) throw new Error(`mock runtime did not register ${resource.type} ${resource.name}`);
        return { urn, ...resource };
    });
    return { resources, outputs, secretValues: fake.secretValues };
}
