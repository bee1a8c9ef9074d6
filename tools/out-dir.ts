// The render's output directory: it only ever removes what a render wrote.
// Each render records its files in MANIFEST; the next one removes exactly those
// and refuses a directory that holds anything else (so `--out .` or
// `--out ~/src` cannot delete a checkout). The previous render's files go
// before the new render runs; when it fails, FAILED_NOTE says why they are
// gone, so nothing stale passes for the current config.
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
 * Empties `dir` of a previous render and says whether there was one, or throws
 * when it holds anything a render did not write: then nothing is removed.
 */
export function clearPreviousRender(dir: string): boolean {
    if (!fs.existsSync(dir)) return false;
    if (!fs.statSync(dir).isDirectory()) throw new OutDirError(`--out ${dir}: not a directory`);
    const present = filesUnder(dir);
    if (present.length === 0) return false;
    const manifest = path.join(dir, MANIFEST);
    const written = fs.existsSync(manifest) ? new Set([...(JSON.parse(fs.readFileSync(manifest, "utf8")) as string[]), MANIFEST]) : undefined;
    const foreign = present.filter((f) => (written ? !written.has(f) : !EARLIER_LAYOUT.test(f)));
    if (foreign.length > 0) {
        const shown = foreign.slice(0, 5).join(", ") + (foreign.length > 5 ? `, and ${foreign.length - 5} more` : "");
        throw new OutDirError(`--out ${dir}: the directory holds files the render did not write (${shown}); the render only ever removes its own files: name a new or empty directory`);
    }
    for (const f of present) fs.rmSync(path.join(dir, f));
    // The subdirectories a render makes, once empty.
    for (const sub of [...new Set(present.filter((f) => f.includes("/")).map((f) => path.dirname(f)))].sort().reverse()) {
        const full = path.join(dir, sub);
        if (fs.readdirSync(full).length === 0) fs.rmdirSync(full);
    }
    return true;
}

/** Writes a render's files (relative path to text; `private` ones mode 0600) and the manifest of them. */
export function writeRenderFiles(dir: string, files: ReadonlyMap<string, string>, privateFiles: ReadonlySet<string> = new Set()): void {
    for (const [rel, text] of files) {
        const file = path.join(dir, rel);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, text, privateFiles.has(rel) ? { mode: 0o600 } : {});
    }
    fs.writeFileSync(path.join(dir, MANIFEST), `${JSON.stringify([...files.keys()].sort(), null, 2)}\n`);
}

/** After a failed render in a directory that held an earlier one (already cleared): a note says why it is gone; the next render removes it. */
export function writeFailedNote(dir: string, stack: string, message: string): void {
    writeRenderFiles(dir, new Map([[FAILED_NOTE, `The last render of stack ${stack} failed (${new Date().toISOString()}); the earlier render's files were removed so none passes for the current config.\n\n${message}\n`]]));
}
