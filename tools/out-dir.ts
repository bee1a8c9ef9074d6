// The render's output directory: it only ever removes what a render wrote.
// Each render records its files in MANIFEST; the next one replaces exactly those
// and refuses a directory that holds anything else (so `--out .` or
// `--out ~/src` cannot delete a checkout). A render that succeeds rewrites the
// files that changed and removes those it no longer has; one that fails
// removes them all and leaves FAILED_NOTE saying why, so nothing stale passes
// for the current config.
import * as fs from "node:fs";
import * as path from "node:path";

export const MANIFEST = ".render-files.json";
export const FAILED_NOTE = "RENDER-FAILED.txt";

/** What renders wrote before manifests existed: recognised so old out/<stack> directories still clear. */
const EARLIER_LAYOUT = /^((resources|outputs|cost|policy|plan)\.json|\.digest-key|(cloud-init|k8s)\/[^/]+\.yaml)$/;

export class OutDirError extends Error {}

/** Every file under `dir`, relative, with "/" separators. */
function filesUnder(dir: string): string[] {
    return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => !e.isDirectory())
        .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join("/"));
}

/**
 * The files of the previous render in `dir` (empty when there is none), or
 * throws when the directory holds anything a render did not write: then
 * nothing is touched, now or later.
 */
export function previousRender(dir: string): string[] {
    if (!fs.existsSync(dir)) return [];
    if (!fs.statSync(dir).isDirectory()) throw new OutDirError(`--out ${dir}: not a directory`);
    const present = filesUnder(dir);
    if (present.length === 0) return [];
    const manifest = path.join(dir, MANIFEST);
    const written = fs.existsSync(manifest) ? new Set([...(JSON.parse(fs.readFileSync(manifest, "utf8")) as string[]), MANIFEST]) : undefined;
    const foreign = present.filter((f) => (written ? !written.has(f) : !EARLIER_LAYOUT.test(f)));
    if (foreign.length > 0) {
        const shown = foreign.slice(0, 5).join(", ") + (foreign.length > 5 ? `, and ${foreign.length - 5} more` : "");
        throw new OutDirError(`--out ${dir}: the directory holds files the render did not write (${shown}); the render only ever removes its own files: name a new or empty directory`);
    }
    return present;
}

function readIfPresent(file: string): string | undefined {
    try {
        return fs.readFileSync(file, "utf8");
    } catch {
        return undefined;
    }
}

/** Removes `files` (a previous render's) from `dir`, and the subdirectories a render makes once empty. */
function removeFiles(dir: string, files: readonly string[]): void {
    for (const f of files) fs.rmSync(path.join(dir, f), { force: true });
    for (const sub of [...new Set(files.filter((f) => f.includes("/")).map((f) => path.dirname(f)))].sort().reverse()) {
        const full = path.join(dir, sub);
        if (fs.existsSync(full) && fs.readdirSync(full).length === 0) fs.rmdirSync(full);
    }
}

/**
 * Writes a render's files (relative path to text; `private` ones mode 0600)
 * and the manifest of them, and removes the previous render's files it no
 * longer has. A file whose text is unchanged is left as it is (its time too):
 * re-rendering a stack rewrites only what changed.
 */
export function writeRenderFiles(dir: string, files: ReadonlyMap<string, string>, previous: readonly string[] = [], privateFiles: ReadonlySet<string> = new Set()): void {
    const all = new Map([...files, [MANIFEST, `${JSON.stringify([...files.keys()].sort(), null, 2)}\n`]]);
    const had = new Set(previous);
    for (const [rel, text] of all) {
        const file = path.join(dir, rel);
        const mode = privateFiles.has(rel) ? 0o600 : undefined;
        if (had.has(rel) && readIfPresent(file) === text) {
            if (mode !== undefined) fs.chmodSync(file, mode);
            continue;
        }
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, text, mode !== undefined ? { mode } : {});
        if (mode !== undefined) fs.chmodSync(file, mode);
    }
    removeFiles(dir, previous.filter((f) => !all.has(f)));
}

/** After a failed render: the previous render's files go (none may pass for the current config), and a note says why. */
export function writeFailedNote(dir: string, previous: readonly string[], stack: string, message: string): void {
    removeFiles(dir, previous);
    writeRenderFiles(dir, new Map([[FAILED_NOTE, `The last render of stack ${stack} failed (${new Date().toISOString()}); the earlier render's files were removed so none passes for the current config.\n\n${message}\n`]]));
}
