// The database scripts on PostgreSQL 17, the major production runs by default
// (its image's pg_dump writes zstd dumps): Debian bookworm has only 15, so the
// tools come from tools/install-postgres17.sh, found through PG17_BINDIR
// (.ci/run installs them). Without them the tests skip and say how; under
// CI=true they fail.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it, type TestContext } from "node:test";
import { findPgBinDir, requirePostgres, startPostgres, type PgServer } from "./support/postgres";

const ROOT = path.resolve(__dirname, "..");
const INSTALL_HINT = "tools/install-postgres17.sh /opt/postgres17 && export PG17_BINDIR=/opt/postgres17/bin";

function postgres17BinDir(t: TestContext): string | undefined {
    const dir = process.env.PG17_BINDIR;
    const reason = !dir ? `PG17_BINDIR is not set (${INSTALL_HINT})`
        : ["initdb", "pg_ctl", "postgres", "pg_dump", "pg_restore", "psql"].find((p) => !fs.existsSync(path.join(dir, p)))
            ? `PG17_BINDIR=${dir} lacks PostgreSQL 17's tools (${INSTALL_HINT})` : undefined;
    if (!reason) return dir;
    if (process.env.CI === "true") throw new Error(`${reason}: required under CI`);
    t.skip(reason);
    return undefined;
}

function runScript(script: string, args: string[], binDir: string, pg: PgServer, env: Record<string, string>) {
    return spawnSync("bash", [path.join(ROOT, "scripts", script), ...args], {
        encoding: "utf8",
        timeout: 120_000,
        env: { PATH: `${binDir}:${process.env.PATH ?? "/usr/bin:/bin"}`, HOME: os.tmpdir(), PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: pg.superuser, PGPASSWORD: pg.password, ...env },
    });
}

describe("database scripts on PostgreSQL 17", () => {
    it("the whole backup, restore, drill, grants and login-check suite passes with PostgreSQL 17's server and tools", { timeout: 600_000 }, (t) => {
        const binDir = postgres17BinDir(t);
        if (!binDir) return;
        const run = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", path.join(ROOT, "test", "db-scripts.test.ts")], {
            // Without NODE_TEST_CONTEXT: the child then reports as a test run of its own, not into this one.
            cwd: ROOT, encoding: "utf8", timeout: 590_000, env: { ...process.env, NODE_TEST_CONTEXT: undefined, PG_BINDIR: binDir },
        });
        const summary = run.stdout.split("\n").filter((l) => /^ℹ (tests|pass|fail|skipped)/.test(l)).join(", ");
        t.diagnostic(`db-scripts.test.ts on PostgreSQL 17: ${summary}`);
        assert.equal(run.status, 0, `${run.stdout.slice(-6000)}\n${run.stderr.slice(-2000)}`);
        assert.match(run.stdout, /^ℹ skipped 0$/m, "nothing skipped");
    });

    it("a gzip backup written by PostgreSQL 15's pg_dump restores with 17's tools (backups kept across a postgresMajor upgrade)", { timeout: 300_000 }, async (t) => {
        const binDir17 = postgres17BinDir(t);
        if (!binDir17 || !requirePostgres(t)) return;
        const binDir15 = findPgBinDir() as string;
        const old = await startPostgres();
        t.after(() => old.destroy());
        const upgraded = await startPostgres({ binDir: binDir17 });
        t.after(() => upgraded.destroy());
        assert.notEqual(old.version, "17", `the default PostgreSQL (${binDir15}) must be another major for this test`);
        assert.equal(upgraded.version, "17");

        await old.createDatabase("shop");
        await old.query("CREATE TABLE orders (id bigserial PRIMARY KEY, note text); INSERT INTO orders (note) SELECT md5(i::text) FROM generate_series(1, 5000) i", [], "shop");
        const backups = fs.mkdtempSync(path.join(os.tmpdir(), "pg17-backups-"));
        t.after(() => fs.rmSync(backups, { recursive: true, force: true }));
        const backup = runScript("pg-backup.sh", [], binDir15, old, { BACKUP_DIR: backups });
        assert.equal(backup.status, 0, backup.stderr);
        const dump = path.join(backup.stdout.trim().split("\n").pop() as string, "shop.dump");
        assert.match(spawnSync(path.join(binDir17, "pg_restore"), ["--list", dump]).stdout.toString(), /^;\s+Compression: gzip$/m);

        const restore = runScript("pg-restore.sh", ["shop", "shop"], binDir17, upgraded, { BACKUP_DIR: backups });
        assert.equal(restore.status, 0, restore.stderr);
        const [row] = await upgraded.query<{ n: string; last: string }>("SELECT count(*) AS n, max(id) AS last FROM orders", [], "shop");
        assert.deepEqual(row, { n: "5000", last: "5000" });
    });
});
