// What `npm ci` runs: npm 11 runs a dependency's install scripts only as
// package.json's `allowScripts` allows (today it warns about the rest on every
// install; its docs say a later release blocks them). Every dependency with an
// install script is reviewed and listed, so installs are quiet and keep working.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { PROJECT_DIR } from "./support/stack";

interface Lock { readonly packages: Readonly<Record<string, { readonly hasInstallScript?: boolean }>> }
interface Manifest { readonly allowScripts?: Readonly<Record<string, boolean>> }

/** The packages of a lock file that have install scripts, by name. */
function withInstallScripts(dir: string): string[] {
    const lock = JSON.parse(fs.readFileSync(path.join(dir, "package-lock.json"), "utf8")) as Lock;
    return Object.entries(lock.packages)
        .filter(([, p]) => p.hasInstallScript === true)
        .map(([where]) => where.slice(where.lastIndexOf("node_modules/") + "node_modules/".length));
}

describe("install scripts npm ci runs", () => {
    for (const dir of [PROJECT_DIR, path.join(PROJECT_DIR, "policies")]) {
        it(`${path.relative(PROJECT_DIR, dir) || "the project"}: every dependency with an install script is in allowScripts, and nothing else is`, () => {
            const manifest = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as Manifest;
            const allowed = Object.entries(manifest.allowScripts ?? {}).filter(([, yes]) => yes).map(([name]) => name).sort();
            assert.deepEqual(allowed, [...new Set(withInstallScripts(dir))].sort());
        });
    }
});
