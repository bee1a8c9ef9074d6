#!/usr/bin/env node
// The Pulumi SDK's own cost of the resources N agents add, with nothing of
// ours: per agent an hcloud Server (6 KB of user-data), its PrimaryIp and the
// remote Command that applies its k3s config (a 6 KB script, a secret stdin),
// registered under the SDK's mocks with stack traces off, as the render runs.
// Prints the milliseconds the registrations took. `npm run bench` runs it to
// show how much of the render's per-agent time is the SDK's.
// Usage: node tools/bench-sdk-floor.cjs N
"use strict";
const path = require("node:path");

require("node:module").enableCompileCache?.(path.join(__dirname, "..", ".cache", "v8"));
Error.stackTraceLimit = 0;
const pulumi = require("@pulumi/pulumi");
const hcloud = require("@pulumi/hcloud");
const command = require("@pulumi/command");

const agents = Number(process.argv[2]);
if (!Number.isInteger(agents) || agents < 0) {
    console.error("usage: node tools/bench-sdk-floor.cjs N");
    process.exit(1);
}
// As tools/mock-runtime.ts runs a program: no per-resource source positions.
pulumi.Resource.callsites = () => [];
const mocks = { newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }), call: () => ({}) };

async function main() {
    await pulumi.runtime.setMocks(mocks, "platform", "bench", false);
    const start = performance.now();
    await pulumi.runtime.runInPulumiStack(async () => {
        const userData = "#cloud-config\n".padEnd(6000, "x");
        const script = "#!/bin/sh\n".padEnd(6000, "y");
        const key = pulumi.secret("-----BEGIN OPENSSH PRIVATE KEY-----");
        for (let i = 1; i <= agents; i++) {
            const name = `bench-agent-${i}`;
            const ip = new hcloud.PrimaryIp(`${name}-ipv4`, { name: `${name}-ipv4`, type: "ipv4", assigneeType: "server", location: "fsn1", autoDelete: false, labels: { role: "agent" } });
            const server = new hcloud.Server(name, {
                name, serverType: "cx33", image: "debian-12", location: "fsn1", userData, labels: { role: "agent" },
                publicNets: [{ ipv4Enabled: true, ipv4: ip.id.apply(Number), ipv6Enabled: true }],
            });
            new command.remote.Command(`${name}-k3s-config`, {
                connection: { host: ip.ipAddress, user: "root", privateKey: key },
                create: script,
                stdin: pulumi.secret(ip.ipAddress.apply((a) => `node-ip: ${a}\n`)),
                triggers: [server.id],
            }, { dependsOn: [server] });
        }
        return {};
    });
    await pulumi.runtime.disconnect();
    console.log(`${agents} agents: ${(performance.now() - start).toFixed(0)} ms`);
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
