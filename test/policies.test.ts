// The policy pack (policies/): every rule's contract, each rule passing on the
// shipped stacks and failing on a mutation that breaks it, run through the real
// analyzer function (tools/policy.ts), and the offline runner as a user runs it.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { ALL_POLICIES } from "../policies/rules";
import { checkResources } from "../tools/policy";
import type { RenderedResource } from "../tools/render";
import { run } from "./support/binaries";
import { PROJECT_DIR, render } from "./support/stack";

/** A value no message may repeat: policies see every input in plain text. */
const MARKER = "marker-value-7f3a";

type Mutation = (resources: RenderedResource[]) => void;

const inputsOf = (resources: RenderedResource[], name: string) => {
    const r = resources.find((x) => x.name === name);
    assert.ok(r, name);
    // Fixtures edit arbitrary JSON: no narrower type exists for it.
    return r.inputs as Record<string, any>;
};

/** Per rule: a mutation of the prod render that must violate it (and only it). */
const MUTATIONS: Record<string, Mutation> = {
    "pinned-images": (rs) => {
        inputsOf(rs, "api-deployment").spec.template.spec.containers[0].image = `ghcr.io/acme/${MARKER}:latest`;
    },
    "http-probes": (rs) => {
        delete inputsOf(rs, "api-deployment").spec.template.spec.containers[0].readinessProbe;
    },
    "pdb-never-blocks-drains": (rs) => {
        inputsOf(rs, "api-pdb").spec.maxUnavailable = 0;
    },
    "no-world-open-admin-ports": (rs) => {
        inputsOf(rs, "prod-fw").rules.push({ direction: "in", protocol: "tcp", port: "22", sourceIps: ["0.0.0.0/0"], description: MARKER });
    },
    "no-load-balancer-services": (rs) => {
        rs.push({ urn: "urn:pulumi:prod::platform::kubernetes:core/v1:Service::lb", type: "kubernetes:core/v1:Service", name: "lb", inputs: { metadata: { name: MARKER }, spec: { type: "LoadBalancer" } } });
    },
    "no-credentials-in-configmaps": (rs) => {
        inputsOf(rs, "api-env").data.STRIPE_API_KEY = MARKER;
    },
    "no-service-account-token": (rs) => {
        delete inputsOf(rs, "api-deployment").spec.template.spec.automountServiceAccountToken;
    },
    "zero-downtime-rollouts": (rs) => {
        inputsOf(rs, "api-deployment").spec.strategy.rollingUpdate.maxUnavailable = 1;
    },
    "requests-and-limits": (rs) => {
        delete inputsOf(rs, "api-deployment").spec.template.spec.containers[0].resources.limits;
    },
    "no-host-ports": (rs) => {
        inputsOf(rs, "api-deployment").spec.template.spec.containers[0].ports[0].hostPort = 8080;
    },
    "no-literal-credential-env": (rs) => {
        inputsOf(rs, "api-deployment").spec.template.spec.containers[0].env = [{ name: "API_TOKEN", value: MARKER }];
    },
    "no-credentials-in-user-data": (rs) => {
        inputsOf(rs, "prod-server-1").userData += `\nwrite_files:\n  - path: /etc/k3s.env\n    content: K3S_TOKEN=${MARKER}\n`;
    },
    "servers-in-placement-groups": (rs) => {
        delete inputsOf(rs, "prod-server-1").placementGroupId;
    },
    "servers-ignore-boot-inputs": (rs) => {
        const server = rs.find((x) => x.name === "prod-server-1");
        assert.ok(server);
        rs[rs.indexOf(server)] = { ...server, ignoreChanges: ["sshKeys"] };
    },
    "pinned-charts": (rs) => {
        inputsOf(rs, "prod-addons-hcloud-csi").spec.version = "";
    },
    "pooler-highly-available": (rs) => {
        inputsOf(rs, "prod-database-pooler").spec.instances = 1;
    },
    "odd-control-plane": (rs) => {
        const third = rs.find((x) => x.name === "prod-server-3");
        assert.ok(third);
        rs.splice(rs.indexOf(third), 1);
    },
    "hetzner-labels": (rs) => {
        delete inputsOf(rs, "prod-fw").labels.stack;
    },
    "server-upgrades-one-at-a-time": (rs) => {
        inputsOf(rs, "prod-addons-upgrades-plan-server").spec.concurrency = 2;
    },
    "backups-and-drill-scheduled": (rs) => {
        inputsOf(rs, "prod-database-postgres-restore-drill").spec.suspend = true;
    },
    "ingress-tls": (rs) => {
        delete inputsOf(rs, "api-ingress").spec.tls;
    },
    "data-protected": (rs) => {
        const pvc = rs.find((x) => x.type === "kubernetes:core/v1:PersistentVolumeClaim");
        assert.ok(pvc);
        rs[rs.indexOf(pvc)] = { ...pvc, protect: false };
    },
};

describe("policy pack", () => {
    let prod: RenderedResource[];
    before(async () => {
        prod = (await render("prod")).resources;
    });
    const copy = () => JSON.parse(JSON.stringify(prod)) as RenderedResource[];

    it("every rule has a unique kebab-case name, one sentence, a level, a severity and a fix", () => {
        assert.equal(new Set(ALL_POLICIES.map((p) => p.name)).size, ALL_POLICIES.length);
        for (const p of ALL_POLICIES) {
            assert.match(p.name, /^[a-z]+(-[a-z0-9]+)*$/);
            assert.match(p.description, /^[A-Z`][^]*\.$/, p.name);
            assert.equal(p.description.split(/\.\s/).length, 1, `${p.name}: one sentence`);
            assert.ok(p.enforcementLevel === "mandatory" || p.enforcementLevel === "advisory", p.name);
            assert.ok(p.severity, p.name);
            assert.ok((p.remediationSteps ?? "").length > 20, p.name);
        }
        assert.deepEqual(Object.keys(MUTATIONS).sort(), ALL_POLICIES.map((p) => p.name).sort(), "a mutation per rule");
    });

    it("the shipped stacks pass with 0 mandatory violations", async () => {
        for (const stack of ["prod", "dev", "local"]) {
            const violations = await checkResources((await render(stack)).resources);
            assert.deepEqual(violations.filter((v) => v.level === "mandatory").map((v) => `${v.policy} ${v.name}`), [], stack);
        }
    });

    for (const [policy, mutate] of Object.entries(MUTATIONS)) {
        it(`${policy}: a mutation that breaks it is reported, naming the resource, without echoing a value`, async () => {
            const resources = copy();
            mutate(resources);
            const violations = await checkResources(resources);
            assert.deepEqual([...new Set(violations.map((v) => v.policy))], [policy]);
            const level = ALL_POLICIES.find((p) => p.name === policy)?.enforcementLevel;
            for (const v of violations) {
                assert.equal(v.level, level);
                assert.ok(!v.message.includes(MARKER), `${policy} echoes a value: ${v.message}`);
                assert.ok(v.fix.length > 0);
            }
        });
    }

    it("npm run policy -- --resources FILE exits 1 naming every broken rule; the clean file exits 0", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "policy-cli-"));
        try {
            const cli = (file: string) => run(path.join(PROJECT_DIR, "node_modules", ".bin", "tsx"), [path.join(PROJECT_DIR, "tools", "policy.ts"), "--resources", file], { cwd: PROJECT_DIR });
            const clean = path.join(dir, "clean.json");
            fs.writeFileSync(clean, JSON.stringify(prod));
            const ok = cli(clean);
            assert.equal(ok.status, 0, ok.stdout + ok.stderr);
            const broken = copy();
            for (const mutate of Object.values(MUTATIONS)) mutate(broken);
            const bad = path.join(dir, "bad.json");
            fs.writeFileSync(bad, JSON.stringify(broken));
            const r = cli(bad);
            assert.equal(r.status, 1);
            for (const p of ALL_POLICIES) assert.match(r.stdout, new RegExp(`^${p.enforcementLevel}: \\[${p.name}\\]`, "m"));
            assert.ok(!r.stdout.includes(MARKER));
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
