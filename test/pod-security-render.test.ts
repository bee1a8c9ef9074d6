// Pod Security Admission on the renders: every pod template in a namespace
// that enforces a level passes that level's checks as the admission plugin
// runs them (support/pod-security.ts, ported from Kubernetes v1.34
// pod-security-admission/policy), so no Deployment, Job or CronJob is
// created whose pods the API server would then refuse.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import type { Render } from "../tools/render";
import { checkPodSecurity, podTemplatesOf } from "../policies/rules/pod-security";
import { render } from "./support/stack";

interface K8sObject {
    kind: string;
    metadata: { name: string; namespace?: string; labels?: Record<string, string> };
    spec?: unknown;
}

const LEVEL_LABEL = "pod-security.kubernetes.io/enforce";

function objects(r: Render): K8sObject[] {
    return [...r.files].filter(([file]) => file.startsWith("k8s/")).map(([, text]) => parse(text) as K8sObject);
}

/** Violations of every workload in a namespace with an enforce label; `extra` adds levels for namespaces without one. */
function violations(r: Render, extra: Record<string, "restricted"> = {}): { checked: number; problems: string[] } {
    const objs = objects(r);
    const levels = new Map<string, string>(Object.entries(extra));
    for (const ns of objs.filter((o) => o.kind === "Namespace")) {
        const level = ns.metadata.labels?.[LEVEL_LABEL];
        if (level) levels.set(ns.metadata.name, level);
    }
    let checked = 0;
    const problems: string[] = [];
    for (const o of objs) {
        const level = levels.get(o.metadata.namespace ?? "");
        if (level !== "restricted" && level !== "baseline") continue;
        for (const template of podTemplatesOf(o)) {
            checked++;
            for (const v of checkPodSecurity(level, template.meta, template.spec)) {
                problems.push(`${o.kind} ${o.metadata.namespace}/${o.metadata.name}: ${v.check}: ${v.message}`);
            }
        }
    }
    return { checked, problems };
}

describe("pod security admission on the renders", () => {
    const renders: [string, Render][] = [];
    before(async () => {
        for (const stack of ["prod", "dev", "local"]) renders.push([stack, await render(stack)]);
    });

    it("app and database namespaces enforce the restricted level", () => {
        for (const [stack, r] of renders) {
            for (const ns of objects(r).filter((o) => o.kind === "Namespace" && o.metadata.name !== "system-upgrade")) {
                assert.equal(ns.metadata.labels?.[LEVEL_LABEL], "restricted", `${stack}: namespace ${ns.metadata.name}`);
            }
        }
    });

    it("every pod template in a restricted namespace passes the restricted checks; ours in kube-system too", () => {
        for (const [stack, r] of renders) {
            // kube-system enforces nothing, but the CRD wait Jobs we run there need no privilege either.
            const { checked, problems } = violations(r, stack === "local" ? {} : { "kube-system": "restricted" });
            assert.ok(checked > 0, `${stack}: no pod template checked`);
            assert.deepEqual(problems, [], stack);
        }
    });

    it("would catch a pod the admission plugin refuses", () => {
        const [, prod] = renders[0];
        const deployment = objects(prod).find((o) => o.kind === "Deployment" && o.metadata.namespace === "api");
        assert.ok(deployment);
        const [template] = podTemplatesOf(deployment);
        const [container] = template.spec.containers ?? [];
        assert.ok(container);
        const broken = { ...template.spec, containers: [{ ...container, securityContext: { ...container.securityContext, allowPrivilegeEscalation: true } }] };
        assert.deepEqual(checkPodSecurity("restricted", template.meta, broken).map((v) => v.check), ["allowPrivilegeEscalation"]);
    });
});
