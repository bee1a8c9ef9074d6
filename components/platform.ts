// Composes the platform from validated config. index.ts calls this; tests and
// the offline render run the same code under Pulumi's mock runtime.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { App } from "./apps/app";
import { ClusterAddons, RETAIN_STORAGE_CLASS } from "./cluster/cluster-addons";
import { DEFAULTS, type PlatformConfig } from "./config";
import { AppDatabase, Database } from "./database/database";
import { ExistingCluster } from "./cluster/existing-cluster";
import { PlatformIngress } from "./ingress/ingress";
import { K3sCluster } from "./cluster/k3s-cluster";
import { PROJECT_DIR } from "./project";
import { kubectlImage } from "./versions";

export interface Platform {
    readonly mode: PlatformConfig["mode"];
    /** The provider every in-cluster resource must be created with. */
    readonly k8sProvider: k8s.Provider;
    /** StorageClass for data that must outlive its claim; undefined means the cluster's default. */
    readonly retainStorageClass?: string;
    /** Admin kubeconfig (secret); only when this program created the cluster. */
    readonly kubeconfig?: pulumi.Output<string>;
    readonly cluster?: K3sCluster;
    /** The cloud controller, CSI driver and StorageClass (`ready`: what in-cluster workloads wait for). */
    readonly addons?: ClusterAddons;
    readonly apps: App[];
}

export function createPlatform(config: PlatformConfig): Platform {
    const base = createCluster(config);
    const ingress = new PlatformIngress(`${config.cluster.name}-ingress`, {
        settings: config.ingress,
        bundledTraefik: config.mode === "hetzner" && base.cluster ? {
            proxyProtocolFrom: base.cluster.loadBalancerPrivateIp ? [`${base.cluster.loadBalancerPrivateIp}/32`] : undefined,
            publishedIp: base.cluster.network.loadBalancerIpv4,
            kubectlImage: kubectlImage(config.cluster.k3sVersion),
        } : undefined,
        // The database's backup plugin (point-in-time recovery) needs cert-manager for its TLS.
        certManagerForOthers: config.database?.mode === "cluster" && config.database.backup.s3 !== undefined,
        provider: base.k8sProvider,
    }, { dependsOn: base.addons?.ready ?? [] });
    const databases = createDatabase(config, base, ingress);
    const apps = config.apps.map((app) => new App(app.name, {
        app,
        stack: config.stack,
        projectDir: PROJECT_DIR,
        registry: config.registry,
        ingress: ingress.options,
        controller: ingress.controller,
        provider: base.k8sProvider,
        ingressDependsOn: ingress.ready,
        database: app.database ? databases[app.name] : undefined,
        volumeStorageClass: base.retainStorageClass,
        volumeDependsOn: base.addons?.ready,
        backupBucket: config.backupBucket,
    }));
    return { ...base, apps };
}

/** Each database app's URLs: from the in-cluster tier, or the external database's URL for all. */
function createDatabase(config: PlatformConfig, base: Omit<Platform, "apps">, ingress: PlatformIngress): Record<string, AppDatabase> {
    const db = config.database;
    if (!db) return {};
    const users = config.apps.filter((a) => a.database);
    if (db.mode === "external") {
        const url = pulumi.secret(pulumi.output(db.url));
        return Object.fromEntries(users.map((a) => [a.name, { url, directUrl: url, ready: [] }]));
    }
    const storageClass = base.retainStorageClass ?? db.storageClass;
    if (storageClass === undefined) {
        pulumi.log.warn("platform:postgresStorageClass is not set: the database volumes use the cluster's default StorageClass, which usually "
            + "deletes a volume with its claim. Name a class with reclaimPolicy Retain: pulumi config set platform:postgresStorageClass <class>");
    }
    const database = new Database(`${config.cluster.name}-database`, {
        settings: db,
        apps: users.map((a) => ({ name: a.name, passwordVersion: a.databasePasswordVersion })),
        storageClass,
        provider: base.k8sProvider,
        clusterReady: ingress.clusterReady,
        certManager: ingress.certManager,
        // An existing cluster's version is unknown here: the default k3s version's kubectl
        // (within kubectl's one-minor skew of most clusters in support).
        kubectlImage: kubectlImage(config.mode === "hetzner" ? config.cluster.k3sVersion : DEFAULTS.k3sVersion),
    }, { dependsOn: base.addons?.ready ?? [] });
    return database.connections;
}

function createCluster(config: PlatformConfig): Omit<Platform, "apps"> {
    if (config.mode === "existing") {
        const existing = new ExistingCluster(config.cluster.name, {
            kubeconfig: config.cluster.kubeconfig,
            context: config.cluster.context,
        });
        return { mode: "existing", k8sProvider: existing.provider };
    }
    const s = config.cluster;
    const cluster = new K3sCluster(s.name, { settings: s, stack: config.stack });
    const addons = new ClusterAddons(`${s.name}-addons`, {
        hcloudToken: s.hcloudToken,
        networkId: cluster.network.networkId,
        location: s.location,
        k3sVersion: s.k3sVersion,
        // As on the Hetzner resources Pulumi creates, but managed by the CSI driver.
        volumeLabels: { cluster: s.name, stack: config.stack, "managed-by": "hcloud-csi" },
        provider: cluster.provider,
    }, { parent: cluster });
    return {
        mode: "hetzner",
        k8sProvider: cluster.provider,
        retainStorageClass: RETAIN_STORAGE_CLASS,
        kubeconfig: cluster.kubeconfig,
        cluster,
        addons,
    };
}

/** Stack outputs: only what this mode has (Pulumi warns about undefined outputs). */
export function stackOutputs(platform: Platform): Record<string, unknown> {
    const cluster = platform.cluster;
    const outputs: Record<string, unknown> = { mode: platform.mode };
    if (cluster) {
        outputs.apiEndpoint = cluster.apiEndpoint;
        outputs.kubeconfig = cluster.kubeconfig;
        outputs.servers = cluster.nodes.map((n) => ({ name: n.name, role: n.role, privateIp: n.privateIp, publicIpv4: n.publicIpv4 }));
        outputs.sshPrivateKey = cluster.sshPrivateKey;
        if (cluster.network.loadBalancerIpv4) outputs.loadBalancerIpv4 = cluster.network.loadBalancerIpv4;
    }
    // What `1ctl -o json deploy get` showed: `pulumi stack output --json apps`.
    outputs.apps = Object.fromEntries(platform.apps.map((a) => [a.name, { url: a.url, namespace: a.namespace, image: a.image }]));
    return outputs;
}
