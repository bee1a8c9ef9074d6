// The mock runtime the render and the tests run the program under: what it
// changes in the Pulumi SDK for the length of a run, and that it puts it back.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { runProgram } from "../tools/mock-runtime";

/** The SDK's own per-resource source-position capture (a private static of @pulumi/pulumi resource.js). */
const sourcePosition = () => (pulumi.Resource as unknown as { stackTrace(skip: number): unknown[] }).stackTrace(0);

describe("mock runtime", () => {
    it("skips Pulumi's per-resource stack capture during a run (the mock monitor drops positions) and restores it after", async () => {
        assert.ok(sourcePosition().length > 0, "outside a run the SDK captures the caller's position");
        let during: unknown[] | undefined;
        const run = await runProgram({
            project: "platform",
            stack: "mock-runtime",
            config: {},
            secretKeys: [],
            program: () => {
                during = sourcePosition();
                const password = new random.RandomPassword("password", { length: 20 });
                return { length: password.result.apply((p) => p.length) };
            },
        });
        assert.deepEqual(during, []);
        assert.equal(run.resources.find((r) => r.name === "password")?.inputs.length, 20);
        assert.ok(sourcePosition().length > 0, "restored after the run");
    });

    it("restores the capture when the program fails", async () => {
        await assert.rejects(runProgram({
            project: "platform",
            stack: "mock-runtime",
            config: {},
            secretKeys: [],
            program: () => {
                throw new Error("bad config");
            },
        }), /bad config/);
        assert.ok(sourcePosition().length > 0);
    });
});
