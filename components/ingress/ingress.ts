// The edge in front of the apps: k3s's bundled Traefik tuned by a
// HelmChartConfig (hetzner mode), the security-headers middleware, and TLS
// from Let's Encrypt through cert-manager (or none when a CDN terminates it).
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { stringify } from "yaml";
import type { IngressSettings } from "../apps/app-config";
import type { ControllerPods, IngressOptions } from "../apps/app-render";
import { CrdsEstablished } from "../cluster/crds-established";
import { VERSIONS } from "../versions";

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
    /**
     * The address clients reach Traefik at (the load balancer's IPv4), published
     * as every Ingress's status. Absent: Traefik writes no status (see ingressAwait).
     */
    readonly publishedIp?: string;
}

/**
 * Priority of the HTTP->HTTPS redirect router: the lowest, so that any router
 * bound to the web entry point wins over it. Only cert-manager's HTTP-01
 * solver Ingresses are (apps are bound to websecure, APP_ENTRY_POINTS): Let's
 * Encrypt then reaches the solver on port 80 directly. Traefik's default is
 * MaxInt-1, which no Ingress can beat (traefik v3.6 pkg/provider/traefik/internal.go
 * `redirection`; pkg/server/router/router.go `maxUserPriority`).
 */
export const REDIRECT_PRIORITY = 1;

/** The entry points app Ingresses are bound to: HTTPS only when the redirect serves port 80. */
export function appEntryPoints(redirectToHttps: boolean): string {
    return redirectToHttps ? "websecure" : "web";
}

/**
 * Values for k3s's bundled Traefik chart (traefik-helm-chart v39.0.5, bundled
 * by k3s v1.34.6+k3s1). A DaemonSet on every node binding the node's ports
 * 80/443 (hostPort) like the seed's hostNetwork setup, but the pods stay on
 * the pod network: NetworkPolicies can then name Traefik as the only client
 * of the apps, and Traefik needs no root. No LoadBalancer Service: the Hetzner
 * CCM would otherwise buy a load balancer for it.
 */
export function traefikValues(opts: TraefikOptions): Record<string, unknown> {
    const args: string[] = [];
    if (opts.proxyProtocolFrom && opts.proxyProtocolFrom.length > 0) {
        // Client addresses arrive in the PROXY header; only the load balancer may send one.
        const trusted = opts.proxyProtocolFrom.join(",");
        for (const ep of ["web", "websecure"]) {
            args.push(`--entryPoints.${ep}.proxyProtocol.trustedIPs=${trusted}`, `--entryPoints.${ep}.forwardedHeaders.trustedIPs=${trusted}`);
        }
    }
    if (opts.publishedIp !== undefined) {
        // Traefik copies a published Service's status in preference to the
        // address (traefik pkg/provider/kubernetes/ingress/kubernetes.go
        // `updateIngressStatus`); ours is ClusterIP and has none, so turn that
        // off (k3s turns it on) and publish the load balancer's address.
        args.push(`--providers.kubernetesingress.ingressendpoint.ip=${opts.publishedIp}`);
    }
    return {
        deployment: { kind: "DaemonSet" },
        // A hostPort cannot be held by two pods on one node: replace in place, one node at a time.
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
        ports: {
            web: {
                hostPort: 80,
                // The chart renders `to` as the target's exposedPort (:443), not its container
                // port (8443) (traefik-helm-chart v39.0.5 templates/_podtemplate.tpl).
                ...(opts.redirectToHttps
                    ? { http: { redirections: { entryPoint: { to: "websecure", scheme: "https", permanent: true, priority: REDIRECT_PRIORITY } } } }
                    : {}),
            },
            websecure: { hostPort: 443 },
        },
        service: { type: "ClusterIP" },
        providers: { kubernetesIngress: { publishedService: { enabled: opts.publishedIp === undefined } } },
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

export interface BundledTraefikArgs {
    readonly proxyProtocolFrom?: readonly string[];
    /** The load balancer's IPv4, published as Ingress status; absent without a load balancer. */
    readonly publishedIp?: pulumi.Output<string>;
    /** kubectl image for the in-cluster wait on Traefik's CRDs. */
    readonly kubectlImage: string;
}

export interface PlatformIngressArgs {
    readonly settings: IngressSettings;
    /** hetzner: tune k3s's bundled Traefik; absent (existing mode): use the cluster's ingress controller as it is. */
    readonly bundledTraefik?: BundledTraefikArgs;
    /** Something besides TLS needs cert-manager (the database's backup plugin). */
    readonly certManagerForOthers?: boolean;
    readonly provider: k8s.Provider;
}

/** Traefik's CRD of the security-headers Middleware, installed by k3s's traefik-crd HelmChart. */
export const TRAEFIK_MIDDLEWARE_CRD = "middlewares.traefik.io";

export class PlatformIngress extends pulumi.ComponentResource {
    /** How apps build their Ingress objects. */
    readonly options: IngressOptions;
    /** The pods allowed to reach apps. */
    readonly controller: ControllerPods;
    /** What an app's Ingress must wait for. */
    readonly ready: pulumi.Resource[] = [];
    /** What proves the cluster schedules pods (hetzner mode: the wait for Traefik's CRDs, which runs only on an initialised node). */
    readonly clusterReady: pulumi.Resource[] = [];
    /** cert-manager, when this program installs it: what its users wait for. */
    readonly certManager: pulumi.Resource[] = [];

    constructor(name: string, args: PlatformIngressArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:ingress:Ingress", name, {}, opts);
        const s = args.settings;
        const child = { parent: this, provider: args.provider };
        const tls = s.tls !== "off";
        const middlewares: string[] = [];
        const clusterReady = this.clusterReady;
        const traefik = args.bundledTraefik;

        if (traefik) {
            const values = pulumi.output(traefik.publishedIp).apply((publishedIp) =>
                stringify(traefikValues({ redirectToHttps: tls, proxyProtocolFrom: traefik.proxyProtocolFrom, publishedIp })));
            new k8s.apiextensions.CustomResource(`${name}-traefik-config`, {
                apiVersion: "helm.cattle.io/v1",
                kind: "HelmChartConfig",
                metadata: { name: "traefik", namespace: "kube-system" },
                spec: { valuesContent: values },
            }, child);
            // k3s installs Traefik's CRDs with a HelmChart whose Job waits for an initialised
            // node (helm-controller gives non-bootstrap Jobs no tolerations): wait for them.
            const crds = new CrdsEstablished(`${name}-traefik-crds`, {
                crds: [TRAEFIK_MIDDLEWARE_CRD],
                kubectlImage: traefik.kubectlImage,
                provider: args.provider,
            }, { parent: this });
            clusterReady.push(crds);
            const headers = new k8s.apiextensions.CustomResource(`${name}-security-headers`, {
                apiVersion: "traefik.io/v1alpha1",
                kind: "Middleware",
                metadata: { name: SECURITY_HEADERS.name, namespace: SECURITY_HEADERS.namespace },
                spec: securityHeaders(tls),
            }, { ...child, dependsOn: [crds] });
            middlewares.push(`${SECURITY_HEADERS.namespace}-${SECURITY_HEADERS.name}@kubernetescrd`);
            this.ready.push(headers);
        }

        if (s.certManager === "install" && (tls || args.certManagerForOthers)) {
            // Helm waits for the release's pods and its CRDs (Established) before Pulumi
            // creates the ClusterIssuer; its pods need a node the cloud controller initialised.
            this.certManager.push(new k8s.helm.v3.Release(`${name}-cert-manager`, {
                name: "cert-manager",
                chart: "cert-manager",
                version: VERSIONS.certManagerChart,
                repositoryOpts: { repo: "https://charts.jetstack.io" },
                namespace: "cert-manager",
                createNamespace: true,
                values: { crds: { enabled: true } },
                timeout: CERT_MANAGER_TIMEOUT_SECONDS,
            }, { ...child, dependsOn: clusterReady }));
        }
        let clusterIssuer: string | undefined;
        if (s.tls !== "off") {
            clusterIssuer = s.tls;
            this.ready.push(new k8s.apiextensions.CustomResource(`${name}-issuer`, {
                apiVersion: "cert-manager.io/v1",
                kind: "ClusterIssuer",
                metadata: { name: clusterIssuer },
                spec: { acme: acmeIssuer(s.tls, s.acmeEmail, s.ingressClass) },
            }, { ...child, dependsOn: this.certManager }));
        }

        this.options = {
            ingressClass: s.ingressClass,
            clusterIssuer,
            middlewares,
            entryPoints: traefik ? appEntryPoints(tls) : undefined,
            // Only a status someone writes can be awaited (pulumi-kubernetes waits for
            // .status.loadBalancer.ingress): our Traefik writes it when it has the LB's address.
            awaitStatus: traefik?.publishedIp !== undefined,
        };
        this.controller = { namespace: s.controllerNamespace, podLabels: s.controllerPodLabels };
        this.registerOutputs({ ingressClass: s.ingressClass, clusterIssuer });
    }
}

/** Seconds Helm waits for cert-manager (Pulumi's default is 300): a fresh cluster pulls its images first. */
export const CERT_MANAGER_TIMEOUT_SECONDS = 900;

/**
 * The ClusterIssuer's ACME spec. The HTTP-01 solver Service is ClusterIP:
 * Traefik reaches the solver pod on the pod network, and cert-manager's
 * default (NodePort) would open a port on every node.
 */
export function acmeIssuer(tls: Exclude<IngressSettings["tls"], "off">, email: string | undefined, ingressClass: string): Record<string, unknown> {
    return {
        server: ACME_SERVERS[tls],
        email,
        privateKeySecretRef: { name: `${tls}-account-key` },
        solvers: [{ http01: { ingress: { ingressClassName: ingressClass, serviceType: "ClusterIP" } } }],
    };
}
