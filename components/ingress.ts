// The edge in front of the apps: k3s's bundled Traefik tuned by a
// HelmChartConfig (hetzner mode), the security-headers middleware, and TLS
// from Let's Encrypt through cert-manager (or none when a CDN terminates it).
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { stringify } from "yaml";
import type { IngressSettings } from "./app-config";
import type { ControllerPods, IngressOptions } from "./app-render";
import { VERSIONS } from "./versions";

export const SECURITY_HEADERS = { namespace: "kube-system", name: "security-headers" };
export const ACME_SERVERS = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
} as const;

export interface TraefikOptions {
    /** Redirect HTTP to HTTPS (off when a CDN terminates TLS and talks HTTP to us). */
    readonly redirectToHttps: boolean;
    /** Load balancer addresses that speak PROXY protocol; absent without a load balancer. */
    readonly proxyProtocolFrom?: readonly string[];
}

/**
 * Values for k3s's bundled Traefik chart. A DaemonSet on every node binding the
 * node's ports 80/443 (hostPort) like the seed's hostNetwork setup, but the pods
 * stay on the pod network: NetworkPolicies can then name Traefik as the only
 * client of the apps, and Traefik needs no root. No LoadBalancer Service: the
 * Hetzner CCM would otherwise buy a load balancer for it.
 */
export function traefikValues(opts: TraefikOptions): Record<string, unknown> {
    const args: string[] = [];
    if (opts.redirectToHttps) {
        args.push(
            "--entryPoints.web.http.redirections.entryPoint.to=websecure",
            "--entryPoints.web.http.redirections.entryPoint.scheme=https",
            "--entryPoints.web.http.redirections.entryPoint.permanent=true",
        );
    }
    if (opts.proxyProtocolFrom && opts.proxyProtocolFrom.length > 0) {
        // Client addresses arrive in the PROXY header; only the load balancer may send one.
        const trusted = opts.proxyProtocolFrom.join(",");
        for (const ep of ["web", "websecure"]) {
            args.push(`--entryPoints.${ep}.proxyProtocol.trustedIPs=${trusted}`, `--entryPoints.${ep}.forwardedHeaders.trustedIPs=${trusted}`);
        }
    }
    return {
        deployment: { kind: "DaemonSet" },
        // A hostPort cannot be held by two pods on one node: replace in place, one node at a time.
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
        ports: {
            web: { hostPort: 80 },
            websecure: { hostPort: 443 },
        },
        service: { type: "ClusterIP" },
        additionalArguments: args,
        logs: { access: { enabled: true, format: "json" } },
        resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "256Mi" } },
        podDisruptionBudget: { enabled: true, maxUnavailable: 1 },
    };
}

/** Response headers for every app: HSTS, no sniffing, no framing, a conservative referrer policy. */
export function securityHeaders(hsts: boolean): Record<string, unknown> {
    return {
        headers: {
            ...(hsts ? { stsSeconds: 31536000, stsIncludeSubdomains: true } : {}),
            contentTypeNosniff: true,
            frameDeny: true,
            referrerPolicy: "strict-origin-when-cross-origin",
            permissionsPolicy: "camera=(), microphone=(), geolocation=()",
        },
    };
}

export interface PlatformIngressArgs {
    readonly settings: IngressSettings;
    /** hetzner: tune the bundled Traefik; existing: use the cluster's ingress controller as it is. */
    readonly bundledTraefik: boolean;
    readonly proxyProtocolFrom?: readonly string[];
    readonly provider: k8s.Provider;
}

export class PlatformIngress extends pulumi.ComponentResource {
    /** How apps build their Ingress objects. */
    readonly options: IngressOptions;
    /** The pods allowed to reach apps. */
    readonly controller: ControllerPods;
    /** What an app's Ingress must wait for. */
    readonly ready: pulumi.Resource[] = [];

    constructor(name: string, args: PlatformIngressArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:ingress:Ingress", name, {}, opts);
        const s = args.settings;
        const child = { parent: this, provider: args.provider };
        const tls = s.tls !== "off";
        const middlewares: string[] = [];

        if (args.bundledTraefik) {
            new k8s.apiextensions.CustomResource(`${name}-traefik-config`, {
                apiVersion: "helm.cattle.io/v1",
                kind: "HelmChartConfig",
                metadata: { name: "traefik", namespace: "kube-system" },
                spec: { valuesContent: stringify(traefikValues({ redirectToHttps: tls, proxyProtocolFrom: args.proxyProtocolFrom })) },
            }, child);
            // Traefik's CRDs ship with k3s, so the middleware can be created right away.
            const headers = new k8s.apiextensions.CustomResource(`${name}-security-headers`, {
                apiVersion: "traefik.io/v1alpha1",
                kind: "Middleware",
                metadata: { name: SECURITY_HEADERS.name, namespace: SECURITY_HEADERS.namespace },
                spec: securityHeaders(tls),
            }, child);
            middlewares.push(`${SECURITY_HEADERS.namespace}-${SECURITY_HEADERS.name}@kubernetescrd`);
            this.ready.push(headers);
        }

        let clusterIssuer: string | undefined;
        if (s.tls !== "off") {
            clusterIssuer = s.tls;
            const dependsOn: pulumi.Resource[] = [];
            if (s.certManager === "install") {
                // A Helm release Pulumi waits on: the ClusterIssuer needs cert-manager's CRDs to exist.
                dependsOn.push(new k8s.helm.v3.Release(`${name}-cert-manager`, {
                    name: "cert-manager",
                    chart: "cert-manager",
                    version: VERSIONS.certManagerChart,
                    repositoryOpts: { repo: "https://charts.jetstack.io" },
                    namespace: "cert-manager",
                    createNamespace: true,
                    values: { crds: { enabled: true } },
                }, child));
            }
            this.ready.push(new k8s.apiextensions.CustomResource(`${name}-issuer`, {
                apiVersion: "cert-manager.io/v1",
                kind: "ClusterIssuer",
                metadata: { name: clusterIssuer },
                spec: {
                    acme: {
                        server: ACME_SERVERS[s.tls],
                        email: s.acmeEmail,
                        privateKeySecretRef: { name: `${clusterIssuer}-account-key` },
                        solvers: [{ http01: { ingress: { ingressClassName: s.ingressClass } } }],
                    },
                },
            }, { ...child, dependsOn }));
        }

        this.options = { ingressClass: s.ingressClass, clusterIssuer, middlewares };
        this.controller = { namespace: s.controllerNamespace, podLabels: s.controllerPodLabels };
        this.registerOutputs({ ingressClass: s.ingressClass, clusterIssuer });
    }
}
