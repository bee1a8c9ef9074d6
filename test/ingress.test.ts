// The edge against its upstream contracts: how k3s's Traefik chart
// (traefik-helm-chart v39.0.5, the one k3s v1.34.6+k3s1 bundles) turns our
// values into Traefik's redirect, how Traefik then picks a router for a
// request on port 80, and what cert-manager's HTTP-01 solver needs from both.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import { ACME_SOLVER } from "../components/apps/app-render";
import { appEntryPoints, REDIRECT_PRIORITY, traefikValues } from "../components/ingress/ingress";
import type { Render } from "../tools/render";
import { ofType, plain, render } from "./support/stack";

type Values = Record<string, unknown>;
const CHART_DEFAULTS = parse(fs.readFileSync(path.join(__dirname, "contracts", "upstream", "traefik-values.yaml"), "utf8")) as Values;

/** Helm's merge of user values over chart defaults: maps merge key by key, anything else replaces. */
function helmMerge(base: unknown, over: unknown): unknown {
    if (typeof base !== "object" || base === null || Array.isArray(base) || typeof over !== "object" || over === null || Array.isArray(over)) {
        return over === undefined ? base : over;
    }
    const out: Values = { ...(base as Values) };
    for (const [k, v] of Object.entries(over as Values)) out[k] = v === null ? undefined : helmMerge(out[k], v);
    return out;
}

interface Port { exposedPort?: number; hostPort?: number; http?: { tls?: { enabled?: boolean }; redirections?: { entryPoint?: { to: string; scheme?: string; priority?: number; permanent?: boolean } } } }

/**
 * The redirect arguments as templates/_podtemplate.tpl (v39.0.5, lines 653-672)
 * renders them: `to` is the target entry point's exposedPort, priority only when set.
 */
function chartRedirectArgs(values: Values): string[] {
    const ports = values.ports as Record<string, Port>;
    const args: string[] = [];
    for (const [ep, port] of Object.entries(ports)) {
        const r = port?.http?.redirections?.entryPoint;
        // `with` in a Go template skips an empty map (the chart's default is `entryPoint: {}`).
        if (!r || Object.keys(r).length === 0) continue;
        const target = ports[r.to];
        assert.ok(target, `ERROR: Cannot redirect ${ep} to ${r.to}: entryPoint not found`);
        assert.ok(!(target.http?.tls?.enabled && r.scheme && r.scheme !== "https"), `Cannot redirect ${ep} to ${r.to} without setting scheme to https`);
        args.push(`--entryPoints.${ep}.http.redirections.entryPoint.to=:${target.exposedPort}`);
        if (r.scheme) args.push(`--entryPoints.${ep}.http.redirections.entryPoint.scheme=${r.scheme}`);
        if (r.priority) args.push(`--entryPoints.${ep}.http.redirections.entryPoint.priority=${r.priority}`);
        if (r.permanent !== undefined) args.push(`--entryPoints.${ep}.http.redirections.entryPoint.permanent=${r.permanent}`);
    }
    return args;
}

/** traefik v3.6 pkg/provider/traefik/internal.go: the redirect router's default priority is math.MaxInt - 1. */
const TRAEFIK_DEFAULT_REDIRECT_PRIORITY = Number.MAX_SAFE_INTEGER;

interface Router { name: string; priority: number; matches(host: string, urlPath: string): boolean }

/**
 * The routers Traefik builds on the `web` entry point: the redirect (a
 * catch-all, pkg/provider/traefik/internal.go) and one per Ingress path bound
 * to `web` (all entry points unless router.entrypoints says otherwise); an
 * Ingress router's priority is its rule's length (pkg/muxer/http/mux.go
 * GetRulePriority). The highest priority among matching routers wins.
 */
function webRouters(redirectArgs: string[], ingresses: { name: string; annotations: Record<string, string>; host: string; path: string; pathType: "Exact" | "Prefix" }[]): Router[] {
    const routers: Router[] = [];
    if (redirectArgs.some((a) => a.startsWith("--entryPoints.web.http.redirections.entryPoint.to="))) {
        const p = redirectArgs.find((a) => a.startsWith("--entryPoints.web.http.redirections.entryPoint.priority="));
        routers.push({ name: "web-to-websecure@internal", priority: p ? Number(p.split("=")[1]) : TRAEFIK_DEFAULT_REDIRECT_PRIORITY, matches: () => true });
    }
    for (const ing of ingresses) {
        const entryPoints = ing.annotations["traefik.ingress.kubernetes.io/router.entrypoints"];
        if (entryPoints && !entryPoints.split(",").includes("web")) continue;
        const rule = `Host(\`${ing.host}\`) && ${ing.pathType === "Exact" ? "Path" : "PathPrefix"}(\`${ing.path}\`)`;
        routers.push({
            name: ing.name,
            priority: rule.length,
            matches: (host, urlPath) => host === ing.host && (ing.pathType === "Exact" ? urlPath === ing.path : urlPath.startsWith(ing.path)),
        });
    }
    return routers;
}

function route(routers: Router[], host: string, urlPath: string): string | undefined {
    return routers.filter((r) => r.matches(host, urlPath)).sort((a, b) => b.priority - a.priority)[0]?.name;
}

function traefikConfig(r: Render): { values: Values; merged: Values } {
    const config = ofType(r, "kubernetes:helm.cattle.io/v1:HelmChartConfig").find((c) => (plain(c.inputs.metadata) as { name: string }).name === "traefik");
    assert.ok(config);
    const values = parse((plain(config.inputs.spec) as { valuesContent: string }).valuesContent) as Values;
    return { values, merged: helmMerge(CHART_DEFAULTS, values) as Values };
}

describe("HTTP to HTTPS redirect (Traefik chart contract)", () => {
    let prod: Render;
    before(async () => {
        prod = await render("prod");
    });

    it("goes through the chart's redirections values; no CLI redirect flags remain", () => {
        const { values } = traefikConfig(prod);
        assert.ok(!((values.additionalArguments ?? []) as string[]).some((a) => /redirections/i.test(a)));
        assert.deepEqual((values.ports as Record<string, Port>).web.http?.redirections?.entryPoint, { to: "websecure", scheme: "https", permanent: true, priority: REDIRECT_PRIORITY });
    });

    it("redirects to the port clients connect to (443), which Let's Encrypt follows, not Traefik's container port (8443)", () => {
        const { merged } = traefikConfig(prod);
        const args = chartRedirectArgs(merged);
        assert.ok(args.includes("--entryPoints.web.http.redirections.entryPoint.to=:443"), args.join(" "));
        const ports = merged.ports as Record<string, Port & { port: number }>;
        assert.equal(ports.websecure.port, 8443, "the chart's container port, where a redirect `to: websecure` passed to Traefik itself would point");
        // What the node (hostPort) and the load balancer (listen 443 -> 443) serve HTTPS on.
        assert.equal(ports.websecure.hostPort, 443);
    });

    it("an HTTP-01 challenge on port 80 reaches cert-manager's solver; everything else on port 80 is redirected", () => {
        const { merged } = traefikConfig(prod);
        const ing = ofType(prod, "kubernetes:networking.k8s.io/v1:Ingress")[0];
        const meta = plain(ing.inputs.metadata) as { name: string; annotations: Record<string, string> };
        const token = "x".repeat(43);
        const ingresses = [
            { name: meta.name, annotations: meta.annotations, host: "api.example.com", path: "/", pathType: "Prefix" as const },
            // cert-manager v1.19.1 pkg/issuer/acme/http/ingress.go: no annotations of ours, pathType Exact.
            { name: "cm-acme-http-solver", annotations: {}, host: "api.example.com", path: `/.well-known/acme-challenge/${token}`, pathType: "Exact" as const },
        ];
        const routers = webRouters(chartRedirectArgs(merged), ingresses);
        assert.equal(route(routers, "api.example.com", `/.well-known/acme-challenge/${token}`), "cm-acme-http-solver");
        assert.equal(route(routers, "api.example.com", "/items"), "web-to-websecure@internal");
        assert.equal(route(routers, "api.example.com", "/"), "web-to-websecure@internal");
    });

    it("with Traefik's default redirect priority, the solver would never be reached on port 80", () => {
        const { merged } = traefikConfig(prod);
        const withoutPriority = chartRedirectArgs(merged).filter((a) => !a.includes(".priority="));
        const routers = webRouters(withoutPriority, [{ name: "solver", annotations: {}, host: "a.example.com", path: "/.well-known/acme-challenge/t", pathType: "Exact" }]);
        assert.equal(route(routers, "a.example.com", "/.well-known/acme-challenge/t"), "web-to-websecure@internal");
    });

    it("binds app Ingresses to HTTPS only, or to HTTP when a CDN terminates TLS, and serves the solver over ClusterIP", async () => {
        assert.equal(appEntryPoints(true), "websecure");
        assert.equal(appEntryPoints(false), "web");
        const off = await render("prod", { "platform:tls": "off" });
        const annotations = (r: Render) => (plain(ofType(r, "kubernetes:networking.k8s.io/v1:Ingress")[0].inputs.metadata) as { annotations: Record<string, string> }).annotations;
        assert.equal(annotations(prod)["traefik.ingress.kubernetes.io/router.entrypoints"], "websecure");
        assert.equal(annotations(off)["traefik.ingress.kubernetes.io/router.entrypoints"], "web");
        assert.deepEqual(chartRedirectArgs(traefikConfig(off).merged), [], "no redirect when TLS is off");
        const issuer = ofType(prod, "kubernetes:cert-manager.io/v1:ClusterIssuer")[0];
        const solver = (plain(issuer.inputs.spec) as { acme: { solvers: { http01: { ingress: { serviceType: string; ingressClassName: string } } }[] } }).acme.solvers[0];
        assert.deepEqual(solver.http01.ingress, { ingressClassName: "traefik", serviceType: "ClusterIP" });
        assert.equal(ACME_SOLVER.port, 8089);
    });

    it("publishes the load balancer's address as Ingress status instead of its address-less ClusterIP Service", () => {
        const v = traefikValues({ redirectToHttps: true, publishedIp: "192.0.2.1" }) as { providers: unknown; additionalArguments: string[] };
        assert.deepEqual(v.providers, { kubernetesIngress: { publishedService: { enabled: false } } });
        assert.ok(v.additionalArguments.includes("--providers.kubernetesingress.ingressendpoint.ip=192.0.2.1"));
        const none = traefikValues({ redirectToHttps: true }) as { providers: unknown; additionalArguments: string[] };
        assert.ok(!none.additionalArguments.some((a) => a.includes("ingressendpoint")));
    });

    it("trusts PROXY protocol only from the load balancer", () => {
        const v = traefikValues({ redirectToHttps: false, proxyProtocolFrom: ["10.0.1.5/32"] }) as { additionalArguments: string[]; deployment: { kind: string }; service: { type: string } };
        assert.ok(v.additionalArguments.includes("--entryPoints.websecure.proxyProtocol.trustedIPs=10.0.1.5/32"));
        assert.ok(v.additionalArguments.includes("--entryPoints.web.forwardedHeaders.trustedIPs=10.0.1.5/32"));
        assert.equal(v.deployment.kind, "DaemonSet");
        assert.equal(v.service.type, "ClusterIP", "no cloud load balancer bought for Traefik's Service");
    });
});
