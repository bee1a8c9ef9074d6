// Waits, in the cluster, until CustomResourceDefinitions that someone else
// installs exist and are Established, so objects of those kinds can be created.
//
// Why a Job: the CRDs we need come from k3s's traefik-crd HelmChart or from a
// controller that registers its own (system-upgrade-controller), not from
// this program, so Pulumi cannot await them; and pulumi-kubernetes retries an
// unknown kind for only about a minute (v4.32.0 provider/pkg/await/await.go
// `Creation`: 5 retries, backoff 1..32 s), while a fresh cluster may take
// longer. Pulumi does await a Job's completion, so objects that depend on
// this component are created only after the wait succeeded.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { JOB_TIMEOUTS, REPLACE_UNREADY_ANNOTATION, RESTRICTED_CONTAINER } from "../apps/app-render";

export interface CrdsEstablishedArgs {
    /** CRD names, such as `middlewares.traefik.io`. */
    readonly crds: readonly string[];
    /** An image whose entrypoint is kubectl >= 1.31 (`wait --for=create`). */
    readonly kubectlImage: string;
    readonly provider: k8s.Provider;
}

const NAMESPACE = "kube-system";
/** Minutes to wait for the CRDs to appear: a first boot installs charts from the internet. */
export const CRD_CREATE_WAIT_MINUTES = 15;

const labels = { "app.kubernetes.io/name": "crd-wait", "app.kubernetes.io/part-of": "platform", "app.kubernetes.io/managed-by": "pulumi" };

/**
 * The Job: kubectl waits for each CRD to be created (init container), then
 * for Established. The image is distroless (no shell), hence two containers.
 * It has no tolerations: it runs only once the cloud controller has
 * initialised a node, so its completion also means the cluster schedules pods.
 */
export function crdWaitJob(name: string, serviceAccount: string, args: Pick<CrdsEstablishedArgs, "crds" | "kubectlImage">): k8s.types.input.batch.v1.Job {
    const targets = args.crds.map((crd) => `customresourcedefinition/${crd}`);
    const kubectl = (containerName: string, waitArgs: string[]) => ({
        name: containerName,
        image: args.kubectlImage,
        args: ["wait", ...waitArgs, ...targets],
        resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "64Mi" } },
        securityContext: RESTRICTED_CONTAINER,
    });
    return {
        metadata: { name, namespace: NAMESPACE, labels, annotations: { [REPLACE_UNREADY_ANNOTATION]: "true" } },
        spec: {
            backoffLimit: 2,
            // Longer than kubectl waits for creation, shorter than Pulumi waits for the Job (JOB_TIMEOUTS).
            activeDeadlineSeconds: (CRD_CREATE_WAIT_MINUTES + 3) * 60,
            template: {
                metadata: { labels },
                spec: {
                    serviceAccountName: serviceAccount,
                    restartPolicy: "Never",
                    // The distroless image has no user of its own: run as its conventional non-root uid.
                    securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
                    initContainers: [kubectl("created", ["--for=create", `--timeout=${CRD_CREATE_WAIT_MINUTES}m`])],
                    containers: [kubectl("established", ["--for=condition=Established", "--timeout=2m"])],
                },
            },
        },
    };
}

export class CrdsEstablished extends pulumi.ComponentResource {
    constructor(name: string, args: CrdsEstablishedArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:cluster:CrdsEstablished", name, {}, opts);
        const child = { parent: this, provider: args.provider };
        const objectName = `crd-wait-${name}`.slice(0, 63);

        const account = new k8s.core.v1.ServiceAccount(`${name}-sa`, {
            metadata: { name: objectName, namespace: NAMESPACE, labels },
        }, child);
        // Reading CRD definitions reveals nothing secret; kubectl wait lists and watches by name.
        const role = new k8s.rbac.v1.ClusterRole(`${name}-role`, {
            metadata: { name: `platform:${objectName}`, labels },
            rules: [{ apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: ["get", "list", "watch"] }],
        }, child);
        const binding = new k8s.rbac.v1.ClusterRoleBinding(`${name}-binding`, {
            metadata: { name: `platform:${objectName}`, labels },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: `platform:${objectName}` },
            subjects: [{ kind: "ServiceAccount", name: objectName, namespace: NAMESPACE }],
        }, { ...child, dependsOn: [role] });
        new k8s.batch.v1.Job(`${name}-wait`, crdWaitJob(objectName, objectName, args), {
            ...child,
            dependsOn: [account, binding],
            customTimeouts: JOB_TIMEOUTS,
        });
        this.registerOutputs({ crds: args.crds });
    }
}
