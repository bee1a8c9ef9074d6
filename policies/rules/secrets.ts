// Rules for credentials: where they must never be.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { workloadContainers } from "./pods";

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

export const noLiteralCredentialEnv: ResourceValidationPolicy = {
    name: "no-literal-credential-env",
    description: "No container has a credential-looking environment variable with a literal value: it would sit in the pod spec in plain text.",
    enforcementLevel: "mandatory",
    severity: "critical",
    remediationSteps: "Take the value from a Secret (valueFrom.secretKeyRef or envFrom a Secret); for an app, apps.<app>.secrets.",
    validateResource: (args, reportViolation) => {
        for (const c of workloadContainers(args.type, args.props)) {
            for (const e of c.env ?? []) {
                if (CREDENTIAL_NAME.test(e.name) && e.value !== undefined && e.value !== "") reportViolation(`container '${c.name ?? "?"}' sets ${e.name} to a literal value`);
            }
        }
    },
};

/** What a credential looks like inside a server's user-data. */
const CREDENTIAL_IN_TEXT = /(K3S_TOKEN|K3S_AGENT_TOKEN|^\s*(agent-)?token\s*:|-----BEGIN [A-Z ]*PRIVATE KEY-----|password\s*[:=])/im;

export const noCredentialsInUserData: ResourceValidationPolicy = {
    name: "no-credentials-in-user-data",
    description: "No server's user-data holds a token, password or private key: any pod can read it from the metadata service, and Hetzner keeps it.",
    enforcementLevel: "mandatory",
    severity: "critical",
    remediationSteps: "Deliver credentials after boot over SSH (as the k3s config apply does), never in cloud-init.",
    validateResource: (args, reportViolation) => {
        if (args.type !== "hcloud:index/server:Server") return;
        if (typeof args.props.userData === "string" && CREDENTIAL_IN_TEXT.test(args.props.userData)) reportViolation("the user-data holds a credential");
    },
};

export const SECRET_POLICIES = [noCredentialsInConfigMaps, noLiteralCredentialEnv, noCredentialsInUserData];
