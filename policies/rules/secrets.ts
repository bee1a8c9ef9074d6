// Rules for credentials: where they must never be.
import type { ResourceValidationPolicy } from "@pulumi/policy";

/** Names that hold credentials: passwords, secrets, tokens, keys, credentials, database URLs. */
export const CREDENTIAL_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|(^|_)KEY$|API_?KEY|DATABASE_URL|_DSN$)/i;

export const noCredentialsInConfigMaps: ResourceValidationPolicy = {
    name: "no-credentials-in-configmaps",
    description: "No ConfigMap key looks like a credential: ConfigMaps are readable in plain text by anyone who can read the namespace.",
    enforcementLevel: "mandatory",
    severity: "critical",
    remediationSteps: "Move the value to a Secret: for an app, pulumi config set --secret --path 'platform:apps.<app>.secrets.<KEY>' <value>.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "kubernetes:core/v1:ConfigMap") return;
        const data = (args.props.data ?? {}) as Record<string, unknown>;
        // Scripts and manifests are files, not settings.
        for (const key of Object.keys(data).filter((k) => !/\.(sh|json|ya?ml)$/.test(k))) {
            if (CREDENTIAL_NAME.test(key)) reportViolation(`key '${key}' looks like a credential`);
        }
    },
};

export const SECRET_POLICIES = [noCredentialsInConfigMaps];
