// Existing-cluster mode: no Hetzner, no k3s; deploy onto a cluster that is
// already there (k3d or kind on a laptop, or a bigger managed cluster).
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export interface ExistingClusterArgs {
    /** Kubeconfig text (secret). Absent: the ambient kubeconfig (KUBECONFIG or ~/.kube/config). */
    readonly kubeconfig?: pulumi.Input<string>;
    /** Context to use from the kubeconfig; absent: its current context. */
    readonly context?: string;
}

export class ExistingCluster extends pulumi.ComponentResource {
    readonly provider: k8s.Provider;

    constructor(name: string, args: ExistingClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:cluster:ExistingCluster", name, {}, opts);
        this.provider = new k8s.Provider(`${name}-k8s`, {
            kubeconfig: args.kubeconfig === undefined ? undefined : pulumi.secret(args.kubeconfig),
            context: args.context,
        }, { parent: this });
        this.registerOutputs({ context: args.context });
    }
}
