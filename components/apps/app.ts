// One app from the `apps` map of stack config: its image (pinned or built and
// pushed), namespace, config and secrets, migration Job, Deployment, Service,
// Ingress, disruption budget, autoscaler and network policies.
import * as path from "node:path";
import * as dockerBuild from "@pulumi/docker-build";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { AppSettings, RegistrySettings } from "./app-config";
import { volumeBackupCronJob, volumeBackupNames, volumeRestoreCronJob, volumeScriptsData } from "./app-volume-backup";
import { AppDatabase, DATABASE_CLIENT_LABEL } from "../database/database";
import type { S3Settings } from "../database/database-config";
import { S3_CREDENTIAL_KEYS } from "../object-storage";
import {
    acmeSolverPolicy, appLabels, appObjectNames, configChecksum, configMapData, ControllerPods, denyMetadataPolicy, deployment,
    dockerConfigJson, horizontalPodAutoscaler, ImageSource, ingress, ingressPolicy, IngressOptions, JOB_TIMEOUTS, MIGRATION_URL_KEY,
    migratesInPod, migrationJob, migrationJobName, podDisruptionBudget, registryHost, rolloutTimeouts, service, volumeClaim,
} from "./app-render";

export interface AppArgs {
    readonly app: AppSettings;
    readonly stack: string;
    /** Where relative build contexts are resolved (the project directory). */
    readonly projectDir: string;
    readonly registry?: RegistrySettings;
    readonly ingress: IngressOptions;
    readonly controller: ControllerPods;
    readonly provider: k8s.Provider;
    /** Resources that must exist before the app's Ingress (the ClusterIssuer, the Traefik middleware). */
    readonly ingressDependsOn?: pulumi.Input<pulumi.Resource>[];
    /** For an app with `database: true`: its URLs (secret) and what must be ready before its Secret changes. */
    readonly database?: AppDatabase;
    /** StorageClass of an app volume that names none: the platform's retaining class (hetzner mode); absent, the cluster's default. */
    readonly volumeStorageClass?: string;
    /** What an app volume waits for (the CSI driver and StorageClass). */
    readonly volumeDependsOn?: pulumi.Input<pulumi.Resource>[];
    /** The platform's backup bucket: an app volume's snapshots go there. */
    readonly backupBucket?: S3Settings;
}

/** A built image is pushed for linux/amd64 (Hetzner's x86 servers), whatever machine runs `pulumi up`. */
export const BUILD_PLATFORM = "linux/amd64";

export class App extends pulumi.ComponentResource {
    readonly name: string;
    readonly namespace: string;
    /** The image the pods run: the pinned reference, or the pushed build by digest. */
    readonly image: pulumi.Output<string>;
    readonly url?: string;

    constructor(name: string, args: AppArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:apps:App", name, {}, opts);
        const { app } = args;
        const names = appObjectNames(app);
        const k8sOpts = { parent: this, provider: args.provider };
        this.name = app.name;
        this.namespace = names.namespace;
        this.image = this.resolveImage(name, args);

        const ns = new k8s.core.v1.Namespace(`${name}-ns`, {
            metadata: {
                name: names.namespace,
                labels: {
                    ...appLabels(app, "server"),
                    "pod-security.kubernetes.io/enforce": "restricted",
                    // Lets the database's network policy admit this namespace.
                    ...(args.database ? { [DATABASE_CLIENT_LABEL]: "true" } : {}),
                },
            },
            // Deleting the namespace would delete the app volume's claim with it (and, on a deleting class, its data).
        }, app.volume ? { ...k8sOpts, protect: true, retainOnDelete: true } : k8sOpts);
        const inNs = { ...k8sOpts, dependsOn: [ns] };

        const env = configMapData(app);
        const configMap = new k8s.core.v1.ConfigMap(`${name}-env`, {
            metadata: { name: names.configMap, namespace: names.namespace, labels: appLabels(app, "server") },
            data: env,
        }, inNs);
        // The direct URL bypasses the pooler and the connection budget: only the migration Job gets it.
        const { DATABASE_DIRECT_URL: userDirectUrl, ...appSecrets } = app.secrets;
        const secretValues = pulumi.secret(pulumi.output({
            ...appSecrets,
            ...(args.database ? { DATABASE_URL: args.database.url } : {}),
        }));
        const secret = new k8s.core.v1.Secret(`${name}-secrets`, {
            metadata: { name: names.secret, namespace: names.namespace, labels: appLabels(app, "server") },
            type: "Opaque",
            stringData: secretValues,
            // A rotated password reaches the app only after the role and PgBouncer have it.
        }, { ...inNs, dependsOn: [ns, ...(args.database?.ready ?? [])] });
        // Keyed with a generated secret, the digest confirms no guessed value: unsecret it so the pod template stays readable.
        const checksumKey = new random.RandomBytes(`${name}-checksum-key`, { length: 32 }, { parent: this }).hex;
        const checksum = pulumi.unsecret(pulumi.all([secretValues, checksumKey]).apply(([values, key]) => configChecksum(env, values, key)));

        new k8s.networking.v1.NetworkPolicy(`${name}-allow-ingress-controller`, ingressPolicy(app, args.controller), inNs);
        new k8s.networking.v1.NetworkPolicy(`${name}-deny-cloud-metadata`, denyMetadataPolicy(names.namespace, appLabels(app, "server")), inNs);

        const podDependsOn: pulumi.Resource[] = [ns, configMap, secret];
        if (args.registry) {
            const registry = args.registry;
            podDependsOn.push(new k8s.core.v1.Secret(`${name}-registry-credentials`, {
                metadata: { name: names.pullSecret, namespace: names.namespace, labels: appLabels(app, "server") },
                type: "kubernetes.io/dockerconfigjson",
                stringData: {
                    ".dockerconfigjson": pulumi.secret(pulumi.output(registry.password).apply((password) =>
                        dockerConfigJson(registry.server, registry.username, password))),
                },
            }, inNs));
        }
        const source: ImageSource = { image: this.image, pullFromRegistry: args.registry !== undefined };

        const rolloutDependsOn: pulumi.Resource[] = [...podDependsOn];
        if (app.volume) {
            // The app's data: never deleted by Pulumi (protect), and kept in the cluster if the app is removed (retainOnDelete).
            // Its await (pulumi-kubernetes >= 4.27, #4181): Pending is ready on create with WaitForFirstConsumer, Bound on update.
            const claim = new k8s.core.v1.PersistentVolumeClaim(`${name}-data`, volumeClaim(app, args.volumeStorageClass), {
                ...inNs,
                dependsOn: [ns, ...(args.volumeDependsOn ?? [])],
                protect: true,
                retainOnDelete: true,
            });
            rolloutDependsOn.push(claim);
            if (args.backupBucket) this.volumeBackups(name, app, args.backupBucket, inNs, [ns, claim]);
        }
        // An app with a volume and no database migrates in its own pod (migratesInPod); others in a Job first.
        if (app.migrationCommand && !migratesInPod(app)) {
            const directUrl = args.database?.directUrl ?? userDirectUrl;
            if (directUrl === undefined) throw new Error(`${app.name}: migrationCommand needs a direct database URL`);
            const migrationSecret = new k8s.core.v1.Secret(`${name}-migration-secrets`, {
                metadata: { name: names.migrationSecret, namespace: names.namespace, labels: appLabels(app, "migration") },
                type: "Opaque",
                stringData: { [MIGRATION_URL_KEY]: pulumi.secret(directUrl) },
            }, { ...inNs, dependsOn: [ns, ...(args.database?.ready ?? [])] });
            const job = migrationJob(app, source, this.image.apply((image) => migrationJobName(app, image)));
            const migration = new k8s.batch.v1.Job(`${name}-migrate`, job, {
                ...inNs,
                dependsOn: [...podDependsOn, migrationSecret],
                customTimeouts: JOB_TIMEOUTS,
            });
            // The Deployment changes only after the migration succeeded; a failed one leaves the old pods serving.
            rolloutDependsOn.push(migration);
        }

        const workload = new k8s.apps.v1.Deployment(`${name}-deployment`, deployment(app, source, checksum), {
            ...inNs,
            dependsOn: rolloutDependsOn,
            customTimeouts: rolloutTimeouts(app),
        });

        const pdb = podDisruptionBudget(app);
        if (pdb) new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, pdb, inNs);
        const hpa = horizontalPodAutoscaler(app);
        if (hpa) new k8s.autoscaling.v2.HorizontalPodAutoscaler(`${name}-hpa`, hpa, { ...inNs, dependsOn: [ns, workload] });

        if (!app.worker) {
            const svc = new k8s.core.v1.Service(`${name}-svc`, service(app), inNs);
            if (app.host && args.ingress.clusterIssuer) {
                new k8s.networking.v1.NetworkPolicy(`${name}-allow-acme-solver`, acmeSolverPolicy(app, args.controller), inNs);
            }
            if (app.host) {
                new k8s.networking.v1.Ingress(`${name}-ingress`, ingress(app, args.ingress), {
                    ...inNs,
                    dependsOn: [ns, svc, ...(args.ingressDependsOn ?? [])],
                });
                this.url = `${args.ingress.clusterIssuer ? "https" : "http"}://${app.host}`;
            }
        }

        this.registerOutputs({ namespace: this.namespace, image: this.image, url: this.url });
    }

    /** The volume's scheduled snapshots to the bucket, and the restore Job's template. */
    private volumeBackups(name: string, app: AppSettings, bucket: S3Settings, opts: pulumi.CustomResourceOptions, after: pulumi.Resource[]): void {
        const names = volumeBackupNames(app);
        const scripts = new k8s.core.v1.ConfigMap(`${name}-volume-scripts`, {
            metadata: { name: names.scripts, namespace: app.name, labels: appLabels(app, "volume-backup") },
            data: volumeScriptsData(),
        }, { ...opts, dependsOn: after });
        const credentials = new k8s.core.v1.Secret(`${name}-volume-backup-s3`, {
            metadata: { name: names.credentials, namespace: app.name, labels: appLabels(app, "volume-backup") },
            type: "Opaque",
            stringData: { [S3_CREDENTIAL_KEYS.accessKey]: bucket.accessKey, [S3_CREDENTIAL_KEYS.secretKey]: pulumi.secret(bucket.secretKey) },
        }, { ...opts, dependsOn: after });
        const dependsOn = [...after, scripts, credentials];
        new k8s.batch.v1.CronJob(`${name}-volume-backup`, volumeBackupCronJob(app, bucket), { ...opts, dependsOn });
        new k8s.batch.v1.CronJob(`${name}-volume-restore`, volumeRestoreCronJob(app, bucket), { ...opts, dependsOn });
    }

    private resolveImage(name: string, args: AppArgs): pulumi.Output<string> {
        const { app, registry } = args;
        if (app.image) return pulumi.output(app.image);
        if (!app.build || !registry) throw new Error(`${app.name}: needs an image, or a build and a registry`);
        const context = path.resolve(args.projectDir, app.build.context);
        const built = new dockerBuild.Image(`${name}-image`, {
            context: { location: context },
            dockerfile: { location: path.join(context, app.build.dockerfile) },
            ...(app.build.target ? { target: app.build.target } : {}),
            // Apple-silicon laptops would otherwise push arm64 images the servers cannot run (seed 004).
            platforms: [BUILD_PLATFORM as dockerBuild.Platform],
            push: true,
            tags: [`${registry.server}/${app.name}:${args.stack}`],
            registries: [{
                address: registryHost(registry.server),
                username: registry.username,
                password: pulumi.secret(registry.password),
            }],
        }, { parent: this });
        // tag@digest: every new build changes the reference, so the Deployment rolls.
        return built.ref;
    }
}
