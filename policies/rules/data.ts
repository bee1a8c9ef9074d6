// Rules for what holds data.
import type { ResourceValidationPolicy } from "@pulumi/policy";

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

export const DATA_POLICIES = [dataProtected];
