#!/usr/bin/env node
// Runs an offline tool (render, policy) as plain JavaScript: the tool and the
// program it renders are bundled once with esbuild into .cache/ (rebuilt when
// a source file is newer) and run by node itself, so no TypeScript loader
// transforms modules or keeps source maps on for the whole process (tsx does
// both; with Pulumi's promise-heavy runtime that was most of the render's
// time). node_modules stay outside the bundle, so the program's @pulumi/pulumi
// is the mock runtime's.
//
// The bundle lives one directory below the project, like tools/ and
// components/project.ts, so the `path.resolve(__dirname, "..")` those modules
// use to find the project still points at it from inside the bundle.
//
// Usage: node tools/cli.cjs render|policy [args...]   (npm run render / npm run policy)
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");
const TOOLS = { render: "tools/render.ts", policy: "tools/policy.ts" };
const SOURCES = ["index.ts", "tools", "components", "policies/rules", "package-lock.json"];

/** The newest modification time among the files a bundle is built from. */
function newestSource() {
    let newest = 0;
    const visit = (p) => {
        const stat = fs.statSync(p);
        if (stat.isDirectory()) for (const entry of fs.readdirSync(p)) visit(path.join(p, entry));
        else newest = Math.max(newest, stat.mtimeMs);
    };
    for (const source of SOURCES) visit(path.join(ROOT, source));
    return newest;
}

/** The bundle of `entry`, built when missing or older than a source file. */
function bundle(name, entry) {
    const out = path.join(ROOT, ".cache", `${name}.js`);
    if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= newestSource()) return out;
    fs.mkdirSync(path.dirname(out), { recursive: true });
    // Written beside, then renamed: parallel runs never read a half-written bundle.
    const tmp = `${out}.${process.pid}.tmp`;
    require("esbuild").buildSync({
        entryPoints: [path.join(ROOT, entry)],
        bundle: true,
        platform: "node",
        format: "cjs",
        target: "node22",
        packages: "external",
        outfile: tmp,
        logLevel: "error",
    });
    fs.renameSync(tmp, out);
    return out;
}

// V8's code cache on disk (Node 22): the next run skips compiling the modules
// this one loaded, among them the TypeScript compiler @pulumi/pulumi imports.
require("node:module").enableCompileCache?.(path.join(ROOT, ".cache", "v8"));

// No stack traces: Pulumi's runtime captures one for every promise it makes,
// to report leaked promises of a real deployment; formatting them was a third
// of a large render's time. The tools print error messages, not stacks
// (PLATFORM_STACK_TRACES=1 keeps them, for debugging a tool).
if (!process.env.PLATFORM_STACK_TRACES) Error.stackTraceLimit = 0;

const [tool, ...args] = process.argv.slice(2);
if (!(tool in TOOLS)) {
    console.error(`usage: node tools/cli.cjs ${Object.keys(TOOLS).join("|")} [args...]`);
    process.exit(1);
}
const file = bundle(tool, TOOLS[tool]);
process.argv = [process.argv[0], file, ...args];
require(file).cli();
