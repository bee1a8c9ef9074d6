// Stack config validation: every bad setting is reported, with its key and the
// command that fixes it, before any resource exists.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ConfigError, ConfigProblem, DEFAULTS, parseConfig, parseIpv4Cidr, RawConfig, SETTING_KEYS } from "../components/config";

const TOKEN = "test-token-value";

function raw(values: Record<string, unknown>, hcloudToken: string | undefined = TOKEN): RawConfig {
    return { stack: "prod", values: { adminCidrs: '["198.51.100.7/32"]', ...values }, hcloudToken };
}

function problemsOf(values: Record<string, unknown>, hcloudToken?: string): readonly ConfigProblem[] {
    try {
        parseConfig(raw(values, hcloudToken));
    } catch (err) {
        assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
        return err.problems;
    }
    assert.fail("config was accepted");
}

/** Asserts exactly one problem, on `key`, whose message matches and whose fix is a config command. */
function expectProblem(values: Record<string, unknown>, key: string, message: RegExp): void {
    const problems = problemsOf(values);
    assert.deepEqual(problems.map((p) => p.key), [key], JSON.stringify(problems, null, 2));
    assert.match(problems[0].message, message);
    assert.match(problems[0].fix, /^pulumi config (set|rm) /);
}

describe("parseConfig", () => {
    it("accepts the defaults with an admin network and a token", () => {
        const config = parseConfig(raw({}));
        assert.equal(config.mode, "hetzner");
        if (config.mode !== "hetzner") return;
        assert.equal(config.cluster.name, "prod");
        assert.equal(config.cluster.controlPlane.count, 3);
        assert.equal(config.cluster.controlPlane.serverType, "cx33");
        assert.equal(config.cluster.networkZone, "eu-central");
        assert.equal(config.cluster.k3sVersion, DEFAULTS.k3sVersion);
        assert.deepEqual(config.cluster.adminCidrs, ["198.51.100.7/32"]);
        assert.equal(config.cluster.etcdSnapshots.s3, undefined);
    });

    it("parses values as `pulumi config set` stores them (strings) and as --path sets them (typed)", () => {
        const fromStrings = parseConfig(raw({ controlPlaneCount: "5", loadBalancer: "true", agentCount: "2" }));
        const typed = parseConfig(raw({ controlPlaneCount: 5, loadBalancer: true, agentCount: 2, adminCidrs: ["198.51.100.7/32"] }));
        assert.deepEqual(fromStrings, typed);
        assert.ok(fromStrings.mode === "hetzner" && fromStrings.cluster.loadBalancer.enabled);
    });

    it("rejects an unknown location", () => {
        expectProblem({ location: "mars1" }, "platform:location", /must be a Hetzner location: fsn1/);
    });

    it("rejects an unknown server type and lists the known ones", () => {
        expectProblem({ controlPlaneServerType: "cx99" }, "platform:controlPlaneServerType", /unknown Hetzner server type 'cx99'.*cx33/);
    });

    it("rejects a server type not sold in the location", () => {
        expectProblem({ location: "ash", controlPlaneServerType: "cx33" }, "platform:controlPlaneServerType", /not sold in ash/);
    });

    it("checks the agent server type only when there are agents", () => {
        parseConfig(raw({ agentServerType: "nope" }));
        expectProblem({ agentServerType: "nope", agentCount: "1" }, "platform:agentServerType", /unknown Hetzner server type/);
    });

    for (const count of [2, 4, 6]) {
        it(`rejects ${count} control-plane servers (etcd quorum)`, () => {
            expectProblem({ controlPlaneCount: String(count) }, "platform:controlPlaneCount", new RegExp(`must be odd.*got ${count}`));
        });
    }

    it("rejects counts out of range", () => {
        expectProblem({ controlPlaneCount: "9" }, "platform:controlPlaneCount", /at most 7/);
        expectProblem({ controlPlaneCount: "0" }, "platform:controlPlaneCount", /at least 1/);
        expectProblem({ agentCount: "101" }, "platform:agentCount", /at most 100/);
        expectProblem({ agentCount: "-1" }, "platform:agentCount", /at least 0/);
        expectProblem({ agentCount: "two" }, "platform:agentCount", /whole number/);
        expectProblem({ etcdSnapshotRetention: "1.5" }, "platform:etcdSnapshotRetention", /whole number/);
    });

    it("rejects malformed k3s versions", () => {
        for (const version of ["1.34.6", "v1.34", "v1.34.6", "latest", "v1.34.6-k3s1"]) {
            expectProblem({ k3sVersion: version }, "platform:k3sVersion", /pinned k3s release such as v1\.34\.6\+k3s1/);
        }
    });

    it("rejects invalid CIDRs, naming the list index", () => {
        expectProblem({ adminCidrs: '["198.51.100.7/32", "10.0.0.300/32"]' }, "platform:adminCidrs[1]", /CIDR/);
        expectProblem({ networkCidr: "10.0.0.0/33" }, "platform:networkCidr", /CIDR/);
        expectProblem({ networkCidr: "10.0.0.1/16" }, "platform:networkCidr", /no host bits/);
        expectProblem({ subnetCidr: "10.1.1.0/24" }, "platform:subnetCidr", /not inside networkCidr 10\.0\.0\.0\/16/);
        expectProblem({ networkCidr: "10.42.0.0/16", subnetCidr: "10.42.1.0/24" }, "platform:networkCidr", /10\.42\.0\.0\/16 overlaps k3s.s pod\/service range 10\.42\.0\.0\/16/);
    });

    it("accepts IPv6 admin networks", () => {
        const config = parseConfig(raw({ adminCidrs: '["2001:db8::/48"]' }));
        assert.ok(config.mode === "hetzner");
        assert.deepEqual(config.cluster.adminCidrs, ["2001:db8::/48"]);
    });

    it("requires admin networks in hetzner mode and refuses the whole internet", () => {
        try {
            parseConfig({ stack: "prod", values: {}, hcloudToken: TOKEN });
            assert.fail("accepted");
        } catch (err) {
            assert.ok(err instanceof ConfigError);
            assert.deepEqual(err.problems.map((p) => p.key), ["platform:adminCidrs"]);
            assert.match(err.problems[0].fix, /pulumi config set --path 'platform:adminCidrs\[0\]'/);
        }
        expectProblem({ adminCidrs: '["0.0.0.0/0"]' }, "platform:adminCidrs[0]", /whole internet/);
        expectProblem({ adminCidrs: "[]" }, "platform:adminCidrs", /empty/);
    });

    it("requires a Hetzner token in hetzner mode and says how to set it", () => {
        const problems = problemsOf({}, "");
        assert.deepEqual(problems.map((p) => p.key), ["hcloud:token"]);
        assert.match(problems[0].fix, /pulumi config set --secret hcloud:token/);
        assert.match(problems[0].fix, /HCLOUD_TOKEN/);
    });

    it("needs neither token nor admin networks in existing mode", () => {
        const config = parseConfig({ stack: "local", values: { mode: "existing", kubeContext: "k3d-platform" }, hcloudToken: undefined });
        assert.equal(config.mode, "existing");
        assert.deepEqual(config.cluster, { name: "local", kubeconfig: undefined, context: "k3d-platform" });
    });

    it("reports every problem together, per-key and cross-key", () => {
        const problems = problemsOf({ location: "mars", controlPlaneCount: "2", k3sVersion: "1.34", agentCount: "500", adminCidrs: '["nope"]' }, "");
        assert.deepEqual(problems.map((p) => p.key).sort(), [
            "hcloud:token", "platform:adminCidrs[0]", "platform:agentCount", "platform:controlPlaneCount",
            "platform:k3sVersion", "platform:location",
        ]);
    });

    it("reports a misspelt setting with the likely intended key", () => {
        expectProblem({ controlPlaneCont: "3" }, "platform:controlPlaneCont", /unknown setting; did you mean platform:controlPlaneCount\?/);
    });

    it("needs all of the etcd S3 settings or none", () => {
        const problems = problemsOf({ etcdS3Bucket: "snapshots" });
        assert.deepEqual(problems.map((p) => p.key), ["platform:etcdS3AccessKey", "platform:etcdS3SecretKey"]);
        assert.match(problems[1].fix, /--secret/);
        const config = parseConfig(raw({ etcdS3Bucket: "snapshots", etcdS3AccessKey: "AK", etcdS3SecretKey: "SK" }));
        assert.ok(config.mode === "hetzner");
        assert.deepEqual(config.cluster.etcdSnapshots.s3, {
            endpoint: "fsn1.your-objectstorage.com", bucket: "snapshots", folder: "etcd", region: "fsn1", accessKey: "AK", secretKey: "SK",
        });
    });

    it("needs the load balancer before it can carry the API", () => {
        expectProblem({ loadBalancerApi: "true" }, "platform:loadBalancerApi", /needs the load balancer/);
    });

    it("never echoes a secret value in a problem", () => {
        const problems = problemsOf({ etcdS3SecretKey: "very-secret-key-123", kubeconfig: "" });
        assert.ok(!JSON.stringify(problems).includes("very-secret-key-123"));
    });

    it("derives a DNS-safe cluster name from the stack", () => {
        const config = parseConfig({ stack: "Team_API.prod", values: { adminCidrs: '["198.51.100.7/32"]' }, hcloudToken: TOKEN });
        assert.equal(config.cluster.name, "team-api-prod");
    });
});

describe("parseIpv4Cidr", () => {
    it("parses networks and rejects host bits and bad octets", () => {
        assert.deepEqual(parseIpv4Cidr("10.0.1.0/24"), { network: 10 * 2 ** 24 + 256, prefix: 24 });
        assert.equal(parseIpv4Cidr("10.0.1.1/24"), undefined);
        assert.equal(parseIpv4Cidr("256.0.0.0/8"), undefined);
        assert.equal(parseIpv4Cidr("10.0.0.0"), undefined);
    });
});

describe("README configuration reference", () => {
    const readme = fs.readFileSync(path.join(__dirname, "..", "README.md"), "utf8");

    it("documents every setting the program accepts, with its default", () => {
        for (const key of SETTING_KEYS) {
            assert.match(readme, new RegExp(`\\| \`${key}\`[^|]*\\|`), `README lacks ${key}`);
        }
        for (const [key, value] of Object.entries(DEFAULTS)) {
            const row = readme.split("\n").find((l) => l.startsWith(`| \`${key}\` |`));
            assert.ok(row?.includes(`\`${String(value)}\``), `README default of ${key} should be ${String(value)}: ${row}`);
        }
    });
});
