// The platform's backup bucket (backupS3*), as the backup Jobs reach it with
// rclone: the database's dumps under postgres/, app volumes under volumes/<app>/.
import type * as k8s from "@pulumi/kubernetes";
import type { S3Settings } from "./database/database-config";

/** The rclone remote the backup Jobs name in their paths (`offsite:<bucket>/...`). */
export const OFFSITE_REMOTE = "offsite";

/** The Secret keys that hold the bucket's credentials, in each namespace with a backup Job. */
export const S3_CREDENTIAL_KEYS = { accessKey: "accessKey", secretKey: "secretKey" } as const;

/**
 * The remote as environment variables (rclone docs, "Config file": RCLONE_CONFIG_<REMOTE>_<OPTION>),
 * so no config file is written on the read-only root filesystem; the keys come from `secretName`.
 */
export function rcloneOffsiteEnv(s3: Pick<S3Settings, "endpoint" | "region">, secretName: string): k8s.types.input.core.v1.EnvVar[] {
    const prefix = `RCLONE_CONFIG_${OFFSITE_REMOTE.toUpperCase()}`;
    return [
        { name: `${prefix}_TYPE`, value: "s3" },
        { name: `${prefix}_PROVIDER`, value: "Other" },
        { name: `${prefix}_ENDPOINT`, value: `https://${s3.endpoint}` },
        { name: `${prefix}_REGION`, value: s3.region },
        { name: `${prefix}_ACCESS_KEY_ID`, valueFrom: { secretKeyRef: { name: secretName, key: S3_CREDENTIAL_KEYS.accessKey } } },
        { name: `${prefix}_SECRET_ACCESS_KEY`, valueFrom: { secretKeyRef: { name: secretName, key: S3_CREDENTIAL_KEYS.secretKey } } },
    ];
}
