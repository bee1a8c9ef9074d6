// Policy config reconciled as the Pulumi CLI does it (pulumi/pulumi
// pkg/resource/analyzer/config.go ReconcilePolicyPackConfig at 1b5949891b3c):
// precedence of schema defaults, the pack's initial config and the file, `all`,
// the shallow merge, and what validation refuses.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePolicyConfig, type PolicyDescription, PolicyConfigError, policyConfigEntries, reconcilePolicyConfig } from "../tools/policy-config";

const POLICIES: PolicyDescription[] = [
    { name: "min-replicas", enforcementLevel: "mandatory", configSchema: { properties: { minReplicas: { type: "integer", default: 2 } } } },
    { name: "exempt", enforcementLevel: "mandatory", configSchema: { properties: { namespaces: { type: "array", default: ["kube-system", "system-upgrade"] } } } },
    { name: "hygiene", enforcementLevel: "advisory" },
    { name: "cap", enforcementLevel: "mandatory", configSchema: { properties: { max: { type: "number" } }, required: ["max"] } },
];
const file = (json: unknown) => parsePolicyConfig(JSON.stringify(json), "policy.json");
const withCap = { cap: { properties: { max: 60 } } };

describe("policy config reconciliation", () => {
    it("starts from each policy's level and schema defaults", () => {
        const r = reconcilePolicyConfig(POLICIES, withCap, {});
        assert.deepEqual(r["min-replicas"], { enforcementLevel: "mandatory", properties: { minReplicas: 2 } });
        assert.deepEqual(r.hygiene, { enforcementLevel: "advisory", properties: {} });
        assert.deepEqual(r.exempt.properties, { namespaces: ["kube-system", "system-upgrade"] });
    });

    it("the file beats the pack's initial config, which beats the defaults; properties merge per top-level key", () => {
        const initial = { ...withCap, "min-replicas": { enforcementLevel: "advisory" as const, properties: { minReplicas: 3 } } };
        const fromInitial = reconcilePolicyConfig(POLICIES, initial, {});
        assert.deepEqual(fromInitial["min-replicas"], { enforcementLevel: "advisory", properties: { minReplicas: 3 } });
        const fromFile = reconcilePolicyConfig(POLICIES, initial, file({ "min-replicas": { minReplicas: 1 }, exempt: { namespaces: ["kube-system"] } }));
        // The file sets no level: the initial config's stays.
        assert.deepEqual(fromFile["min-replicas"], { enforcementLevel: "advisory", properties: { minReplicas: 1 } });
        // A list is replaced whole, not merged.
        assert.deepEqual(fromFile.exempt.properties, { namespaces: ["kube-system"] });
    });

    it("`all` sets every level first; a policy's own entry in the same layer wins; only levels, never properties", () => {
        const r = reconcilePolicyConfig(POLICIES, withCap, file({ all: "disabled", hygiene: "mandatory" }));
        assert.equal(r["min-replicas"].enforcementLevel, "disabled");
        assert.equal(r.cap.enforcementLevel, "disabled");
        assert.equal(r.hygiene.enforcementLevel, "mandatory");
        // The file's `all` also beats a per-policy level from the initial config (a lower layer).
        const layered = reconcilePolicyConfig(POLICIES, { ...withCap, hygiene: { enforcementLevel: "mandatory", properties: {} } }, file({ all: "advisory" }));
        assert.equal(layered.hygiene.enforcementLevel, "advisory");
        assert.deepEqual(reconcilePolicyConfig(POLICIES, withCap, file({ all: { enforcementLevel: "advisory", minReplicas: 9 } }))["min-replicas"].properties, { minReplicas: 2 });
    });

    it("validates the merged result against each schema, defaults filled in, extra properties allowed", () => {
        assert.throws(() => reconcilePolicyConfig(POLICIES, {}, {}), /cap: must have required property 'max'/);
        assert.throws(() => reconcilePolicyConfig(POLICIES, withCap, file({ "min-replicas": { minReplicas: "two" } })), /min-replicas: minReplicas must be integer/);
        assert.doesNotThrow(() => reconcilePolicyConfig(POLICIES, withCap, file({ "min-replicas": { minReplicas: 1, note: "single node" } })));
    });

    it("refuses what the CLI refuses: unknown levels, entries of the wrong shape, a nameless entry without a level", () => {
        assert.throws(() => file({ hygiene: "strict" }), /policy\.json: hygiene: 'strict' is not an enforcement level/);
        assert.throws(() => file({ hygiene: { enforcementLevel: "hard" } }), /hygiene\.enforcementLevel: 'hard' is not an enforcement level/);
        assert.throws(() => file({ hygiene: 3 }), /hygiene: must be an enforcement level or an object/);
        assert.throws(() => file([1]), /must be a JSON object of policy names/);
        assert.throws(() => parsePolicyConfig("{", "policy.json"), PolicyConfigError);
        assert.throws(() => reconcilePolicyConfig(POLICIES, withCap, file({ "min-replica": { minReplicas: 1 } })), /min-replica: no enforcement level/);
        // A name outside the pack with a level is passed on, as the CLI does.
        assert.equal(reconcilePolicyConfig(POLICIES, withCap, file({ "min-replica": "advisory" }))["min-replica"].enforcementLevel, "advisory");
    });

    it("treats an empty file as no config and drops empty entries", () => {
        assert.deepEqual(parsePolicyConfig("  \n", "policy.json"), {});
        assert.deepEqual(policyConfigEntries({ hygiene: {} }, "initial"), {});
    });
});
