// The sample notes app (examples/notes: SQLite on a volume) as the local stack
// runs it, for real: as the pod's user on a volume owned the way the kubelet
// leaves it, the migration first (the rendered init container), then the app;
// a snapshot while it serves writes, the volume lost, the snapshot restored
// onto a new one, and the app serving exactly what the snapshot held.
// Run from source with tsx (the image runs the same code compiled by tsc).
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { requireBinary } from "./support/binaries";
import { freePort } from "./support/postgres";
import { one, PROJECT_DIR, render } from "./support/stack";

// Fixtures are arbitrary Kubernetes JSON: no narrower type exists for them.
type Json = Record<string, any>;

const PYTHON = "/usr/bin/python3";

describe("the sample notes app on a volume, backed up and restored", { concurrency: false }, () => {
    let root = "";
    let pod: Json;
    let env: Record<string, string> = {};
    let uid = 0;
    let gid = 0;
    const running: ChildProcess[] = [];

    before(async () => {
        const r = await render("local", {});
        pod = (one(r, "kubernetes:apps/v1:Deployment", "notes-deployment").inputs as Json).spec.template.spec;
        env = (one(r, "kubernetes:core/v1:ConfigMap", "notes-env").inputs as Json).data;
        // As root, the pod's user; elsewhere, this user (ownership is then not what the pod has).
        const asRoot = process.getuid?.() === 0;
        uid = asRoot ? pod.securityContext.runAsUser : process.getuid?.() ?? 0;
        gid = asRoot ? pod.securityContext.runAsGroup : process.getgid?.() ?? 0;
        if (!asRoot && process.env.CI === "true") throw new Error("needs root to run as the pod's user: required under CI");
        root = fs.mkdtempSync(path.join(os.tmpdir(), "sample-notes-"));
        fs.chmodSync(root, 0o755);
    });

    after(() => {
        for (const child of running) child.kill("SIGKILL");
        if (root) fs.rmSync(root, { recursive: true, force: true });
    });

    /** A fresh volume as the kubelet hands it over: the fsGroup's, group-writable, setgid. */
    function newVolume(name: string): string {
        const dir = path.join(root, name);
        fs.mkdirSync(dir);
        fs.chownSync(dir, 0, pod.securityContext.fsGroup);
        fs.chmodSync(dir, 0o2775);
        return dir;
    }

    /** The image runs dist/<script>.js; from source that is src/<script>.ts. */
    function start(script: "migrate" | "main", volume: string, port: number): ChildProcess {
        const mountPath = pod.containers[0].volumeMounts.find((m: Json) => m.name === "data").mountPath;
        assert.equal(mountPath, "/data", "the app reads DATA_DIR, default /data");
        const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--import", "tsx", path.join(PROJECT_DIR, "examples", "notes", "src", `${script}.ts`)], {
            cwd: PROJECT_DIR, uid, gid,
            env: { PATH: process.env.PATH, ...env, PORT: String(port), DATA_DIR: volume },
            stdio: ["ignore", "pipe", "pipe"],
        });
        running.push(child);
        return child;
    }

    async function exitOf(child: ChildProcess): Promise<{ code: number | null; output: string }> {
        let output = "";
        child.stdout?.on("data", (d) => { output += d; });
        child.stderr?.on("data", (d) => { output += d; });
        const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
        return { code, output };
    }

    async function migrate(volume: string): Promise<string> {
        // The rendered init container: the app's image, the migration command, the same volume.
        const [init] = pod.initContainers;
        assert.deepEqual([init.name, init.command], ["migrate", ["/nodejs/bin/node", "dist/migrate.js"]]);
        const r = await exitOf(start("migrate", volume, 0));
        assert.equal(r.code, 0, r.output);
        return r.output;
    }

    async function serve(volume: string): Promise<{ url: string; stop: () => Promise<number | null> }> {
        const port = await freePort();
        const child = start("main", volume, port);
        const exited = exitOf(child);
        const url = `http://127.0.0.1:${port}`;
        for (let i = 0; i < 200; i++) {
            if (await fetch(`${url}/livez`).then((r) => r.ok, () => false)) break;
            await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal((await fetch(`${url}/health`)).status, 200);
        return { url, stop: async () => { child.kill("SIGTERM"); return (await exited).code; } };
    }

    const post = async (url: string, body: string) => {
        const r = await fetch(`${url}/notes`, { method: "POST", body: JSON.stringify({ body }) });
        assert.equal(r.status, 201);
    };
    const bodies = async (url: string) => ((await (await fetch(`${url}/notes`)).json()) as { body: string }[]).map((n) => n.body).reverse();

    let archive = "";

    it("refuses to start on a volume its migration has not run on, then migrates once", async () => {
        const volume = newVolume("first");
        const refused = await exitOf(start("main", volume, await freePort()));
        assert.equal(refused.code, 1);
        assert.match(refused.output, /not migrated/);
        assert.match(await migrate(volume), /"ran":1/);
        assert.match(await migrate(volume), /"ran":0/, "a second run changes nothing");
    });

    it("keeps serving while a snapshot is taken, and the snapshot holds what it had written", async (t) => {
        if (!requireBinary(t, PYTHON, "python3")) return;
        const volume = path.join(root, "first");
        const app = await serve(volume);
        for (const body of ["one", "two", "three"]) await post(app.url, body);
        // Requests keep going during the snapshot.
        const writes = Promise.all(["during-1", "during-2"].map((b) => post(app.url, b)));
        // The Job's emptyDir, writable by the pod's user.
        const out = path.join(root, "snapshots");
        fs.mkdirSync(out);
        fs.chownSync(out, uid, gid);
        const snap = spawnSync(PYTHON, [path.join(PROJECT_DIR, "scripts", "volume-snapshot.py"), volume, out], { encoding: "utf8", uid, gid });
        await writes;
        assert.equal(snap.status, 0, snap.stderr);
        archive = path.join(out, snap.stdout.trim().split("\n").pop() ?? "");
        await post(app.url, "after the snapshot");
        assert.equal(await app.stop(), 0, "SIGTERM drains and exits 0");
    });

    it("serves the snapshot's notes from a new volume after the old one is lost", async (t) => {
        if (!requireBinary(t, PYTHON, "python3")) return;
        assert.ok(archive, "the snapshot test ran");
        const volume = newVolume("replacement");
        const restored = spawnSync(PYTHON, [path.join(PROJECT_DIR, "scripts", "volume-restore.py"), archive, volume], { encoding: "utf8", uid, gid });
        assert.equal(restored.status, 0, restored.stderr);
        // The pod starts as it would: the migration (nothing to do), then the app.
        assert.match(await migrate(volume), /"ran":0/);
        const app = await serve(volume);
        const notes = await bodies(app.url);
        assert.deepEqual(notes.slice(0, 3), ["one", "two", "three"]);
        assert.ok(!notes.includes("after the snapshot"));
        // The restored database is the app's own: it writes to it.
        await post(app.url, "after the restore");
        assert.deepEqual((await bodies(app.url)).slice(-1), ["after the restore"]);
        assert.equal(await app.stop(), 0);
    });
});
