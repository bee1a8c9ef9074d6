// Pure builders of an app's Kubernetes objects from its settings. The App
// component wraps them in resources; tests read them directly.
import { createHash, createHmac } from "node:crypto";
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import type { AppSettings } from "./app-config";

type Deployment = k8s.types.input.apps.v1.Deployment;
type PodSpec = k8s.types.input.core.v1.PodSpec;
type Probe = k8s.types.input.core.v1.Probe;

/** Probe cadence from seed 003: readiness every 5 s, liveness every 10 s. */
export const READINESS_PERIOD = 5;
export const LIVENESS_PERIOD = 10;
export const STARTUP_PERIOD = 5;
/** Seconds a terminating pod keeps serving before SIGTERM, while load balancers forget it. */
export const PRESTOP_SECONDS = 5;
/** Tells Pulumi to replace, rather than keep waiting on, a Job that failed in an earlier update. */
export const REPLACE_UNREADY_ANNOTATION = "pulumi.com/replaceUnready";
/** Jobs may run longer than Pulumi's default 10-minute wait (their activeDeadlineSeconds is 15 minutes). */
export const JOB_TIMEOUTS = { create: "20m", update: "20m" };
export const CHECKSUM_ANNOTATION = "platform.io/config-checksum";
export const METADATA_ADDRESS = "169.254.169.254/32";

export function appLabels(app: AppSettings, component: "server" | "worker" | "migration" | "volume-backup" | "volume-restore"): Record<string, string> {
    return {
        "app.kubernetes.io/name": app.name,
        "app.kubernetes.io/instance": app.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "platform",
        "app.kubernetes.io/managed-by": "pulumi",
    };
}

/** What selects an app's serving pods; never changes over the app's life (selectors are immutable). */
export function selectorLabels(app: AppSettings): Record<string, string> {
    return { "app.kubernetes.io/name": app.name, "app.kubernetes.io/component": app.worker ? "worker" : "server" };
}

/** The probe timeout sits above the app's own health-check budget, so the app answers 503 before the probe gives up. */
export function probeTimeout(app: AppSettings): number {
    return Math.max(5, app.healthTimeout + 2);
}

function startupFailureThreshold(app: AppSettings): number {
    return Math.ceil(app.startupTimeout / STARTUP_PERIOD);
}

/** Seconds a node may take to schedule a pod and pull its image before the probes start counting. */
export const POD_START_SECONDS = 120;

/** Seconds one new pod may take to become Ready as its probes allow: start, the startup budget, a few readiness periods. */
export function podReadySeconds(app: AppSettings): number {
    return POD_START_SECONDS + STARTUP_PERIOD * startupFailureThreshold(app) + 3 * READINESS_PERIOD;
}

/**
 * How long Pulumi waits for a rollout: pods are replaced one at a time
 * (maxSurge 1, maxUnavailable 0; a singleton is stopped first), so the probes
 * may legitimately take `podReadySeconds` per pod. Pulumi's default (10
 * minutes) would fail a 3-replica rollout with a 240 s startup budget that
 * Kubernetes would finish.
 */
export function rolloutTimeouts(app: AppSettings): { create: string; update: string } {
    const pods = app.autoscaling ? app.autoscaling.maxReplicas : app.singleton ? 1 : app.replicas;
    const minutes = Math.max(10, Math.ceil((pods * podReadySeconds(app) + gracePeriod(app)) / 60) + 5);
    return { create: `${minutes}m`, update: `${minutes}m` };
}

/** Grace period above the preStop pause plus the app's shutdown timeout, so Kubernetes never kills a draining pod (30 s -> 60 s). */
export function gracePeriod(app: AppSettings): number {
    return Math.max(app.shutdownTimeout * 2, app.shutdownTimeout + PRESTOP_SECONDS + 15);
}

/** Environment the platform sets so the app's timeouts agree with the probes; the app's own env wins. */
export function configMapData(app: AppSettings): Record<string, string> {
    const platform: Record<string, string> = app.worker ? {} : { PORT: String(app.port) };
    platform.HEALTH_TIMEOUT = `${app.healthTimeout}s`;
    platform.SHUTDOWN_TIMEOUT = `${app.shutdownTimeout}s`;
    return { ...platform, ...app.env };
}

/**
 * A stable digest of the app's env and secrets: on the pod template, so a change
 * rolls the pods. Keyed (HMAC-SHA256 with a generated, secret `key`): the pod
 * template is readable by anyone who can read the Deployment, and a plain hash
 * would confirm a guessed password offline.
 */
export function configChecksum(env: Readonly<Record<string, string>>, secrets: Readonly<Record<string, string>>, key: string): string {
    const canonical = (o: Readonly<Record<string, string>>) => Object.keys(o).sort().map((k) => [k, o[k]]);
    return createHmac("sha256", key).update(JSON.stringify({ env: canonical(env), secrets: canonical(secrets) })).digest("hex");
}

/** Job name per release: a new image or command runs the migration again. */
export function migrationJobName(app: AppSettings, image: string): string {
    const hash = createHash("sha256").update(JSON.stringify([image, app.migrationCommand])).digest("hex").slice(0, 10);
    return `${app.name}-migrate-${hash}`;
}

function httpProbe(app: AppSettings, path: string, periodSeconds: number, failureThreshold: number): Probe {
    return {
        httpGet: { path, port: "http" },
        periodSeconds,
        timeoutSeconds: probeTimeout(app),
        failureThreshold,
    };
}

export interface ScheduledJob {
    readonly schedule: string;
    /** A suspended CronJob never runs on its own: a template for `kubectl create job --from=cronjob/...`. */
    readonly suspend?: boolean;
    readonly labels: Record<string, string>;
    readonly pod: PodSpec;
    /** The whole run's limit (Job activeDeadlineSeconds). */
    readonly deadlineSeconds: number;
    /** Retries of a failed run (default 1). */
    readonly backoffLimit?: number;
    /** Seconds a finished Job (and its pod) is kept; default: until the history limits. */
    readonly ttlSecondsAfterFinished?: number;
}

/** A CronJob of the platform's: UTC, never two runs at once, a missed run still starts within the hour. */
export function cronJobSpec(c: ScheduledJob): k8s.types.input.batch.v1.CronJobSpec {
    return {
        schedule: c.schedule,
        suspend: c.suspend ?? false,
        timeZone: "Etc/UTC",
        concurrencyPolicy: "Forbid",
        startingDeadlineSeconds: 3600,
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 5,
        jobTemplate: {
            metadata: { labels: c.labels },
            spec: {
                backoffLimit: c.backoffLimit ?? 1,
                activeDeadlineSeconds: c.deadlineSeconds,
                ...(c.ttlSecondsAfterFinished !== undefined ? { ttlSecondsAfterFinished: c.ttlSecondsAfterFinished } : {}),
                template: { metadata: { labels: c.labels }, spec: c.pod },
            },
        },
    };
}

/** The container security context of the restricted Pod Security Standard. */
export const RESTRICTED_CONTAINER = {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
};

/** The pod every workload of the app runs: restricted, config by reference only, writable /tmp. */
function podSpec(app: AppSettings, image: pulumi.Input<string>, names: AppObjectNames, pullFromRegistry: boolean): PodSpec {
    return {
        automountServiceAccountToken: false,
        ...(pullFromRegistry ? { imagePullSecrets: [{ name: names.pullSecret }] } : {}),
        enableServiceLinks: false,
        securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
        containers: [{
            name: app.name,
            image,
            ...(app.command ? { command: [...app.command] } : {}),
            ...(app.args ? { args: [...app.args] } : {}),
            envFrom: [{ configMapRef: { name: names.configMap } }, { secretRef: { name: names.secret } }],
            resources: {
                requests: { cpu: app.cpu, memory: app.memory },
                limits: { cpu: app.cpu, memory: app.memory },
            },
            securityContext: RESTRICTED_CONTAINER,
            volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
        }],
        volumes: [{ name: "tmp", emptyDir: { sizeLimit: "256Mi" } }],
    };
}

export interface AppObjectNames {
    readonly namespace: string;
    readonly configMap: string;
    readonly secret: string;
    /** The migration Job's own Secret: the direct database URL, which the app's pods never get. */
    readonly migrationSecret: string;
    /** dockerconfigjson credentials for the private registry. */
    readonly pullSecret: string;
    /** The claim of an app with a volume. */
    readonly volumeClaim: string;
}

export function appObjectNames(app: AppSettings): AppObjectNames {
    return {
        namespace: app.name,
        configMap: `${app.name}-env`,
        secret: `${app.name}-secrets`,
        migrationSecret: `${app.name}-migration`,
        pullSecret: "registry-credentials",
        volumeClaim: `${app.name}-data`,
    };
}

/** How the pods get their image. */
export interface ImageSource {
    /** May be an output (a pushed build's tag@digest). */
    readonly image: pulumi.Input<string>;
    /** The registry needs credentials: pods reference the namespace's pull Secret. */
    readonly pullFromRegistry: boolean;
}

/**
 * The group that owns an app volume's files: the kubelet gives the volume this
 * group (setgid, group-writable) and adds it to the pod's processes, so the
 * image's non-root user can write whatever its uid. Hetzner's CSI driver asks
 * for that on every volume (hetznercloud/csi-driver chart/templates/core/
 * csidriver.yaml: fsGroupPolicy File).
 */
export const VOLUME_FS_GROUP = 10001;
/**
 * The user every process on an app volume runs as (the app, its migration, the
 * backup and the restore), whatever the image declares: files written by one
 * are writable by the others, and a restored file belongs to the app.
 */
export const VOLUME_USER = 10001;
/**
 * At every mount the kubelet gives each file the group, group read-write, and
 * each directory setgid (kubernetes pkg/volume/volume_linux.go,
 * changeFilePermission). Always, not OnRootMismatch: files written under
 * another user (an image's own user before VOLUME_USER, a copy made by hand)
 * are usually 0644 and would stay unwritable, since OnRootMismatch looks only
 * at the volume's root. The cost is a walk of the volume at each pod start.
 */
export const VOLUME_FS_GROUP_CHANGE = "Always";

/** An app with a volume that migrates runs the migration in its own pod, on the volume, before the app (a Job elsewhere could not attach it). */
export function migratesInPod(app: AppSettings): boolean {
    return app.volume !== undefined && app.migrationCommand !== undefined && !app.database;
}

/** The claim of an app with a volume: one writer, expandable in place. */
export function volumeClaim(app: AppSettings, defaultStorageClass: string | undefined): k8s.types.input.core.v1.PersistentVolumeClaim {
    if (!app.volume) throw new Error(`${app.name} has no volume`);
    const storageClassName = app.volume.storageClass ?? defaultStorageClass;
    return {
        metadata: { name: appObjectNames(app).volumeClaim, namespace: app.name, labels: appLabels(app, "server") },
        spec: {
            accessModes: ["ReadWriteOnce"],
            ...(storageClassName ? { storageClassName } : {}),
            resources: { requests: { storage: app.volume.size } },
        },
    };
}

/** `checksum` may be an output (a digest of secrets). */
export function deployment(app: AppSettings, source: ImageSource, checksum: pulumi.Input<string>): Deployment {
    const names = appObjectNames(app);
    const base = podSpec(app, source.image, names, source.pullFromRegistry);
    const [container] = base.containers as k8s.types.input.core.v1.Container[];
    const serving = !app.worker;
    const selector = selectorLabels(app);
    return {
        metadata: { name: app.name, namespace: names.namespace, labels: appLabels(app, serving ? "server" : "worker") },
        spec: {
            // With autoscaling the HPA owns the replica count.
            ...(app.autoscaling ? {} : { replicas: app.singleton ? 1 : app.replicas }),
            revisionHistoryLimit: 5,
            // Kubernetes declares a rollout failed when no new pod became available in this
            // time: never sooner than one pod's startup budget allows (the default is 600 s).
            progressDeadlineSeconds: podReadySeconds(app) + gracePeriod(app),
            selector: { matchLabels: selector },
            // A singleton must never run twice, even during a rollout; others never drop below their count.
            strategy: app.singleton
                ? { type: "Recreate" }
                : { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
            template: {
                metadata: {
                    labels: { ...appLabels(app, serving ? "server" : "worker"), ...selector },
                    annotations: { [CHECKSUM_ANNOTATION]: checksum },
                },
                spec: {
                    ...base,
                    ...(app.volume ? {
                        securityContext: { ...base.securityContext, runAsUser: VOLUME_USER, runAsGroup: VOLUME_FS_GROUP, fsGroup: VOLUME_FS_GROUP, fsGroupChangePolicy: VOLUME_FS_GROUP_CHANGE },
                        volumes: [...(base.volumes as k8s.types.input.core.v1.Volume[]), { name: "data", persistentVolumeClaim: { claimName: names.volumeClaim } }],
                        // The migration, on the same volume, before the app: the app starts only if it succeeded.
                        ...(migratesInPod(app) ? {
                            initContainers: [{ ...volumeContainer(container, app), name: "migrate", command: [...app.migrationCommand ?? []], args: undefined }],
                        } : {}),
                    } : {}),
                    terminationGracePeriodSeconds: gracePeriod(app),
                    topologySpreadConstraints: [{
                        maxSkew: 1,
                        topologyKey: "kubernetes.io/hostname",
                        // ScheduleAnyway: a one-node cluster still runs every replica.
                        whenUnsatisfiable: "ScheduleAnyway",
                        labelSelector: { matchLabels: selector },
                    }],
                    containers: [{
                        ...volumeContainer(container, app),
                        ...(serving ? {
                            ports: [{ name: "http", containerPort: app.port, protocol: "TCP" }],
                            // Startup and liveness ask only "is the process serving?": restarting pods
                            // cannot fix a database outage, it only adds cold starts to it. Readiness
                            // checks the dependencies and takes the pod out of the Service meanwhile.
                            startupProbe: httpProbe(app, app.livenessPath, STARTUP_PERIOD, startupFailureThreshold(app)),
                            // Endpoints and Traefik drop the pod a moment after it starts terminating:
                            // keep serving until they have, then SIGTERM starts the app's drain.
                            lifecycle: { preStop: { sleep: { seconds: PRESTOP_SECONDS } } },
                            readinessProbe: httpProbe(app, app.healthPath, READINESS_PERIOD, 3),
                            livenessProbe: httpProbe(app, app.livenessPath, LIVENESS_PERIOD, 3),
                        } : {}),
                    }],
                },
            },
        },
    };
}

/** The container with the app's volume mounted at its path (as is without a volume). */
function volumeContainer(container: k8s.types.input.core.v1.Container, app: AppSettings): k8s.types.input.core.v1.Container {
    if (!app.volume) return container;
    const mounts = (container.volumeMounts ?? []) as k8s.types.input.core.v1.VolumeMount[];
    return { ...container, volumeMounts: [...mounts, { name: "data", mountPath: app.volume.path }] };
}

export const MIGRATION_URL_KEY = "DATABASE_URL";

/**
 * libpq's PGOPTIONS (also read by node-postgres and pgx) for the migration: a
 * statement that waits longer than migrationLockTimeout for a lock fails, and
 * the Job with it, so an ALTER TABLE queued behind a long reader (the nightly
 * pg_dump) does not block every query of the app queued behind it in turn.
 * The next `pulumi up` runs the migration again. The app's own PGOPTIONS come first.
 */
export function migrationPgOptions(app: AppSettings): string {
    return [app.env.PGOPTIONS, `-c lock_timeout=${app.migrationLockTimeout}s`].filter(Boolean).join(" ");
}

/**
 * The migration Job: same image and config, but DATABASE_URL is the direct
 * database URL from its own Secret (advisory locks need a session; PgBouncer's
 * transaction pooling does not keep one). Runs to completion before the
 * Deployment changes. `name` comes from migrationJobName.
 */
export function migrationJob(app: AppSettings, source: ImageSource, name: pulumi.Input<string>): k8s.types.input.batch.v1.Job {
    if (!app.migrationCommand) throw new Error(`${app.name} has no migrationCommand`);
    const names = appObjectNames(app);
    const pod = podSpec(app, source.image, names, source.pullFromRegistry);
    const [container] = pod.containers as k8s.types.input.core.v1.Container[];
    return {
        metadata: {
            name,
            namespace: names.namespace,
            labels: appLabels(app, "migration"),
            // After a failed run (the database was down), the next `pulumi up` runs it again.
            annotations: { [REPLACE_UNREADY_ANNOTATION]: "true" },
        },
        spec: {
            backoffLimit: 2,
            activeDeadlineSeconds: 900,
            template: {
                metadata: { labels: appLabels(app, "migration") },
                spec: {
                    ...pod,
                    restartPolicy: "Never",
                    containers: [{
                        ...container,
                        command: [...app.migrationCommand],
                        args: undefined,
                        env: [
                            { name: "DATABASE_URL", valueFrom: { secretKeyRef: { name: names.migrationSecret, key: MIGRATION_URL_KEY } } },
                            { name: "PGOPTIONS", value: migrationPgOptions(app) },
                        ],
                    }],
                },
            },
        },
    };
}

export function service(app: AppSettings): k8s.types.input.core.v1.Service {
    return {
        metadata: { name: app.name, namespace: app.name, labels: appLabels(app, "server") },
        spec: {
            type: "ClusterIP",
            selector: selectorLabels(app),
            ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }],
        },
    };
}

export interface IngressOptions {
    readonly ingressClass: string;
    /** cert-manager ClusterIssuer; absent when TLS is off (a CDN terminates it). */
    readonly clusterIssuer?: string;
    /** Traefik middlewares to apply, as `<namespace>-<name>@kubernetescrd`. */
    readonly middlewares: readonly string[];
    /** Traefik entry points to bind the app's routers to; absent: the controller's defaults. */
    readonly entryPoints?: string;
    /** The controller writes the Ingress status, so Pulumi may wait for it; otherwise the await is skipped. */
    readonly awaitStatus: boolean;
}

/** pulumi-kubernetes: create or update without waiting for the object's readiness. */
export const SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait";

export function ingress(app: AppSettings, opts: IngressOptions): k8s.types.input.networking.v1.Ingress {
    if (!app.host) throw new Error(`${app.name} has no host`);
    const annotations: Record<string, string> = {};
    if (opts.clusterIssuer) annotations["cert-manager.io/cluster-issuer"] = opts.clusterIssuer;
    if (opts.middlewares.length > 0) annotations["traefik.ingress.kubernetes.io/router.middlewares"] = opts.middlewares.join(",");
    if (opts.entryPoints) annotations["traefik.ingress.kubernetes.io/router.entrypoints"] = opts.entryPoints;
    // pulumi-kubernetes waits for .status.loadBalancer.ingress (provider/pkg/await/ingress.go);
    // with no controller writing it, every `up` would fail after 10 minutes. The app's
    // readiness is awaited on its Deployment instead.
    if (!opts.awaitStatus) annotations[SKIP_AWAIT_ANNOTATION] = "true";
    return {
        metadata: { name: app.name, namespace: app.name, labels: appLabels(app, "server"), annotations },
        spec: {
            ingressClassName: opts.ingressClass,
            ...(opts.clusterIssuer ? { tls: [{ hosts: [app.host], secretName: `${app.name}-tls` }] } : {}),
            rules: [{
                host: app.host,
                http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: app.name, port: { name: "http" } } } }] },
            }],
        },
    };
}

/** Lets a drain evict one pod at a time and never blocks it; a singleton gets none (seed 004's stuck drain). */
export function podDisruptionBudget(app: AppSettings): k8s.types.input.policy.v1.PodDisruptionBudget | undefined {
    if (app.singleton) return undefined;
    return {
        metadata: { name: app.name, namespace: app.name, labels: appLabels(app, app.worker ? "worker" : "server") },
        spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(app) } },
    };
}

export function horizontalPodAutoscaler(app: AppSettings): k8s.types.input.autoscaling.v2.HorizontalPodAutoscaler | undefined {
    if (!app.autoscaling) return undefined;
    return {
        metadata: { name: app.name, namespace: app.name, labels: appLabels(app, app.worker ? "worker" : "server") },
        spec: {
            scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: app.name },
            minReplicas: app.autoscaling.minReplicas,
            maxReplicas: app.autoscaling.maxReplicas,
            metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: app.autoscaling.cpuUtilization } } }],
        },
    };
}

export interface ControllerPods {
    readonly namespace: string;
    readonly podLabels: Readonly<Record<string, string>>;
}

function controllerPeer(controller: ControllerPods): k8s.types.input.networking.v1.NetworkPolicyPeer {
    return {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": controller.namespace } },
        podSelector: { matchLabels: { ...controller.podLabels } },
    };
}

/** Only the ingress controller may reach the app's pods, and only on the app's port; workers accept nothing. */
export function ingressPolicy(app: AppSettings, controller: ControllerPods): k8s.types.input.networking.v1.NetworkPolicy {
    return {
        metadata: { name: "allow-ingress-controller", namespace: app.name, labels: appLabels(app, "server") },
        spec: {
            podSelector: {},
            policyTypes: ["Ingress"],
            ingress: app.worker ? [] : [{
                from: [controllerPeer(controller)],
                ports: [{ port: app.port, protocol: "TCP" }],
            }],
        },
    };
}

/**
 * cert-manager's HTTP-01 solver: a pod it starts in the Certificate's (the
 * app's) namespace while a certificate is issued or renewed, reached by the
 * ingress controller through a temporary Ingress for
 * /.well-known/acme-challenge/<token> (cert-manager v1.19.1,
 * pkg/issuer/acme/http/pod.go: label acme.cert-manager.io/http01-solver=true,
 * container port 8089).
 */
export const ACME_SOLVER = { labels: { "acme.cert-manager.io/http01-solver": "true" }, port: 8089 } as const;

/** Admits the ingress controller to the ACME solver; without it no certificate is ever issued. */
export function acmeSolverPolicy(app: AppSettings, controller: ControllerPods): k8s.types.input.networking.v1.NetworkPolicy {
    return {
        metadata: { name: "allow-acme-http01-solver", namespace: app.name, labels: appLabels(app, "server") },
        spec: {
            podSelector: { matchLabels: { ...ACME_SOLVER.labels } },
            policyTypes: ["Ingress"],
            ingress: [{
                from: [controllerPeer(controller)],
                ports: [{ port: ACME_SOLVER.port, protocol: "TCP" }],
            }],
        },
    };
}

/** The registry host of a `registryServer` (`ghcr.io/acme` -> `ghcr.io`): what image references and credentials are keyed by. */
export function registryHost(server: string): string {
    return server.split("/")[0];
}

/** `.dockerconfigjson` of a kubernetes.io/dockerconfigjson Secret: the kubelet's credentials for one registry. */
export function dockerConfigJson(server: string, username: string, password: string): string {
    const auth = Buffer.from(`${username}:${password}`).toString("base64");
    return JSON.stringify({ auths: { [registryHost(server)]: { username, password, auth } } });
}

/** Pods may reach anything but the cloud metadata service (which would hand out the node's identity). */
export function denyMetadataPolicy(namespace: string, labels: Record<string, string>): k8s.types.input.networking.v1.NetworkPolicy {
    return {
        metadata: { name: "deny-cloud-metadata", namespace, labels },
        spec: {
            podSelector: {},
            policyTypes: ["Egress"],
            egress: [
                // Pods of the cluster (DNS, the database) by selector: whether an ipBlock matches
                // pod addresses depends on the network plugin (Kubernetes docs: ipBlock is meant
                // for cluster-external IPs), so the rule below alone might cut them off.
                { to: [{ namespaceSelector: {} }] },
                { to: [{ ipBlock: { cidr: "0.0.0.0/0", except: [METADATA_ADDRESS] } }, { ipBlock: { cidr: "::/0" } }] },
            ],
        },
    };
}
