// Rules for what holds data.
import type { ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";

const HOLDS_DATA = new Set(["kubernetes:core/v1:PersistentVolumeClaim", "kubernetes:postgresql.cnpg.io/v1:Cluster"]);

export const dataProtected: ResourceValidationPolicy = {
    name: "data-protected",
    description: "Claims and database Clusters are protected, so no `pulumi up` or `destroy` deletes them by accident.",
    enforcementLevel: "mandatory",
    severity: "critical",
    remediationSteps: "Create them with { protect: true, retainOnDelete: true }; to remove one on purpose, move its data first, then pulumi state unprotect.",
    validateResource: (args, reportViolation) => {
        if (HOLDS_DATA.has(args.type) && !args.opts.protect) reportViolation("it holds data and is not protected");
    },
};

export const poolerHighlyAvailable: ResourceValidationPolicy = {
    name: "pooler-highly-available",
    description: "The PgBouncer Pooler runs at least two instances, so losing a node or draining one never cuts every app from its database.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "pulumi config set platform:pgbouncerReplicas 2 (or more); the platform adds the PDB.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "kubernetes:postgresql.cnpg.io/v1:Pooler") return;
        if (((args.props.spec as { instances?: number } | undefined)?.instances ?? 1) < 2) reportViolation("the Pooler runs fewer than two instances");
    },
};

export const backupsAndDrillScheduled: StackValidationPolicy = {
    name: "backups-and-drill-scheduled",
    description: "Wherever a database Cluster runs, the daily dump and the weekly restore drill are scheduled and not suspended.",
    enforcementLevel: "mandatory",
    severity: "high",
    remediationSteps: "Keep the CronJobs postgres-backup and postgres-restore-drill of the database tier (backupSchedule, restoreDrillSchedule); never suspend them.",
    validateStack: (args, reportViolation) => {
        if (!args.resources.some((r) => r.type === "kubernetes:postgresql.cnpg.io/v1:Cluster")) return;
        for (const name of ["postgres-backup", "postgres-restore-drill"]) {
            const cron = args.resources.find((r) => r.type === "kubernetes:batch/v1:CronJob" && (r.props.metadata as { name?: string } | undefined)?.name === name);
            if (!cron) reportViolation(`the CronJob ${name} is missing`);
            else if ((cron.props.spec as { suspend?: boolean } | undefined)?.suspend === true) reportViolation(`the CronJob ${name} is suspended`);
        }
    },
};

export const DATA_POLICIES = [dataProtected, poolerHighlyAvailable, backupsAndDrillScheduled];
