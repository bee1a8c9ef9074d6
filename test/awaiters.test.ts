// What pulumi-kubernetes waits for, and in which order objects reach the API
// server, checked on the renders of the committed stacks against the
// provider's rules (pulumi-kubernetes v4.32.0, provider/pkg/await):
// - an Ingress is awaited until .status.loadBalancer.ingress is set
//   (ingress.go), unless annotated pulumi.com/skipAwait;
// - a custom resource whose CRD does not exist is retried for about a minute
//   (await.go `Creation`), so anything of a CRD another system installs must
//   depend on the in-cluster wait for that CRD;
// - Deployments and Jobs are awaited for 10 minutes unless customTimeouts say
//   otherwise (deployment.go, job.go), which must cover what the probes allow.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import { CRD_CREATE_WAIT_MINUTES } from "../components/cluster/crds-established";
import { PLAN_CRD } from "../components/cluster/upgrade-controller";
import { TRAEFIK_MIDDLEWARE_CRD } from "../components/ingress/ingress";
import type { RecordedResource } from "../tools/mock-runtime";
import type { Render } from "../tools/render";
import { ofType, plain, render, transitiveDependencies } from "./support/stack";

/** The CRDs this program does not create, and who installs them in a hetzner-mode cluster. */
const FOREIGN_CRDS: Record<string, string> = {
    "traefik.io/v1alpha1 Middleware": TRAEFIK_MIDDLEWARE_CRD, // k3s's traefik-crd HelmChart
    "upgrade.cattle.io/v1 Plan": PLAN_CRD, // the system-upgrade-controller, at start
};

const DEFAULT_AWAIT_MINUTES = 10;

function minutes(duration: string | undefined): number {
    if (duration === undefined) return DEFAULT_AWAIT_MINUTES;
    const m = /^(\d+)m$/.exec(duration);
    assert.ok(m, `unexpected duration ${duration}`);
    return Number(m[1]);
}

function metadata(r: RecordedResource): { name: string; namespace?: string; annotations?: Record<string, string> } {
    return plain(r.inputs.metadata) as { name: string; namespace?: string; annotations?: Record<string, string> };
}

/** The CRDs each in-cluster wait Job waits for (its kubectl arguments). */
function crdWaitJobs(r: Render): Map<string, string[]> {
    const jobs = new Map<string, string[]>();
    for (const job of ofType(r, "kubernetes:batch/v1:Job")) {
        const spec = plain(job.inputs.spec) as { template: { spec: { initContainers?: { args: string[] }[]; containers: { args?: string[] }[] } } };
        const created = spec.template.spec.initContainers?.find((c) => c.args.includes("--for=create"));
        const established = spec.template.spec.containers.find((c) => c.args?.includes("--for=condition=Established"));
        if (!created || !established) continue;
        const names = (args: string[]) => args.filter((a) => a.startsWith("customresourcedefinition/")).map((a) => a.split("/")[1]);
        // Both steps must name the same CRDs, or one of them is waited for only half-way.
        assert.deepEqual(names(created.args), names(established.args ?? []), job.name);
        jobs.set(job.urn, names(created.args));
    }
    return jobs;
}

const STACKS: [string, Record<string, string>][] = [
    ["prod", {}],
    ["prod", { "platform:loadBalancer": "false" }],
    ["prod", { "platform:tls": "off" }],
    ["dev", {}],
    ["local", {}],
];

describe("awaiters and ordering", () => {
    const renders: [string, Render][] = [];
    before(async () => {
        for (const [stack, overrides] of STACKS) renders.push([`${stack} ${JSON.stringify(overrides)}`, await render(stack, overrides)]);
    });

    it("every Ingress either has a controller that writes its status, or skips the await deliberately", () => {
        for (const [label, r] of renders) {
            const traefik = ofType(r, "kubernetes:helm.cattle.io/v1:HelmChartConfig").find((c) => metadata(c).name === "traefik");
            const values = traefik ? parse((plain(traefik.inputs.spec) as { valuesContent: string }).valuesContent) as {
                providers?: { kubernetesIngress?: { publishedService?: { enabled?: boolean } } }; additionalArguments?: string[];
            } : undefined;
            // Traefik writes status from an explicit address when it does not copy its (ClusterIP, address-less) Service's.
            const publishesAddress = values !== undefined
                && values.providers?.kubernetesIngress?.publishedService?.enabled === false
                && (values.additionalArguments ?? []).some((a) => /^--providers\.kubernetesingress\.ingressendpoint\.(ip|hostname)=\S+$/.test(a));
            for (const ing of ofType(r, "kubernetes:networking.k8s.io/v1:Ingress")) {
                const skipped = metadata(ing).annotations?.["pulumi.com/skipAwait"] === "true";
                assert.ok(skipped || publishesAddress, `${label}: ${ing.name} would wait ${DEFAULT_AWAIT_MINUTES} minutes for a status nobody writes`);
            }
        }
    });

    it("with a load balancer, Traefik publishes its address, so Pulumi waits until Traefik has picked the Ingress up", () => {
        const [, prod] = renders[0];
        const ing = ofType(prod, "kubernetes:networking.k8s.io/v1:Ingress")[0];
        assert.equal(metadata(ing).annotations?.["pulumi.com/skipAwait"], undefined);
    });

    it("every object of a CRD that another system installs waits for that CRD to be Established", () => {
        for (const [label, r] of renders) {
            const waits = crdWaitJobs(r);
            for (const res of r.run.resources) {
                if (!res.custom || !res.type.startsWith("kubernetes:")) continue;
                const kind = `${String(res.inputs.apiVersion)} ${String(res.inputs.kind)}`;
                const crd = FOREIGN_CRDS[kind];
                if (!crd) continue;
                const deps = transitiveDependencies(r, res);
                const waited = [...waits].some(([urn, crds]) => deps.has(urn) && crds.includes(crd));
                assert.ok(waited, `${label}: ${res.name} (${kind}) is created without waiting for ${crd}`);
            }
        }
    });

    it("the CRD waits run kubectl of the cluster's own version, new enough for `wait --for=create` (1.31)", () => {
        const [, prod] = renders[0];
        const waitJobs = ofType(prod, "kubernetes:batch/v1:Job").filter((j) => crdWaitJobs(prod).has(j.urn));
        assert.equal(waitJobs.length, 2, "Traefik's CRDs and the Plan CRD");
        for (const job of waitJobs) {
            const spec = plain(job.inputs.spec) as { activeDeadlineSeconds: number; template: { spec: { containers: { image: string; args: string[] }[] } } };
            const [c] = spec.template.spec.containers;
            const m = /^registry\.k8s\.io\/kubectl:v1\.(\d+)\.\d+$/.exec(c.image);
            assert.ok(m && Number(m[1]) >= 31, c.image);
            assert.equal(c.image, "registry.k8s.io/kubectl:v1.34.6", "the version of the prod stack's k3sVersion v1.34.6+k3s1");
            // Pulumi waits for the Job longer than the Job may run, and the Job longer than kubectl waits for creation.
            assert.ok(minutes(job.customTimeouts?.create) * 60 > spec.activeDeadlineSeconds);
            assert.ok(spec.activeDeadlineSeconds > CRD_CREATE_WAIT_MINUTES * 60);
        }
    });

    it("Pulumi waits for every Job longer than the Job may run, so a Job's own failure is what fails the up", () => {
        for (const [label, r] of renders) {
            for (const job of ofType(r, "kubernetes:batch/v1:Job")) {
                const deadline = (plain(job.inputs.spec) as { activeDeadlineSeconds?: number }).activeDeadlineSeconds;
                assert.ok(deadline !== undefined, `${label}: ${job.name} runs without a deadline`);
                assert.ok(minutes(job.customTimeouts?.create) * 60 > deadline, `${label}: ${job.name}: Pulumi waits ${minutes(job.customTimeouts?.create)} min, the Job may run ${deadline} s`);
            }
        }
    });

    it("cert-manager is installed only once the cluster schedules pods, and Helm waits longer than its 300 s default", () => {
        const [, prod] = renders[0];
        const release = ofType(prod, "kubernetes:helm.sh/v3:Release")[0];
        assert.ok(Number(release.inputs.timeout) > 300);
        const deps = transitiveDependencies(prod, release);
        assert.ok([...crdWaitJobs(prod).keys()].some((urn) => deps.has(urn)), "cert-manager would start before any node is initialised");
    });

    it("Pulumi waits for a rollout at least as long as the probes allow: one startup budget per replaced pod", () => {
        for (const [label, r] of renders) {
            for (const d of ofType(r, "kubernetes:apps/v1:Deployment")) {
                const spec = plain(d.inputs.spec) as {
                    replicas?: number; progressDeadlineSeconds?: number;
                    template: { spec: { containers: { startupProbe?: { periodSeconds: number; failureThreshold: number } }[] } };
                };
                const probe = spec.template.spec.containers[0].startupProbe;
                if (!probe) continue;
                const startupBudget = probe.periodSeconds * probe.failureThreshold;
                // Kubernetes fails the rollout when no pod became available within progressDeadlineSeconds (default 600).
                assert.ok((spec.progressDeadlineSeconds ?? 600) > startupBudget, `${label}: ${d.name} progress deadline`);
                const pods = spec.replicas ?? 1;
                for (const op of ["create", "update"] as const) {
                    assert.ok(minutes(d.customTimeouts?.[op]) * 60 > pods * startupBudget,
                        `${label}: ${d.name} ${op}: Pulumi gives up after ${minutes(d.customTimeouts?.[op])} min; ${pods} pods x ${startupBudget} s of startup budget`);
                }
            }
        }
    });

    it("a 3-replica app with a long startup budget gets a timeout above Pulumi's 10-minute default", async () => {
        const r = await render("prod", { "platform:apps": JSON.stringify({ api: { image: "ghcr.io/acme/api:1.0.0", replicas: 3, startupTimeout: 600 } }) });
        const d = ofType(r, "kubernetes:apps/v1:Deployment").find((x) => x.name === "api-deployment");
        assert.ok(d);
        assert.ok(minutes(d.customTimeouts?.update) >= 30, `got ${d.customTimeouts?.update}`);
    });
});
