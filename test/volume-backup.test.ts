// Backups of an app volume, run for real: the rendered backup and restore
// CronJobs' steps, each with its rendered command, arguments and environment,
// as the pod's user and group, on a volume directory owned the way the kubelet
// leaves it (fsGroup, setgid), while a writer keeps committing to a SQLite
// database in WAL mode; uploads go to a local S3 server (s3rver).
//
// What this cannot check: the images themselves. The snapshot and restore run
// on Debian bookworm's python3 here, as in the pinned PostgreSQL "system" image
// (Debian bookworm, python3 3.11); rclone is Debian's 1.60 here against the
// image's 1.71, and the download step's shell is dash here, busybox ash there
// (shellcheck -s sh holds it to POSIX). Only the endpoint differs from the
// render: http on loopback instead of https to Hetzner Object Storage.
import assert from "node:assert/strict";
import { execFile, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import S3rver from "s3rver";
import { RESTORE_DOWNLOAD_SCRIPT } from "../components/apps/app-volume-backup";
import { requireBinary, run } from "./support/binaries";
import { one, plain, render } from "./support/stack";

// Fixtures are arbitrary Kubernetes JSON: no narrower type exists for them.
type Json = Record<string, any>;

const NOTES = { image: "ghcr.io/acme/notes:1.4.2", volume: { path: "/data", size: "10Gi", backup: { keepDays: 7 } } };
const S3_KEYS = { accessKey: "S3RVER", secretKey: "S3RVER" };
/** Debian's interpreter, the one the image has (PATH may hold another). */
const PYTHON = "/usr/bin/python3";
const SNAPSHOT_NAME = /^\d{8}T\d{6}Z\.tar\.gz$/;

interface Step {
    readonly name: string;
    readonly argv: string[];
    readonly env: Record<string, string>;
}

/** Runs an async command (the S3 server shares this process's event loop). */
const execFileAsync = promisify(execFile);

describe("app volume backups, run for real", { concurrency: false }, () => {
    let root = "";
    let s3: S3rver | undefined;
    let endpoint = "";
    let backupPod: Json;
    let restorePod: Json;
    let secretData: Json;
    let scriptsData: Record<string, string>;
    let uid = 0;
    let gid = 0;
    const dirs = { data: "", scripts: "", work: "", tmp: "", home: "" };
    let skipReason: string | undefined;

    before(async () => {
        if (process.getuid?.() !== 0) {
            skipReason = "needs root, to run each step as the pod's user and group";
            if (process.env.CI === "true") throw new Error(`${skipReason}: required under CI`);
            return;
        }
        const r = await render("prod", { "platform:apps": JSON.stringify({ notes: NOTES }) });
        backupPod = (one(r, "kubernetes:batch/v1:CronJob", "notes-volume-backup").inputs as Json).spec.jobTemplate.spec.template.spec;
        restorePod = (one(r, "kubernetes:batch/v1:CronJob", "notes-volume-restore").inputs as Json).spec.jobTemplate.spec.template.spec;
        secretData = plain((one(r, "kubernetes:core/v1:Secret", "notes-volume-backup-s3").inputs as Json).stringData) as Json;
        scriptsData = (one(r, "kubernetes:core/v1:ConfigMap", "notes-volume-scripts").inputs as Json).data;
        uid = backupPod.securityContext.runAsUser;
        gid = backupPod.securityContext.runAsGroup;

        root = fs.mkdtempSync(path.join(os.tmpdir(), "volume-backup-"));
        fs.chmodSync(root, 0o755);
        for (const d of Object.keys(dirs) as (keyof typeof dirs)[]) {
            dirs[d] = path.join(root, d);
            fs.mkdirSync(dirs[d]);
        }
        // The kubelet's fsGroup: the volume's root belongs to the group, group-writable, setgid.
        fs.chownSync(dirs.data, 0, backupPod.securityContext.fsGroup);
        fs.chmodSync(dirs.data, 0o2775);
        // ext4's lost+found: root's, unreadable to the pod.
        fs.mkdirSync(path.join(dirs.data, "lost+found"), 0o700);
        for (const d of ["work", "tmp", "home"] as const) fs.chownSync(dirs[d], uid, gid);
        // The ConfigMap as mounted: read-only files (defaultMode 0444).
        for (const [file, text] of Object.entries(scriptsData)) fs.writeFileSync(path.join(dirs.scripts, file), text, { mode: 0o444 });

        const bucket = /^offsite:([^/]+)\//.exec(backupPod.containers[0].args[1])?.[1];
        assert.ok(bucket, "the prune step names the bucket");
        s3 = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: path.join(root, "s3"), configureBuckets: [{ name: bucket, configs: [] }] });
        const address = await s3.run();
        endpoint = `http://127.0.0.1:${address.port}`;
    });

    after(async () => {
        await s3?.close();
        if (root) fs.rmSync(root, { recursive: true, force: true });
    });

    /** A container of a rendered pod as a command here: its mounts mapped onto the test's directories, its env resolved. */
    function step(pod: Json, name: string, extraEnv: Record<string, string> = {}): Step {
        const container = [...(pod.initContainers ?? []), ...pod.containers].find((c: Json) => c.name === name);
        assert.ok(container, `the pod has a container ${name}`);
        const volumeDirs: Record<string, string> = { data: dirs.data, scripts: dirs.scripts, work: dirs.work, tmp: dirs.tmp };
        const mounts: [string, string][] = container.volumeMounts.map((m: Json) => {
            assert.ok(pod.volumes.some((v: Json) => v.name === m.name), `volume ${m.name} is declared`);
            return [m.mountPath, volumeDirs[m.name]];
        });
        // One pass, so a mapped path is never mapped again (/scripts -> <root>/scripts must not meet /tmp).
        const mountPattern = new RegExp(`(?<![\\w/])(${mounts.map(([m]) => m).join("|")})(?=/|\\b|$)`, "g");
        const mapPaths = (s: string) => s.replace(mountPattern, (m) => mounts.find(([mountPath]) => mountPath === m)?.[1] ?? m);
        const env: Record<string, string> = { PATH: "/usr/bin:/bin", HOME: dirs.home };
        for (const e of container.env ?? []) {
            if (e.valueFrom) {
                const ref = e.valueFrom.secretKeyRef;
                assert.equal(ref.name, "volume-backup-s3");
                assert.ok(ref.key in secretData, `the Secret has the key ${ref.key}`);
                env[e.name] = S3_KEYS[ref.key as keyof typeof S3_KEYS];
            } else {
                env[e.name] = mapPaths(e.value);
            }
        }
        if (env.RCLONE_CONFIG_OFFSITE_ENDPOINT !== undefined) {
            assert.equal(env.RCLONE_CONFIG_OFFSITE_ENDPOINT, "https://fsn1.your-objectstorage.com");
            env.RCLONE_CONFIG_OFFSITE_ENDPOINT = endpoint;
        }
        const entrypoint = container.image.startsWith("rclone/rclone:") ? ["rclone"] : [];
        const argv = [...(container.command ?? entrypoint), ...(container.args ?? [])].map(mapPaths);
        if (argv[0] === "python3") argv[0] = PYTHON;
        return { name, argv, env: { ...env, ...extraEnv } };
    }

    async function runStep(s: Step): Promise<{ code: number; stdout: string; stderr: string }> {
        return new Promise((resolve) => {
            const child = spawn(s.argv[0], s.argv.slice(1), { env: s.env, uid, gid, cwd: dirs.home });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d) => { stdout += d; });
            child.stderr.on("data", (d) => { stderr += d; });
            child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
        });
    }

    async function mustRun(s: Step): Promise<string> {
        const r = await runStep(s);
        assert.equal(r.code, 0, `${s.name} failed: ${r.stderr}`);
        return r.stdout;
    }

    /** The app: commits one row at a time in WAL mode, as uid/gid of the pod, until told to stop. */
    function startWriter(): { stop: () => Promise<number>; rows: () => number } {
        const code = [
            "import os, sqlite3, sys, time",
            `db = sqlite3.connect(${JSON.stringify(path.join(dirs.data, "notes.db"))}, isolation_level=None)`,
            "db.execute('PRAGMA journal_mode=WAL')",
            "db.execute('CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)')",
            `stop = ${JSON.stringify(path.join(dirs.home, "stop"))}`,
            "while not os.path.exists(stop):",
            "    db.execute('INSERT INTO notes (body) VALUES (?)', ('x' * 200,))",
            "    print(db.execute('SELECT max(id) FROM notes').fetchone()[0], flush=True)",
            "print('done', flush=True)",
        ].join("\n");
        fs.rmSync(path.join(dirs.home, "stop"), { force: true });
        const child = spawn(PYTHON, ["-c", code], { uid, gid, cwd: dirs.home, env: { PATH: "/usr/bin:/bin" } });
        let last = 0;
        child.stdout.on("data", (d: Buffer) => {
            const lines = d.toString().trim().split("\n").filter((l) => /^\d+$/.test(l));
            if (lines.length > 0) last = Number(lines[lines.length - 1]);
        });
        const closed = new Promise<void>((resolve) => child.on("close", () => resolve()));
        return {
            rows: () => last,
            stop: async () => {
                fs.writeFileSync(path.join(dirs.home, "stop"), "");
                await closed;
                return last;
            },
        };
    }

    async function until(check: () => boolean): Promise<void> {
        for (let i = 0; i < 600 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
        assert.ok(check(), "timed out");
    }

    /** One query, as the app's user (a root connection would leave -wal and -shm files the app cannot write). */
    function sqlite(db: string, query: string): string {
        const r = spawnPython(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1], isolation_level=None).execute(sys.argv[2]).fetchone()[0])", db, query], true);
        assert.equal(r.status, 0, r.stderr);
        return r.stdout.trim();
    }

    function spawnPython(args: string[], asPod: boolean): { status: number | null; stdout: string; stderr: string } {
        return spawnSync(PYTHON, args, { encoding: "utf8", ...(asPod ? { uid, gid, env: { PATH: "/usr/bin:/bin" } } : {}) });
    }

    function unpack(archive: string): string {
        const into = fs.mkdtempSync(path.join(root, "unpacked-"));
        fs.chownSync(into, uid, gid);
        const r = run("tar", ["-xzf", archive, "-C", into]);
        assert.equal(r.status, 0, r.stderr);
        return into;
    }

    async function rclone(args: string[]): Promise<string> {
        const env = step(backupPod, "upload").env;
        const { stdout } = await execFileAsync("rclone", args, { env });
        return stdout;
    }

    const snapshots: string[] = [];
    let rowsInFirstSnapshot = 0;

    it("snapshots a SQLite database while the app keeps writing: consistent, complete, nothing it cannot read", async (t) => {
        if (skipReason) return t.skip(skipReason);
        if (!requireBinary(t, PYTHON, "python3") || !requireBinary(t, "rclone") || !requireBinary(t, "tar")) return;
        fs.mkdirSync(path.join(dirs.data, "uploads"));
        fs.chownSync(path.join(dirs.data, "uploads"), uid, gid);
        fs.writeFileSync(path.join(dirs.data, "uploads", "photo.jpg"), Buffer.alloc(70_000, 7));
        fs.chownSync(path.join(dirs.data, "uploads", "photo.jpg"), uid, gid);
        const writer = startWriter();
        await until(() => writer.rows() >= 300);
        const before = writer.rows();
        const out = await mustRun(step(backupPod, "snapshot"));
        const during = writer.rows();
        await until(() => writer.rows() >= during + 100);
        assert.ok(fs.existsSync(path.join(dirs.data, "notes.db-wal")), "the app writes in WAL mode");
        const total = await writer.stop();

        const name = out.trim().split("\n").pop() ?? "";
        assert.match(name, SNAPSHOT_NAME);
        snapshots.push(name);
        const unpacked = unpack(path.join(dirs.work, "snapshots", name));
        assert.deepEqual(fs.readdirSync(unpacked).sort(), ["notes.db", "uploads"], "no -wal/-shm beside the copy, no lost+found");
        const db = path.join(unpacked, "notes.db");
        assert.equal(sqlite(db, "PRAGMA integrity_check"), "ok");
        rowsInFirstSnapshot = Number(sqlite(db, "SELECT count(*) FROM notes"));
        // One transaction's view: every row up to the last, no gaps, none the app wrote after the copy.
        assert.equal(Number(sqlite(db, "SELECT max(id) FROM notes")), rowsInFirstSnapshot);
        assert.ok(rowsInFirstSnapshot >= before && rowsInFirstSnapshot <= total, `${rowsInFirstSnapshot} rows, the app had ${before}..${total}`);
        assert.ok(total > rowsInFirstSnapshot, "the app kept writing after the snapshot");
        assert.deepEqual(fs.readFileSync(path.join(unpacked, "uploads", "photo.jpg")), Buffer.alloc(70_000, 7));
    });

    it("uploads the snapshot, and prunes only snapshots older than keepDays", async (t) => {
        if (skipReason) return t.skip(skipReason);
        if (snapshots.length === 0) return t.skip("no snapshot (the first test failed)");
        const target = step(backupPod, "prune").argv[2];
        // An old snapshot (rclone keeps the file's time) and another file that is not a snapshot.
        const seed = path.join(root, "seed");
        fs.mkdirSync(seed);
        fs.writeFileSync(path.join(seed, "20200101T000000Z.tar.gz"), "old");
        fs.writeFileSync(path.join(seed, "README.txt"), "kept");
        const monthAgo = new Date(Date.now() - 30 * 86400_000);
        for (const f of fs.readdirSync(seed)) fs.utimesSync(path.join(seed, f), monthAgo, monthAgo);
        await rclone(["copy", seed, target]);

        await mustRun(step(backupPod, "upload"));
        await mustRun(step(backupPod, "prune"));
        const listed = (await rclone(["lsf", "--files-only", target])).trim().split("\n").sort();
        assert.deepEqual(listed, [snapshots[0], "README.txt"].sort());
        // A second run of the same upload neither fails nor rewrites the snapshot (--immutable).
        await mustRun(step(backupPod, "upload"));
    });

    it("restores the newest snapshot with the app stopped, setting the current contents aside", async (t) => {
        if (skipReason) return t.skip(skipReason);
        if (snapshots.length === 0) return t.skip("no snapshot (the first test failed)");
        // The app went on after the snapshot: more rows, a new file; then it stopped (the runbook scales it to 0).
        fs.writeFileSync(path.join(dirs.data, "uploads", "later.txt"), "after the snapshot");
        const before = Number(sqlite(path.join(dirs.data, "notes.db"), "SELECT count(*) FROM notes"));
        assert.ok(before > rowsInFirstSnapshot);

        const download = await mustRun(step(restorePod, "download"));
        assert.match(download, new RegExp(`downloading ${snapshots[0].replace(/\./g, "\\.")}`));
        await mustRun(step(restorePod, "restore"));

        const db = path.join(dirs.data, "notes.db");
        assert.equal(Number(sqlite(db, "SELECT count(*) FROM notes")), rowsInFirstSnapshot);
        assert.equal(fs.existsSync(path.join(dirs.data, "uploads", "later.txt")), false);
        const aside = fs.readdirSync(dirs.data).filter((n) => n.startsWith(".pre-restore-"));
        assert.equal(aside.length, 1);
        assert.equal(Number(sqlite(path.join(dirs.data, aside[0], "notes.db"), "SELECT count(*) FROM notes")), before, "the newer data is kept aside, not destroyed");
        assert.equal(fs.readdirSync(dirs.data).filter((n) => n.startsWith(".restore-")).length, 0, "no staging left");
        // The app's user owns what was restored and can write it.
        assert.equal(fs.statSync(db).uid, uid);
        sqlite(db, "INSERT INTO notes (body) VALUES ('after restore') RETURNING id");
    });

    it("restores a snapshot named by SNAPSHOT", async (t) => {
        if (skipReason) return t.skip(skipReason);
        if (snapshots.length === 0) return t.skip("no snapshot (the first test failed)");
        // A second, newer snapshot; then ask for the first by name.
        await new Promise((r) => setTimeout(r, 1100));
        const out = await mustRun(step(backupPod, "snapshot"));
        snapshots.push(out.trim().split("\n").pop() ?? "");
        await mustRun(step(backupPod, "upload"));
        assert.notEqual(snapshots[1], snapshots[0]);
        const rowsNow = Number(sqlite(path.join(dirs.data, "notes.db"), "SELECT count(*) FROM notes"));
        assert.equal(rowsNow, rowsInFirstSnapshot + 1);

        const download = await mustRun(step(restorePod, "download", { SNAPSHOT: snapshots[0] }));
        assert.match(download, new RegExp(`downloading ${snapshots[0].replace(/\./g, "\\.")}`));
        await mustRun(step(restorePod, "restore"));
        assert.equal(Number(sqlite(path.join(dirs.data, "notes.db"), "SELECT count(*) FROM notes")), rowsInFirstSnapshot);
    });

    it("refuses an archive that leaves the volume or holds a damaged database, changing nothing", async (t) => {
        if (skipReason) return t.skip(skipReason);
        if (snapshots.length === 0) return t.skip("no snapshot (the first test failed)");
        const archive = path.join(dirs.work, "snapshot.tar.gz");
        const listing = () => fs.readdirSync(dirs.data).sort();
        const contents = () => fs.readFileSync(path.join(dirs.data, "notes.db"));
        const make = (code: string) => {
            const r = spawnPython(["-c", code, archive], false);
            assert.equal(r.status, 0, r.stderr);
            fs.chownSync(archive, uid, gid);
        };
        const cases = {
            "a path outside the volume": "import io,sys,tarfile\nt=tarfile.open(sys.argv[1],'w:gz'); i=tarfile.TarInfo('../escaped'); i.size=1; t.addfile(i, io.BytesIO(b'x')); t.close()",
            "a symlink out of the volume": "import sys,tarfile\nt=tarfile.open(sys.argv[1],'w:gz'); i=tarfile.TarInfo('etc'); i.type=tarfile.SYMTYPE; i.linkname='/etc'; t.addfile(i); t.close()",
            "a damaged database": "import io,sys,tarfile\nd=b'SQLite format 3\\x00'+b'\\x10\\x00'+b'\\xff'*8000\nt=tarfile.open(sys.argv[1],'w:gz'); i=tarfile.TarInfo('notes.db'); i.size=len(d); t.addfile(i, io.BytesIO(d)); t.close()",
        };
        for (const [what, code] of Object.entries(cases)) {
            const [entries, data] = [listing(), contents()];
            make(code);
            const r = await runStep(step(restorePod, "restore"));
            assert.notEqual(r.code, 0, `${what} was restored`);
            assert.deepEqual(listing(), entries, `${what}: the volume changed`);
            assert.deepEqual(contents(), data, `${what}: the database changed`);
        }
        assert.equal(fs.existsSync(path.join(root, "escaped")), false);
    });

    it("keeps the download step's shell POSIX (the image's shell is busybox ash)", (t) => {
        if (!requireBinary(t, "shellcheck")) return;
        const r = run("shellcheck", ["-s", "sh", "-"], { input: RESTORE_DOWNLOAD_SCRIPT });
        assert.equal(r.status, 0, r.stdout);
    });
});
