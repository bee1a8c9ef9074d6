// The policy pack (policies/): every rule's contract, each rule passing on the
// shipped stacks and failing on a mutation that breaks it, run through the real
// analyzer function (tools/policy.ts), and the offline runner as a user runs it.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { ALL_POLICIES } from "../policies/rules";
import { analyzeWith, checkResources, policyConfig, stackPolicyConfigFile, type Violation } from "../tools/policy";
import type { RenderedResource } from "../tools/render";
import { run } from "./support/binaries";
import { ServedPolicyPack } from "./support/served-pack";
import { PROJECT_DIR, render } from "./support/stack";

/** A value no message may repeat: policies see every input in plain text. */
const MARKER = "marker-value-7f3a";

type Mutation = (resources: RenderedResource[]) => void;

const find = (resources: RenderedResource[], name: string) => {
    const r = resources.find((x) => x.name === name);
    assert.ok(r, name);
    return r;
};
// Fixtures edit arbitrary JSON: no narrower type exists for it.
const inputsOf = (resources: RenderedResource[], name: string) => find(resources, name).inputs as Record<string, any>;
const apiContainer = (rs: RenderedResource[]) => inputsOf(rs, "api-deployment").spec.template.spec.containers[0];
const replace = (rs: RenderedResource[], name: string, change: Partial<RenderedResource>) => {
    const r = find(rs, name);
    rs[rs.indexOf(r)] = { ...r, ...change };
};
const remove = (rs: RenderedResource[], name: string) => {
    rs.splice(rs.indexOf(find(rs, name)), 1);
};
const add = (rs: RenderedResource[], type: string, name: string, inputs: Record<string, unknown>) => {
    rs.push({ urn: `urn:pulumi:prod::platform::${type}::${name}`, type, name, inputs });
};

/** Per rule: mutations of the prod render, each a different way to break it (and nothing else). */
const MUTATIONS: Record<string, Mutation[]> = {
    "pinned-images": [
        (rs) => { apiContainer(rs).image = `ghcr.io/acme/${MARKER}:latest`; },
        (rs) => { apiContainer(rs).image = `ghcr.io/acme/${MARKER}`; },
    ],
    "http-probes": [
        (rs) => { delete apiContainer(rs).startupProbe; },
        (rs) => { delete apiContainer(rs).readinessProbe; },
        (rs) => { apiContainer(rs).livenessProbe.httpGet.path = apiContainer(rs).readinessProbe.httpGet.path; },
    ],
    "pdb-never-blocks-drains": [
        (rs) => { inputsOf(rs, "api-pdb").spec.maxUnavailable = 0; },
        (rs) => { inputsOf(rs, "api-pdb").spec = { minAvailable: "100%", selector: inputsOf(rs, "api-pdb").spec.selector }; },
    ],
    "no-world-open-admin-ports": [
        (rs) => { inputsOf(rs, "prod-fw").rules.push({ direction: "in", protocol: "tcp", port: "22", sourceIps: ["0.0.0.0/0"], description: MARKER }); },
        (rs) => { inputsOf(rs, "prod-fw").rules.push({ direction: "in", protocol: "tcp", port: "6443", sourceIps: ["::/0"], description: MARKER }); },
        (rs) => { inputsOf(rs, "prod-fw").rules.push({ direction: "in", protocol: "tcp", port: "1-65535", sourceIps: ["10.0.0.0/00"], description: MARKER }); },
    ],
    "no-load-balancer-services": [
        (rs) => { add(rs, "kubernetes:core/v1:Service", "lb", { metadata: { name: MARKER }, spec: { type: "LoadBalancer" } }); },
        (rs) => { add(rs, "kubernetes:core/v1:Service", "np", { metadata: { name: MARKER }, spec: { type: "NodePort" } }); },
    ],
    "no-credentials-in-configmaps": [
        (rs) => { inputsOf(rs, "api-env").data.STRIPE_API_KEY = MARKER; },
        (rs) => { inputsOf(rs, "api-env").data.SMTP_PASSWORD = MARKER; },
    ],
    "no-service-account-token": [
        (rs) => { delete inputsOf(rs, "api-deployment").spec.template.spec.automountServiceAccountToken; },
    ],
    "zero-downtime-rollouts": [
        (rs) => { inputsOf(rs, "api-deployment").spec.strategy.rollingUpdate.maxUnavailable = 1; },
        (rs) => { inputsOf(rs, "api-deployment").spec.strategy = { type: "Recreate" }; },
    ],
    "requests-and-limits": [
        (rs) => { delete apiContainer(rs).resources.limits; },
        (rs) => { delete apiContainer(rs).resources.requests.cpu; },
    ],
    // In a namespace exempt from the restricted profile (which forbids host ports too).
    "no-host-ports": [
        (rs) => { inputsOf(rs, "prod-ingress-traefik-crds-wait").spec.template.spec.containers[0].ports = [{ containerPort: 8080, hostPort: 8080 }]; },
    ],
    "no-literal-credential-env": [
        (rs) => { apiContainer(rs).env = [{ name: "API_TOKEN", value: MARKER }]; },
        (rs) => { apiContainer(rs).env = [{ name: "DATABASE_URL", value: `postgresql://u:${MARKER}@h/db` }]; },
    ],
    "no-credentials-in-user-data": [
        (rs) => { inputsOf(rs, "prod-server-1").userData += `\nwrite_files:\n  - path: /etc/k3s.env\n    content: K3S_TOKEN=${MARKER}\n`; },
        (rs) => { inputsOf(rs, "prod-server-1").userData += `\n# -----BEGIN OPENSSH PRIVATE KEY-----\n# ${MARKER}\n`; },
    ],
    "servers-in-placement-groups": [
        (rs) => { delete inputsOf(rs, "prod-server-1").placementGroupId; },
    ],
    "servers-ignore-boot-inputs": [
        (rs) => replace(rs, "prod-server-1", { ignoreChanges: ["sshKeys", "image"] }),
        (rs) => replace(rs, "prod-server-1", { ignoreChanges: ["userData"] }),
    ],
    "pinned-charts": [
        (rs) => { inputsOf(rs, "prod-addons-hcloud-csi").spec.version = ""; },
        (rs) => { delete inputsOf(rs, "prod-database-cnpg").version; },
    ],
    "pooler-highly-available": [
        (rs) => { inputsOf(rs, "prod-database-pooler").spec.instances = 1; },
    ],
    "odd-control-plane": [
        (rs) => remove(rs, "prod-server-3"),
    ],
    "hetzner-labels": [
        (rs) => { delete inputsOf(rs, "prod-fw").labels.stack; },
        (rs) => { delete inputsOf(rs, "prod-server-1").labels["managed-by"]; },
    ],
    "server-upgrades-one-at-a-time": [
        (rs) => { inputsOf(rs, "prod-addons-upgrades-plan-server").spec.concurrency = 2; },
    ],
    "backups-and-drill-scheduled": [
        (rs) => { inputsOf(rs, "prod-database-postgres-restore-drill").spec.suspend = true; },
        (rs) => remove(rs, "prod-database-postgres-backup"),
    ],
    "ingress-tls": [
        (rs) => { delete inputsOf(rs, "api-ingress").spec.tls; },
    ],
    "data-protected": [
        (rs) => replace(rs, "prod-database-backups", { protect: false }),
        (rs) => replace(rs, "prod-database-cluster", { protect: false }),
    ],
    "min-replicas": [
        (rs) => {
            add(rs, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "api-hpa", {
                metadata: { name: "api", namespace: "api" },
                spec: { scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "api" }, minReplicas: 1, maxReplicas: 3 },
            });
        },
        (rs) => { inputsOf(rs, "api-deployment").spec.replicas = 1; },
    ],
    "restricted-pod-security": [
        (rs) => { apiContainer(rs).securityContext.privileged = true; },
        (rs) => { delete inputsOf(rs, "api-deployment").spec.template.spec.securityContext.runAsNonRoot; delete apiContainer(rs).securityContext.runAsNonRoot; },
        (rs) => { inputsOf(rs, "api-ns").metadata.labels["pod-security.kubernetes.io/enforce"] = "baseline"; },
    ],
    "probe-timeouts": [
        (rs) => { inputsOf(rs, "api-env").data.HEALTH_TIMEOUT = MARKER; },
        (rs) => { apiContainer(rs).readinessProbe.timeoutSeconds = 3; },
    ],
    "graceful-shutdown": [
        (rs) => { inputsOf(rs, "api-deployment").spec.template.spec.terminationGracePeriodSeconds = 30; },
        (rs) => { inputsOf(rs, "api-env").data.SHUTDOWN_TIMEOUT = "60s"; },
    ],
    "namespace-isolation": [
        (rs) => remove(rs, "api-allow-ingress-controller"),
        (rs) => { inputsOf(rs, "api-allow-ingress-controller").spec.ingress.push({ from: [{ namespaceSelector: {} }] }); },
        (rs) => { inputsOf(rs, "api-allow-acme-solver").spec.ingress[0].from = []; },
    ],
    "block-cloud-metadata": [
        (rs) => remove(rs, "api-deny-cloud-metadata"),
        (rs) => { inputsOf(rs, "api-deny-cloud-metadata").spec.egress[1].to[0].ipBlock.except = []; },
        (rs) => { inputsOf(rs, "prod-database-deny-cloud-metadata").spec.egress.push({}); },
    ],
    "protected-infrastructure": [
        (rs) => { inputsOf(rs, "prod-server-1").rebuildProtection = false; },
        (rs) => { inputsOf(rs, "prod-lb").deleteProtection = false; },
    ],
    "upgrade-plans-match-install": [
        (rs) => { inputsOf(rs, "prod-addons-upgrades-plan-agent").spec.version = "v1.35.0+k3s1"; },
        (rs) => { inputsOf(rs, "prod-server-2").userData = inputsOf(rs, "prod-server-2").userData.replace(/^(\s*-\s*)v\d+\.\d+\.\d+\+k3s\d+\s*$/m, "$1v1.33.9+k3s1"); },
    ],
    "off-site-backups": [
        (rs) => remove(rs, "prod-etcd-s3"),
        (rs) => { delete inputsOf(rs, "prod-database-cluster").spec.plugins; },
    ],
    "connection-budget": [
        (rs) => { inputsOf(rs, "api-env").data.DB_MAX_CONNECTIONS = "40"; },
        (rs) => { inputsOf(rs, "prod-database-pooler").spec.pgbouncer.parameters.default_pool_size = "60"; },
    ],
    "monthly-cost-cap": [
        (rs) => { for (const server of rs.filter((r) => r.type === "hcloud:index/server:Server")) (server.inputs as Record<string, any>).serverType = "cx53"; },
    ],
};

describe("policy pack", () => {
    let prod: RenderedResource[];
    const prodConfig = policyConfig(stackPolicyConfigFile("prod"));
    before(async () => {
        prod = (await render("prod")).resources;
    });
    const copy = () => JSON.parse(JSON.stringify(prod)) as RenderedResource[];

    it("every rule has a unique kebab-case name, one sentence, a level, a severity, a fix and described settings", () => {
        assert.equal(new Set(ALL_POLICIES.map((p) => p.name)).size, ALL_POLICIES.length);
        for (const p of ALL_POLICIES) {
            assert.match(p.name, /^[a-z]+(-[a-z0-9]+)*$/);
            assert.notEqual(p.name, "all", "a reserved name");
            assert.match(p.description, /^[A-Z`][^]*\.$/, p.name);
            assert.equal(p.description.split(/\.\s/).length, 1, `${p.name}: one sentence`);
            assert.ok(p.enforcementLevel === "mandatory" || p.enforcementLevel === "advisory", p.name);
            assert.ok(p.severity, p.name);
            assert.ok((p.remediationSteps ?? "").length > 20, p.name);
            for (const [key, schema] of Object.entries(p.configSchema?.properties ?? {})) {
                assert.ok((schema as { description?: string }).description, `${p.name}.${key} has a description`);
            }
        }
        assert.deepEqual(Object.keys(MUTATIONS).sort(), ALL_POLICIES.map((p) => p.name).sort(), "mutations for every rule");
    });

    it("the shipped stacks pass with 0 mandatory violations under their policy config", async () => {
        for (const stack of ["prod", "dev", "local"]) {
            const violations = await checkResources((await render(stack)).resources, policyConfig(stackPolicyConfigFile(stack)));
            assert.deepEqual(violations.filter((v) => v.level === "mandatory").map((v) => `${v.policy} ${v.name}`), [], stack);
        }
    });

    for (const [policy, mutations] of Object.entries(MUTATIONS)) {
        mutations.forEach((mutate, i) => {
            it(`${policy} (${i + 1}/${mutations.length}): a mutation that breaks it is reported at its level, without echoing a value`, async () => {
                const resources = copy();
                mutate(resources);
                const violations = await checkResources(resources, prodConfig);
                assert.deepEqual([...new Set(violations.map((v) => v.policy))], [policy]);
                for (const v of violations) {
                    assert.equal(v.level, prodConfig[policy].enforcementLevel);
                    assert.ok(!v.message.includes(MARKER), `${policy} echoes a value: ${v.message}`);
                    assert.ok(v.fix.length > 0);
                }
            });
        });
    }

    it("the pack served over gRPC as the CLI runs it reports what the offline runner reports, under the same config", async () => {
        const pack = await ServedPolicyPack.start();
        try {
            const info = await pack.info();
            assert.equal(info.getName(), "platform");
            assert.ok(info.getSupportsconfig());
            const served = info.getPoliciesList().map((p) => ({ name: p.getName(), level: p.getEnforcementlevel(), schema: p.getConfigschema()?.getProperties()?.toJavaScript() }));
            assert.deepEqual(served.map((p) => p.name), ALL_POLICIES.map((p) => p.name));
            for (const p of ALL_POLICIES) assert.deepEqual(served.find((x) => x.name === p.name)?.schema, p.configSchema?.properties ? JSON.parse(JSON.stringify(p.configSchema.properties)) : undefined, p.name);
            const broken = copy();
            for (const mutations of Object.values(MUTATIONS)) mutations[0](broken);
            for (const config of [prodConfig, policyConfig()]) {
                await pack.configure(config);
                const key = (v: Violation) => `${v.level} ${v.policy} ${v.urn} ${v.message}`;
                assert.deepEqual((await analyzeWith(pack, broken)).map(key).sort(), (await checkResources(broken, config)).map(key).sort());
            }
        } finally {
            pack.stop();
        }
    });

    describe("npm run policy", () => {
        const cli = (...args: string[]) => run(process.execPath, [path.join(PROJECT_DIR, "tools", "cli.cjs"), "policy", ...args], { cwd: PROJECT_DIR });
        let dir: string;
        before(() => {
            dir = fs.mkdtempSync(path.join(os.tmpdir(), "policy-cli-"));
        });
        after(() => fs.rmSync(dir, { recursive: true, force: true }));
        const write = (name: string, value: unknown) => {
            const file = path.join(dir, name);
            fs.writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value));
            return file;
        };

        it("--resources FILE exits 1 naming every broken rule at its configured level; the clean file exits 0", () => {
            const ok = cli("--resources", write("clean.json", prod));
            assert.equal(ok.status, 0, ok.stdout + ok.stderr);
            const broken = copy();
            for (const mutations of Object.values(MUTATIONS)) mutations[0](broken);
            const r = cli("--resources", write("bad.json", broken), "--config", path.join(PROJECT_DIR, "policies", "config", "prod.json"));
            assert.equal(r.status, 1);
            for (const p of ALL_POLICIES) assert.match(r.stdout, new RegExp(`^${prodConfig[p.name].enforcementLevel}: \\[${p.name}\\]`, "m"));
            assert.ok(!r.stdout.includes(MARKER));
        });

        it("applies a config file as the CLI does: levels, `all`, properties over schema defaults", () => {
            const broken = copy();
            MUTATIONS["min-replicas"][1](broken);
            MUTATIONS["ingress-tls"][0](broken);
            const file = write("broken.json", broken);
            assert.match(cli("--resources", file).stdout, /^mandatory: \[min-replicas\]/m);
            const lowered = cli("--resources", file, "--config", write("min1.json", { "min-replicas": { minReplicas: 1 } }));
            assert.doesNotMatch(lowered.stdout, /min-replicas/);
            assert.equal(lowered.status, 0);
            const all = cli("--resources", file, "--config", write("all.json", { all: "advisory", "ingress-tls": "mandatory" }));
            assert.match(all.stdout, /^advisory: \[min-replicas\]/m);
            assert.match(all.stdout, /^mandatory: \[ingress-tls\]/m);
            assert.equal(all.status, 1);
            const off = cli("--resources", file, "--config", write("off.json", { all: "disabled" }));
            assert.match(off.stdout, /no violations/);
        });

        it("refuses a config the CLI would refuse, naming the policy and the setting", () => {
            const file = write("clean.json", prod);
            const wrongType = cli("--resources", file, "--config", write("type.json", { "monthly-cost-cap": { maxMonthlyEur: "sixty" } }));
            assert.equal(wrongType.status, 1);
            assert.match(wrongType.stderr, /monthly-cost-cap: maxMonthlyEur must be number/);
            const badLevel = cli("--resources", file, "--config", write("level.json", { "min-replicas": "strict" }));
            assert.equal(badLevel.status, 1);
            assert.match(badLevel.stderr, /min-replicas: 'strict' is not an enforcement level/);
            const notJson = cli("--resources", file, "--config", write("broken.json", "{"));
            assert.equal(notJson.status, 1);
            assert.match(notJson.stderr, /broken\.json: not JSON/);
        });

        it("--stack NAME uses policies/config/NAME.json and says so", () => {
            const r = cli("--stack", "local");
            assert.equal(r.status, 0, r.stdout + r.stderr);
            assert.match(r.stdout, /^Policy config: policies\/config\/local\.json$/m);
            const without = cli("--stack", "local", "--config", write("empty.json", ""));
            assert.equal(without.status, 1);
            assert.match(without.stdout, /^mandatory: \[min-replicas\]/m);
        });
    });
});
