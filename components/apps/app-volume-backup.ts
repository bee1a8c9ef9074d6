// Backups of an app volume to the platform's backup bucket, and the way back.
// A scheduled Job on the app's node snapshots the volume (each SQLite database
// through SQLite's online backup API, so no second writer and no stop) and
// copies the snapshot off-site; a suspended CronJob is the restore, run by hand.
import type * as k8s from "@pulumi/kubernetes";
import type { AppSettings } from "./app-config";
import { appLabels, appObjectNames, cronJobSpec, RESTRICTED_CONTAINER, selectorLabels, VOLUME_FS_GROUP, VOLUME_FS_GROUP_CHANGE, VOLUME_USER } from "./app-render";
import type { S3Settings } from "../database/database-config";
import { readScript } from "../cluster/k3s-render";
import { OFFSITE_REMOTE, rcloneOffsiteEnv } from "../object-storage";
import { VERSIONS, VOLUME_TOOLS_IMAGE } from "../versions";

type PodSpec = k8s.types.input.core.v1.PodSpec;
type Container = k8s.types.input.core.v1.Container;

export const VOLUME_SCRIPTS = ["volume-snapshot.py", "volume-restore.py"] as const;

/** Where the snapshot and the restore's download live inside their pods (an emptyDir on the node). */
const WORK_DIR = "/work";
const DATA_DIR = "/data";
/** A backup or restore may run for hours on a large volume; a stuck one must not block the next run forever. */
const JOB_DEADLINE_SECONDS = 6 * 3600;

export interface VolumeBackupNames {
    readonly scripts: string;
    readonly credentials: string;
    readonly backup: string;
    readonly restore: string;
}

export function volumeBackupNames(app: AppSettings): VolumeBackupNames {
    return {
        scripts: `${app.name}-volume-scripts`,
        credentials: "volume-backup-s3",
        backup: `${app.name}-volume-backup`,
        restore: `${app.name}-volume-restore`,
    };
}

/** Where an app's snapshots go: `volumes/<app>/<YYYYMMDDTHHMMSSZ>.tar.gz` in the backup bucket. */
export function volumeBackupPath(app: AppSettings, bucket: S3Settings): string {
    return `${OFFSITE_REMOTE}:${bucket.bucket}/volumes/${app.name}`;
}

export function volumeScriptsData(): Record<string, string> {
    return Object.fromEntries(VOLUME_SCRIPTS.map((f) => [f, readScript(f)]));
}

/**
 * The restore's first step, in the rclone image's shell: the snapshot named by
 * SNAPSHOT, else the newest (names sort by time), downloaded whole before
 * anything on the volume changes.
 */
export const RESTORE_DOWNLOAD_SCRIPT = [
    "set -eu",
    'name="${SNAPSHOT:-}"',
    'if [ -z "$name" ]; then',
    '  name="$(rclone lsf --files-only --include "*.tar.gz" "$BACKUP_PATH" | sort | tail -n 1)"',
    '  if [ -z "$name" ]; then echo "no snapshot in $BACKUP_PATH" >&2; exit 1; fi',
    "fi",
    'echo "downloading $name"',
    `rclone copyto "$BACKUP_PATH/$name" ${WORK_DIR}/snapshot.tar.gz`,
].join("\n");

/** A pod that touches the app's volume: the app's user and group, so every file keeps one owner. */
function volumePod(app: AppSettings, affinity: k8s.types.input.core.v1.Affinity, initContainers: Container[], container: Container): PodSpec {
    const names = appObjectNames(app);
    return {
        restartPolicy: "Never",
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        securityContext: {
            runAsUser: VOLUME_USER, runAsGroup: VOLUME_FS_GROUP, fsGroup: VOLUME_FS_GROUP, fsGroupChangePolicy: VOLUME_FS_GROUP_CHANGE,
            runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" },
        },
        affinity,
        initContainers,
        containers: [container],
        volumes: [
            { name: "data", persistentVolumeClaim: { claimName: names.volumeClaim } },
            { name: "scripts", configMap: { name: volumeBackupNames(app).scripts, defaultMode: 0o444 } },
            { name: "work", emptyDir: {} },
            { name: "tmp", emptyDir: { sizeLimit: "256Mi" } },
        ],
    };
}

function pythonStep(name: string, args: string[]): Container {
    return {
        name,
        image: VOLUME_TOOLS_IMAGE,
        command: ["python3", ...args],
        env: [{ name: "PYTHONDONTWRITEBYTECODE", value: "1" }],
        resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
        securityContext: RESTRICTED_CONTAINER,
        volumeMounts: [
            { name: "data", mountPath: DATA_DIR },
            { name: "scripts", mountPath: "/scripts", readOnly: true },
            { name: "work", mountPath: WORK_DIR },
            { name: "tmp", mountPath: "/tmp" },
        ],
    };
}

function rcloneStep(name: string, bucket: S3Settings, secretName: string, run: Pick<Container, "command" | "args">, env: k8s.types.input.core.v1.EnvVar[] = []): Container {
    return {
        name,
        image: VERSIONS.rclone,
        ...run,
        env: [...rcloneOffsiteEnv(bucket, secretName), ...env],
        resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "512Mi" } },
        securityContext: RESTRICTED_CONTAINER,
        volumeMounts: [{ name: "work", mountPath: WORK_DIR }, { name: "tmp", mountPath: "/tmp" }],
    };
}

/**
 * Snapshot, upload, prune, in that order (init containers run one after the other):
 * - the snapshot runs on the app's node (required pod affinity): the claim is
 *   ReadWriteOnce, attached to that node, where a second pod may mount it;
 * - upload with `--immutable`: a snapshot never overwrites another;
 * - prune deletes snapshots older than keepDays only after this run's upload
 *   succeeded, so the newest always survives, however long backups failed.
 */
export function volumeBackupCronJob(app: AppSettings, bucket: S3Settings): k8s.types.input.batch.v1.CronJob {
    if (!app.volume) throw new Error(`${app.name} has no volume`);
    const names = volumeBackupNames(app);
    const target = volumeBackupPath(app, bucket);
    const labels = appLabels(app, "volume-backup");
    const pod = volumePod(app, {
        podAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: selectorLabels(app) }, topologyKey: "kubernetes.io/hostname" }],
        },
    }, [
        pythonStep("snapshot", ["/scripts/volume-snapshot.py", DATA_DIR, `${WORK_DIR}/snapshots`]),
        rcloneStep("upload", bucket, names.credentials, { args: ["copy", `${WORK_DIR}/snapshots`, target, "--immutable", "--include", "*.tar.gz"] }),
    ], rcloneStep("prune", bucket, names.credentials, {
        args: ["delete", target, "--min-age", `${app.volume.backup.keepDays}d`, "--include", "*.tar.gz"],
    }));
    return {
        metadata: { name: names.backup, namespace: app.name, labels },
        spec: cronJobSpec({ schedule: app.volume.backup.schedule, labels, pod, deadlineSeconds: JOB_DEADLINE_SECONDS }),
    };
}

/**
 * Never scheduled: a template for
 * `kubectl create job --from=cronjob/<app>-volume-restore` (docs/operations.md).
 * Required anti-affinity keeps it off a node where the app runs: while the app
 * holds the claim, the restore cannot attach it and waits, so it never writes
 * under a running app. SNAPSHOT picks a snapshot (`kubectl set env` sets it in
 * init containers too: kubectl pkg/cmd/set/set_env.go); empty, the newest.
 */
export function volumeRestoreCronJob(app: AppSettings, bucket: S3Settings): k8s.types.input.batch.v1.CronJob {
    if (!app.volume) throw new Error(`${app.name} has no volume`);
    const names = volumeBackupNames(app);
    const labels = appLabels(app, "volume-restore");
    const pod = volumePod(app, {
        podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: selectorLabels(app) }, topologyKey: "kubernetes.io/hostname" }],
        },
    }, [
        rcloneStep("download", bucket, names.credentials, { command: ["sh", "-c", RESTORE_DOWNLOAD_SCRIPT] }, [
            { name: "BACKUP_PATH", value: volumeBackupPath(app, bucket) },
            { name: "SNAPSHOT", value: "" },
        ]),
    ], pythonStep("restore", ["/scripts/volume-restore.py", `${WORK_DIR}/snapshot.tar.gz`, DATA_DIR]));
    return {
        metadata: { name: names.restore, namespace: app.name, labels },
        spec: cronJobSpec({ schedule: app.volume.backup.schedule, suspend: true, labels, pod, deadlineSeconds: JOB_DEADLINE_SECONDS }),
    };
}
