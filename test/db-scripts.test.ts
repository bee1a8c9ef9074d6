// The database scripts (backup, restore, restore drill, roles) run for real by
// bash against a real PostgreSQL (Debian's, via test/support/postgres.ts): one
// server for the whole file, fresh databases and temp dirs per test, all
// removed afterwards. The scripts are only clients: they connect over TCP with
// a password, as in the cluster.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { Client } from "pg";
import { LOGIN_SLOTS, loginRole, ownerRole } from "../components/database/database-render";
import { findPgBin, findPgBinDir, freePort, postgresUnavailableReason, requirePostgres, startPostgres, type PgServer } from "./support/postgres";

const SCRIPTS_DIR = path.resolve(__dirname, "..", "scripts");
const STAMP_RE = /^\d{8}T\d{6}Z$/;
const TEST_TIMEOUT = 120_000;

let pg: PgServer | undefined;
let tmpRoot = "";
let counter = 0;

before(async () => {
    tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "db-scripts-"));
    if (postgresUnavailableReason() === undefined) pg = await startPostgres();
});
after(async () => {
    await pg?.destroy();
    fs.rmSync(tmpRoot, { recursive: true, force: true });
});

interface Run {
    status: number;
    stdout: string;
    stderr: string;
}

/** Runs scripts/<script> with bash and only the libpq settings of the test server (plus `env`). */
function runScript(script: string, args: string[], env: Record<string, string> = {}): Run {
    const server = pg as PgServer;
    const r = spawnSync("bash", [path.join(SCRIPTS_DIR, script), ...args], {
        encoding: "utf8",
        env: {
            // The server's own client binaries first: same version as the server.
            PATH: `${findPgBinDir()}:${process.env.PATH ?? "/usr/bin:/bin"}`,
            HOME: tmpRoot,
            PGHOST: server.host,
            PGPORT: String(server.port),
            PGUSER: server.superuser,
            PGPASSWORD: server.password,
            ...env,
        },
        timeout: TEST_TIMEOUT,
    });
    if (r.error) throw r.error;
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function show(r: Run): string {
    return `exit ${r.status}\n--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`;
}

function quoteIdent(name: string): string {
    return `"${name.replace(/"/g, '""')}"`;
}

/** A fresh database name (created unless `create` is false), dropped after the test. */
async function database(t: TestContext, prefix = "db", create = true): Promise<string> {
    const server = pg as PgServer;
    const name = `${prefix}_${process.pid}_${++counter}`;
    t.after(() => server.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`));
    if (create) await server.createDatabase(name);
    return name;
}

function tempDir(t: TestContext, prefix: string): string {
    const dir = fs.mkdtempSync(path.join(tmpRoot, `${prefix}-`));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    return dir;
}

/** Two related tables with a few thousand rows, a view and a sequence. */
async function seed(db: string): Promise<void> {
    await (pg as PgServer).query(
        `CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
         INSERT INTO customers (name) SELECT 'customer ' || i FROM generate_series(1, 2000) AS i;
         CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, total numeric(10, 2), note text);
         INSERT INTO orders (customer_id, total, note) SELECT 1 + i % 2000, i * 0.5, repeat('x', i % 50) FROM generate_series(1, 5000) AS i;
         CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;`,
        [],
        db,
    );
}

/** Row count of every table in schema public. */
async function rowCounts(db: string): Promise<Record<string, number>> {
    const server = pg as PgServer;
    const tables = await server.query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", [], db);
    const counts: Record<string, number> = {};
    for (const { name } of tables) {
        const [row] = await server.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteIdent(name)}`, [], db);
        counts[name] = Number(row.n);
    }
    return counts;
}

async function databasesLike(pattern: string): Promise<string[]> {
    const rows = await (pg as PgServer).query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1", [pattern]);
    return rows.map((r) => r.datname);
}

/** pg-backup.sh into `dir`; asserts success and returns the new backup's directory. */
function backup(dir: string, env: Record<string, string> = {}): string {
    const r = runScript("pg-backup.sh", [], { BACKUP_DIR: dir, ...env });
    assert.equal(r.status, 0, show(r));
    const lines = r.stdout.trim().split("\n");
    const created = lines[lines.length - 1];
    assert.equal(path.dirname(created), dir.replace(/\/$/, ""));
    assert.match(path.basename(created), STAMP_RE);
    return created;
}

/** Backup directory name for `hoursAgo` hours before now (UTC). */
function stampAgo(hoursAgo: number): string {
    return new Date(Date.now() - hoursAgo * 3_600_000).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

/** A stand-in for another backup: globals only (its name is what pruning and the drill's age check look at). */
function fakeBackup(dir: string, name: string): void {
    fs.mkdirSync(path.join(dir, name));
    fs.writeFileSync(path.join(dir, name, "globals.sql.gz"), gzipSync("-- no roles\n"));
    fs.writeFileSync(path.join(dir, name, "MANIFEST"), `${sha256(path.join(dir, name, "globals.sql.gz"))}  globals.sql.gz\n`);
}

function entries(dir: string): string[] {
    return fs.readdirSync(dir).sort();
}

function sha256(file: string): string {
    return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/** Connects as `user`; resolves to current_user, rejects with the server's error. */
async function connectAs(user: string, password: string, database: string): Promise<string> {
    const server = pg as PgServer;
    const client = new Client({ host: server.host, port: server.port, user, password, database, connectionTimeoutMillis: 10_000 });
    client.on("error", () => undefined);
    await client.connect();
    try {
        return (await client.query<{ u: string }>("SELECT current_user AS u")).rows[0].u;
    } finally {
        await client.end().catch(() => undefined);
    }
}

function assertNoSecret(r: Run, ...secrets: string[]): void {
    for (const secret of secrets) {
        assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `a password was printed:\n${show(r)}`);
    }
}

describe("pg-backup.sh", () => {
    it("writes globals.sql.gz, one dump per database and a MANIFEST whose checksums match; a restore has the same rows", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const shop = await database(t, "shop");
        const tiny = await database(t, "tiny");
        await seed(shop);
        await pg.query("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('hello')", [], tiny);
        // A restore drill's scratch database is not backed up.
        const scratch = `drill_${tiny}_${Math.floor(Date.now() / 1000)}`;
        t.after(() => pg?.query(`DROP DATABASE IF EXISTS ${scratch}`));
        await pg.createDatabase(scratch);
        const dir = tempDir(t, "backups");

        const created = backup(dir);
        // Nothing else in BACKUP_DIR: the partial directory was renamed into place.
        assert.deepEqual(entries(dir), [path.basename(created)]);
        assert.deepEqual(entries(created), ["MANIFEST", "globals.sql.gz", `${shop}.dump`, `${tiny}.dump`].sort());
        const manifest = fs.readFileSync(path.join(created, "MANIFEST"), "utf8").trim().split("\n");
        assert.deepEqual(manifest.map((l) => l.split(/\s+/)[1]).sort(), ["globals.sql.gz", `${shop}.dump`, `${tiny}.dump`].sort());
        for (const line of manifest) {
            const [sum, file] = line.split(/\s+/);
            assert.equal(sum, sha256(path.join(created, file)), `checksum of ${file}`);
        }
        assert.match(gunzipSync(fs.readFileSync(path.join(created, "globals.sql.gz"))).toString(), new RegExp(`CREATE ROLE ${pg.superuser};`));
        assert.equal(fs.readFileSync(path.join(created, `${shop}.dump`)).subarray(0, 5).toString(), "PGDMP", "custom-format archive");
        // The codec, as the real pg_restore reports it: zstd where pg_dump has it (16+; production runs 17),
        // else gzip, which pg_restore 15 shows as its zlib level (-1: the default).
        const toolMajor = Number(/\) (\d+)/.exec(spawnSync(findPgBin("pg_dump") ?? "pg_dump", ["--version"]).stdout.toString())?.[1]);
        const archiveHeader = spawnSync(findPgBin("pg_restore") ?? "pg_restore", ["--list", path.join(created, `${shop}.dump`)]).stdout.toString();
        assert.match(archiveHeader, new RegExp(`^;\\s+Compression: ${toolMajor >= 16 ? "zstd" : "-1"}$`, "m"), archiveHeader);
        assert.equal(fs.statSync(path.join(created, "globals.sql.gz")).mode & 0o077, 0, "backup files are private");

        const target = await database(t, "restored", false);
        const r = runScript("pg-restore.sh", [shop, target], { BACKUP_DIR: dir });
        assert.equal(r.status, 0, show(r));
        assert.match(r.stdout, new RegExp(`^restored database ${shop} from backup ${path.basename(created)} .* into ${target}: 2 tables\\n$`));
        const counts = await rowCounts(target);
        assert.deepEqual(counts, { customers: 2000, orders: 5000 });
        assert.deepEqual(counts, await rowCounts(shop));
        // The sequence went along: a new row gets the next id.
        const [next] = await pg.query<{ id: string }>("INSERT INTO orders (customer_id, total) VALUES (1, 1) RETURNING id", [], target);
        assert.equal(Number(next.id), 5001);
        assertNoSecret(r, pg.password);
    });

    it("prunes only after success: removes expired backups and stale partial dirs, keeps recent ones and anything else", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const dir = tempDir(t, "backups");
        const expired = [stampAgo(10 * 24), stampAgo(9 * 24), stampAgo(8 * 24)];
        const recent = [stampAgo(6 * 24), stampAgo(24)];
        for (const name of [...expired, ...recent]) fakeBackup(dir, name);
        const stalePartial = `.${stampAgo(50)}.partial`;
        const runningPartial = `.${stampAgo(1)}.partial`;
        fs.mkdirSync(path.join(dir, stalePartial));
        fs.mkdirSync(path.join(dir, runningPartial));
        fs.mkdirSync(path.join(dir, "keep-me"));
        fs.mkdirSync(path.join(dir, "20200101"));
        fs.writeFileSync(path.join(dir, "notes.txt"), "not a backup");

        const created = backup(dir, { RETENTION_DAYS: "7" });
        assert.deepEqual(entries(dir), [...recent, path.basename(created), runningPartial, "keep-me", "20200101", "notes.txt"].sort());
    });

    it("a clock run 30 days ahead prunes nothing extra: ages count from the backups' own timestamps", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const dir = tempDir(t, "backups");
        const earlier = [1, 2, 3, 4, 5, 6].map((days) => stampAgo(days * 24));
        for (const name of earlier) fakeBackup(dir, name);
        // `date` 30 days ahead, as on a node whose clock jumped (the real one parses dates given with -d).
        const bin = tempDir(t, "skewed-bin");
        fs.writeFileSync(path.join(bin, "date"), `#!/bin/bash
for a in "$@"; do case "$a" in -d*) exec /bin/date "$@" ;; esac; done
exec /bin/date -d "@$(( $(/bin/date +%s) + 30 * 86400 ))" "$@"
`, { mode: 0o755 });
        const created = backup(dir, { RETENTION_DAYS: "7", PATH: `${bin}:${findPgBinDir()}:${process.env.PATH ?? "/usr/bin:/bin"}` });
        assert.deepEqual(entries(dir), [...earlier, path.basename(created)].sort(), "all six earlier backups kept");
    });

    it("a backup named in the future is reported and left alone, never one of the two newest it keeps", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const dir = tempDir(t, "backups");
        const [older, newest] = [stampAgo(30 * 24), stampAgo(20 * 24)];
        const future = stampAgo(-10 * 24);
        for (const name of [older, newest, future]) fakeBackup(dir, name);
        fs.mkdirSync(path.join(dir, "20261399T250000Z"));
        const r = runScript("pg-backup.sh", [], { BACKUP_DIR: dir, RETENTION_DAYS: "7" });
        assert.equal(r.status, 0, show(r));
        const created = r.stdout.trim().split("\n").pop() as string;
        // Kept: the new one and the newest earlier complete backup (expired, but the last one before a gap).
        assert.deepEqual(entries(dir), [newest, path.basename(created), future, "20261399T250000Z"].sort());
        assert.match(r.stderr, new RegExp(`ignoring ${future}: 2\\d\\d hours in the future`));
        assert.match(r.stderr, /ignoring 20261399T250000Z: not a valid date/);
    });

    it("when every earlier backup has expired, keeps the newest of them next to the new one", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const dir = tempDir(t, "backups");
        const old = [stampAgo(30 * 24), stampAgo(20 * 24), stampAgo(10 * 24)];
        for (const name of old) fakeBackup(dir, name);

        const created = backup(dir, { RETENTION_DAYS: "7" });
        assert.deepEqual(entries(dir), [old[2], path.basename(created)].sort());
        // With the default retention too, the next run keeps the two newest only.
        const next = backup(dir);
        assert.ok(entries(dir).includes(path.basename(next)));
        assert.deepEqual(entries(dir), [path.basename(created), path.basename(next)].sort());
    });

    it("fails without a partial directory and without pruning when the database is unreachable or a dump fails", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const db = await database(t, "shop");
        await seed(db);
        const dir = tempDir(t, "backups");
        for (const name of [stampAgo(30 * 24), stampAgo(20 * 24)]) fakeBackup(dir, name);
        fs.mkdirSync(path.join(dir, `.${stampAgo(50)}.partial`));
        const before = entries(dir);

        const unreachable = runScript("pg-backup.sh", [], { BACKUP_DIR: dir, PGPORT: String(await freePort()) });
        assert.equal(unreachable.status, 1, show(unreachable));
        assert.match(unreachable.stderr, /Connection refused|could not connect|connection to server/i);
        assert.match(unreachable.stderr, /FAILED: could not list the databases/);
        assert.equal(unreachable.stdout, "");
        assert.deepEqual(entries(dir), before);

        // A dump failing after globals.sql.gz was written: the partial directory goes too.
        const stubs = tempDir(t, "stubs");
        // It answers --version like the real one: the script reads the major to choose the compression.
        fs.writeFileSync(path.join(stubs, "pg_dump"),
            `#!/usr/bin/env bash\nif [ "$1" = --version ]; then exec '${findPgBin("pg_dump")}' --version; fi\necho 'pg_dump: error: simulated failure' >&2\nexit 1\n`, { mode: 0o755 });
        const failing = runScript("pg-backup.sh", [], { BACKUP_DIR: dir, PATH: `${stubs}:${findPgBinDir()}:${process.env.PATH ?? ""}` });
        assert.equal(failing.status, 1, show(failing));
        assert.match(failing.stderr, new RegExp(`FAILED: pg_dump of database '${db}' failed`));
        assert.match(failing.stderr, /removed the incomplete .*\.partial/);
        assert.deepEqual(entries(dir), before);
    });

    it("refuses bad settings with exit 2", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const dir = tempDir(t, "backups");
        const missing = runScript("pg-backup.sh", []);
        assert.equal(missing.status, 2, show(missing));
        assert.match(missing.stderr, /BACKUP_DIR is required/);
        const noDir = runScript("pg-backup.sh", [], { BACKUP_DIR: path.join(dir, "nope") });
        assert.equal(noDir.status, 2, show(noDir));
        assert.match(noDir.stderr, /is not a writable directory/);
        const retention = runScript("pg-backup.sh", [], { BACKUP_DIR: dir, RETENTION_DAYS: "a week" });
        assert.equal(retention.status, 2, show(retention));
        assert.match(retention.stderr, /RETENTION_DAYS must be a whole number/);
        assert.deepEqual(entries(dir), []);
    });
});

describe("pg-restore.sh", () => {
    it("refuses a target with tables unless --force; uses an empty existing target; gives objects to RESTORE_OWNER", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const source = await database(t, "shop");
        await seed(source);
        const dir = tempDir(t, "backups");
        const backupId = path.basename(backup(dir));
        const expected = await rowCounts(source);

        const target = await database(t, "target");
        await pg.query("CREATE TABLE precious (x int); INSERT INTO precious VALUES (42)", [], target);
        const refused = runScript("pg-restore.sh", [source, target], { BACKUP_DIR: dir });
        assert.equal(refused.status, 1, show(refused));
        assert.match(refused.stderr, new RegExp(`target database ${target} already exists and has 1 tables; refusing .*--force`));
        assert.deepEqual(await rowCounts(target), { precious: 1 }, "the existing database is untouched");

        const forced = runScript("pg-restore.sh", ["--force", source, target, backupId], { BACKUP_DIR: dir });
        assert.equal(forced.status, 0, show(forced));
        assert.deepEqual(await rowCounts(target), expected, "swapped in: only the backup's tables");
        // The previous database is kept under another name until someone drops it.
        const [replaced] = await databasesLike(`${target}_replaced_%`);
        assert.ok(replaced, show(forced));
        t.after(() => pg?.query(`DROP DATABASE IF EXISTS ${quoteIdent(replaced)} WITH (FORCE)`));
        assert.deepEqual(await rowCounts(replaced), { precious: 1 });
        assert.deepEqual(await databasesLike(`${target}_restore_%`), []);

        const empty = await database(t, "empty");
        const intoEmpty = runScript("pg-restore.sh", [source, empty], { BACKUP_DIR: dir });
        assert.equal(intoEmpty.status, 0, show(intoEmpty));
        assert.match(intoEmpty.stderr, /restoring into the existing, empty database/);
        assert.deepEqual(await rowCounts(empty), expected);

        const role = `owner_${process.pid}`;
        await pg.query(`CREATE ROLE ${role} LOGIN`);
        const owned = await database(t, "owned", false);
        t.after(() => pg?.query(`DROP ROLE IF EXISTS ${role}`));
        const asOwner = runScript("pg-restore.sh", [source, owned], { BACKUP_DIR: dir, RESTORE_OWNER: role });
        assert.equal(asOwner.status, 0, show(asOwner));
        const owners = await pg.query<{ owner: string }>(
            "SELECT DISTINCT tableowner AS owner FROM pg_tables WHERE schemaname = 'public' UNION SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()",
            [],
            owned,
        );
        assert.deepEqual(owners.map((o) => o.owner), [role]);
    });

    it("an interrupted --force restore (SIGTERM while pg_restore runs) leaves the live database as it was", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const source = await database(t, "shop");
        await seed(source);
        const dir = tempDir(t, "backups");
        backup(dir);
        const target = await database(t, "live");
        await pg.query("CREATE TABLE precious (x int); INSERT INTO precious VALUES (42)", [], target);
        // A pg_restore that takes its time, so the signal arrives while it runs.
        const bin = tempDir(t, "slow-bin");
        fs.writeFileSync(path.join(bin, "pg_restore"), `#!/bin/bash
case " $* " in *" --list "*) exec "${findPgBinDir()}/pg_restore" "$@" ;; esac
echo started > "${bin}/started"; sleep 30
`, { mode: 0o755 });
        const server = pg;
        const child = spawn("bash", [path.join(SCRIPTS_DIR, "pg-restore.sh"), "--force", source, target], {
            env: {
                PATH: `${bin}:${findPgBinDir()}:${process.env.PATH ?? "/usr/bin:/bin"}`, HOME: tmpRoot, BACKUP_DIR: dir,
                PGHOST: server.host, PGPORT: String(server.port), PGUSER: server.superuser, PGPASSWORD: server.password,
            },
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
        const deadline = Date.now() + 20_000;
        while (!fs.existsSync(path.join(bin, "started")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        child.kill("SIGTERM");
        assert.equal(await exited, 143, stderr);
        assert.deepEqual(await rowCounts(target), { precious: 1 }, "the live database is untouched");
        assert.deepEqual(await databasesLike(`${target}_restore_%`), [], "the half-restored copy is dropped");
        assert.match(stderr, /dropping database .*_restore_\d+, which this failed run created/);
    });

    it("refuses a corrupted dump (MANIFEST checksum), a missing dump and a missing backup, creating nothing", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const source = await database(t, "shop");
        await seed(source);
        const dir = tempDir(t, "backups");
        const created = backup(dir);
        const target = await database(t, "target", false);

        const dump = path.join(created, `${source}.dump`);
        const bytes = fs.readFileSync(dump);
        for (let i = 0; i < 16; i++) bytes[Math.floor(bytes.length / 2) + i] ^= 0xff;
        fs.writeFileSync(dump, bytes);
        const corrupt = runScript("pg-restore.sh", [source, target], { BACKUP_DIR: dir });
        assert.equal(corrupt.status, 1, show(corrupt));
        assert.match(corrupt.stderr, /FAILED: checksum mismatch for .*\.dump: the MANIFEST says [0-9a-f]{64}, the file is [0-9a-f]{64}; the dump is damaged/);

        const unknown = runScript("pg-restore.sh", ["nope", target], { BACKUP_DIR: dir });
        assert.equal(unknown.status, 1, show(unknown));
        assert.match(unknown.stderr, new RegExp(`has no dump of database 'nope' \\(it has: ${source} \\)`));

        const noBackup = runScript("pg-restore.sh", [source, target], { BACKUP_DIR: tempDir(t, "empty") });
        assert.equal(noBackup.status, 1, show(noBackup));
        assert.match(noBackup.stderr, /there is no complete backup/);

        const usage = runScript("pg-restore.sh", [source], { BACKUP_DIR: dir });
        assert.equal(usage.status, 2, show(usage));
        assert.match(usage.stderr, /usage: pg-restore\.sh \[--force\] <source-db> <target-db> \[backup-id\]/);

        assert.deepEqual(await databasesLike(target), [], "no target database was created");
    });
});

describe("pg-restore-drill.sh", () => {
    it("passes on a good backup, prints one summary line per database and drops its scratch databases", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const shop = await database(t, "shop");
        await seed(shop);
        const tiny = await database(t, "tiny");
        await pg.query("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('a'), ('b')", [], tiny);
        const dir = tempDir(t, "backups");
        backup(dir);
        // A scratch database left by a drill killed two days ago.
        const leftover = `drill_gone_${Math.floor(Date.now() / 1000) - 2 * 86400}`;
        await pg.createDatabase(leftover);
        t.after(() => pg?.query(`DROP DATABASE IF EXISTS ${leftover}`));

        const r = runScript("pg-restore-drill.sh", [], { BACKUP_DIR: dir, DRILL_CHECK_QUERY: "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'" });
        assert.equal(r.status, 0, show(r));
        const lines = r.stdout.trim().split("\n");
        assert.equal(lines.length, 2, r.stdout);
        assert.match(lines.find((l) => l.startsWith(`drill ${shop}:`)) ?? "", /: ok backup=\d{8}T\d{6}Z age_hours=0 tables=2 largest=public\.orders rows=5000 check=2 seconds=\d+$/);
        assert.match(lines.find((l) => l.startsWith(`drill ${tiny}:`)) ?? "", /: ok .* tables=1 largest=public\.notes rows=2 check=1 /);
        assert.deepEqual(await databasesLike("drill\\_%"), [], "scratch databases dropped (and the leftover too)");
        assertNoSecret(r, pg.password);

        // An app that has not migrated yet: a database without tables restores and passes.
        const empty = await database(t, "empty");
        backup(dir);
        const emptyRun = runScript("pg-restore-drill.sh", [], { BACKUP_DIR: dir, DRILL_DATABASES: empty });
        assert.equal(emptyRun.status, 0, show(emptyRun));
        assert.match(emptyRun.stdout, new RegExp(`^drill ${empty}: ok backup=\\d{8}T\\d{6}Z age_hours=0 tables=0 largest=- rows=0 seconds=\\d+$`, "m"));
    });

    it("fails when DRILL_CHECK_QUERY is not true or when a checksum is wrong, and still drops the scratch database", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const shop = await database(t, "shop");
        await seed(shop);
        const dir = tempDir(t, "backups");
        const created = backup(dir);

        for (const [query, shown] of [
            ["SELECT count(*) > 1000000 FROM orders", "f"],
            ["SELECT 0", "0"],
            ["SELECT 1, 2", "1|2"],
        ]) {
            const r = runScript("pg-restore-drill.sh", [], { BACKUP_DIR: dir, DRILL_DATABASES: shop, DRILL_CHECK_QUERY: query });
            assert.equal(r.status, 1, show(r));
            assert.equal(r.stdout.trim(), `drill ${shop}: FAILED: DRILL_CHECK_QUERY returned '${shown}', not a single t/true or positive number`);
            assert.match(r.stderr, new RegExp(`dropped scratch database drill_${shop}_\\d{10}`));
            assert.match(r.stderr, new RegExp(`FAILED: restore drill of backup ${path.basename(created)} failed for: ${shop}$`, "m"));
            assert.deepEqual(await databasesLike("drill\\_%"), [], `scratch database dropped after '${query}'`);
        }

        const failingQuery = runScript("pg-restore-drill.sh", [], { BACKUP_DIR: dir, DRILL_DATABASES: shop, DRILL_CHECK_QUERY: "SELECT count(*) FROM no_such_table" });
        assert.equal(failingQuery.status, 1, show(failingQuery));
        assert.match(failingQuery.stdout, /FAILED: DRILL_CHECK_QUERY failed/);
        assert.deepEqual(await databasesLike("drill\\_%"), []);

        const dump = path.join(created, `${shop}.dump`);
        fs.appendFileSync(dump, "garbage");
        const corrupt = runScript("pg-restore-drill.sh", [], { BACKUP_DIR: dir });
        assert.equal(corrupt.status, 1, show(corrupt));
        assert.match(corrupt.stderr, /FAILED: checksums of backup \d{8}T\d{6}Z do not match its MANIFEST/);
    });

    it("fails when there is no backup, or the newest one is too old or incomplete", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const dir = tempDir(t, "backups");
        const none = runScript("pg-restore-drill.sh", [], { BACKUP_DIR: dir });
        assert.equal(none.status, 1, show(none));
        assert.match(none.stderr, /FAILED: there is no backup in .*: has the backup CronJob ever succeeded\?/);

        fakeBackup(dir, stampAgo(72));
        const old = runScript("pg-restore-drill.sh", [], { BACKUP_DIR: dir });
        assert.equal(old.status, 1, show(old));
        assert.match(old.stderr, /FAILED: the newest backup \d{8}T\d{6}Z is 72 hours old \(limit DRILL_MAX_AGE_HOURS=48\): is the backup CronJob running\?/);
        const laxer = runScript("pg-restore-drill.sh", [], { BACKUP_DIR: dir, DRILL_MAX_AGE_HOURS: "100" });
        assert.equal(laxer.status, 1, show(laxer));
        assert.match(laxer.stderr, /FAILED: backup \d{8}T\d{6}Z holds no database dump to drill/);

        // A name in the future must not pass for a fresh backup: it fails the drill.
        fakeBackup(dir, stampAgo(-48));
        const future = runScript("pg-restore-drill.sh", [], { BACKUP_DIR: dir, DRILL_MAX_AGE_HOURS: "100" });
        assert.equal(future.status, 1, show(future));
        assert.match(future.stderr, /FAILED: backup \d{8}T\d{6}Z is named in the future: is a clock wrong\?/);
        fs.rmSync(path.join(dir, stampAgo(-48)), { recursive: true, force: true });
        for (const name of entries(dir).filter((n) => n > stampAgo(0))) fs.rmSync(path.join(dir, name), { recursive: true });

        fs.mkdirSync(path.join(dir, stampAgo(1)));
        const incomplete = runScript("pg-restore-drill.sh", [], { BACKUP_DIR: dir });
        assert.equal(incomplete.status, 1, show(incomplete));
        assert.match(incomplete.stderr, /FAILED: the newest backup \d{8}T\d{6}Z has no MANIFEST/);
    });
});

describe("pg-drill-server.sh", () => {
    /** Runs the drill wrapper as the `postgres` OS user when we are root (PostgreSQL refuses root), with production's settings in the env. */
    function runDrillServer(env: Record<string, string>): Run {
        const server = pg as PgServer;
        const vars = {
            PATH: `${findPgBinDir()}:${process.env.PATH ?? "/usr/bin:/bin"}`,
            HOME: tmpRoot,
            // What a careless pod spec would pass: the drill must ignore it.
            PGHOST: server.host, PGPORT: String(server.port), PGUSER: server.superuser, PGPASSWORD: server.password,
            ...env,
        };
        const asRoot = process.getuid?.() === 0;
        const argv = ["bash", path.join(SCRIPTS_DIR, "pg-drill-server.sh")];
        const r = asRoot
            ? spawnSync("runuser", ["-u", "postgres", "--", "env", ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), ...argv], { encoding: "utf8", timeout: TEST_TIMEOUT })
            : spawnSync(argv[0], argv.slice(1), { encoding: "utf8", env: vars, timeout: TEST_TIMEOUT });
        return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    }
    /** The backups and a work dir the postgres OS user can use. */
    function shareWithPostgres(...dirs: string[]): void {
        for (const dir of [tmpRoot, ...dirs]) fs.chmodSync(dir, 0o755);
        if (process.getuid?.() === 0) for (const dir of dirs) spawnSync("chown", ["-R", "postgres:", dir]);
    }

    it("restores and checks the newest backup in a throwaway server of its own: production can even be down", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const shop = await database(t, "shop");
        await seed(shop);
        const dir = tempDir(t, "backups");
        backup(dir);
        const work = tempDir(t, "drill-work");
        shareWithPostgres(dir, work);
        await pg.stop();
        try {
            const r = runDrillServer({ BACKUP_DIR: dir, DRILL_WORK_DIR: work, DRILL_DATABASES: shop, DRILL_CHECK_QUERY: "SELECT count(*) = 2000 FROM customers" });
            assert.equal(r.status, 0, show(r));
            assert.match(r.stdout, new RegExp(`^drill ${shop}: ok`, "m"));
            assert.match(r.stderr, /throwaway server up in .* \(socket only\)/);
            assert.deepEqual(fs.readdirSync(work), [], "the throwaway server is gone");

            const failed = runDrillServer({ BACKUP_DIR: dir, DRILL_WORK_DIR: work, DRILL_DATABASES: shop, DRILL_CHECK_QUERY: "SELECT false" });
            assert.equal(failed.status, 1, show(failed));
            assert.match(failed.stdout, new RegExp(`^drill ${shop}: FAILED`, "m"));
            assert.deepEqual(fs.readdirSync(work), [], "nothing is left behind after a failure either");
        } finally {
            await pg.start();
        }
        assert.deepEqual(await databasesLike("drill_%"), [], "production never saw a scratch database");
    });
});

/**
 * The roles CloudNativePG creates for an app (database-render.ts cnpgClusterSpec): the owner
 * without login, two login roles in it; and the app's database owned by the owner.
 */
async function appRoles(t: TestContext, app: string, passwords: [string, string]): Promise<void> {
    const server = pg as PgServer;
    const owner = ownerRole(app);
    await server.query(`CREATE ROLE ${quoteIdent(owner)} NOLOGIN`);
    for (const slot of LOGIN_SLOTS) {
        await server.query(`CREATE ROLE ${quoteIdent(loginRole(app, slot))} LOGIN INHERIT IN ROLE ${quoteIdent(owner)} PASSWORD '${passwords[slot - 1]}'`);
    }
    await server.query(`CREATE DATABASE ${quoteIdent(app)} OWNER ${quoteIdent(owner)}`);
    t.after(async () => {
        await server.query(`DROP DATABASE IF EXISTS ${quoteIdent(app)} WITH (FORCE)`);
        for (const slot of LOGIN_SLOTS) await server.query(`DROP ROLE IF EXISTS ${quoteIdent(loginRole(app, slot))}`);
        await server.query(`DROP ROLE IF EXISTS ${quoteIdent(owner)}`);
    });
}

/** true when `user` can log in to `db`, else the server's error. */
function canConnect(db: string, user: string, password: string): Promise<string | true> {
    return connectAs(user, password, db).then(() => true, (err: Error) => err.message);
}

describe("db-grants.sh", () => {
    it("closes each app's database to every other role, and makes the login roles act as its owner", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const [shop, blog] = [`shop-${process.pid}`, `blog-${process.pid}`];
        await appRoles(t, shop, ["shop-pw-1", "shop-pw-2"]);
        await appRoles(t, blog, ["blog-pw-1", "blog-pw-2"]);
        // Before: PostgreSQL lets every role connect to every database (CONNECT is granted to PUBLIC).
        assert.equal(await canConnect(shop, loginRole(blog, 1), "blog-pw-1"), true);

        for (let run = 0; run < 2; run++) {
            const r = runScript("db-grants.sh", [shop, blog]);
            assert.equal(r.status, 0, show(r));
            assert.equal(r.stdout.trim(), "grants applied to 2 database(s)");
        }
        assert.match(String(await canConnect(shop, loginRole(blog, 1), "blog-pw-1")), /permission denied for database/);
        for (const slot of LOGIN_SLOTS) assert.equal(await canConnect(shop, loginRole(shop, slot), `shop-pw-${slot}`), true);

        // A migration run by either login role creates objects the owner role owns, so the other login role can alter them.
        for (const [slot, table] of [[1, "a"], [2, "b"]] as const) {
            const client = new Client({ connectionString: pg.url(shop, loginRole(shop, slot), `shop-pw-${slot}`) });
            await client.connect();
            await client.query(`CREATE TABLE ${table} (id int)`);
            await client.end();
        }
        const owners = await pg.query<{ tableowner: string }>("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'", [], shop);
        assert.deepEqual(owners.map((o) => o.tableowner), [ownerRole(shop)]);
        const other = new Client({ connectionString: pg.url(shop, loginRole(shop, 2), "shop-pw-2") });
        await other.connect();
        await other.query("ALTER TABLE a ADD COLUMN note text");
        await other.end();
    });

    it("refuses a bad app name before changing anything", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const r = runScript("db-grants.sh", ["Bad;Name"]);
        assert.equal(r.status, 2);
        assert.match(r.stderr, /not an app name/);
    });
});

describe("db-login-check.sh", () => {
    it("keeps trying until the login works, then exits 0; gives up after CHECK_TIMEOUT, naming the error", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const app = `check-${process.pid}`;
        await appRoles(t, app, ["old-password", "other"]);
        const env = { PGUSER: loginRole(app, 1), PGPASSWORD: "new-password", PGDATABASE: app, CHECK_TIMEOUT: "2" };
        const failed = runScript("db-login-check.sh", [], env);
        assert.equal(failed.status, 1);
        assert.match(failed.stderr, /still fails after 2s: .*password authentication failed/);
        assert.ok(!failed.stderr.includes("new-password"), "the password is never printed");

        // The operator applies the new password while the check is waiting.
        const check = spawn("bash", [path.join(SCRIPTS_DIR, "db-login-check.sh")], {
            env: { PATH: `${findPgBinDir()}:${process.env.PATH ?? ""}`, HOME: tmpRoot, PGHOST: pg.host, PGPORT: String(pg.port), ...env, CHECK_TIMEOUT: "60" },
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stderr = "";
        check.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const exited = new Promise<number | null>((resolve) => check.on("exit", resolve));
        await new Promise((r) => setTimeout(r, 1500));
        await pg.query(`ALTER ROLE ${quoteIdent(loginRole(app, 1))} PASSWORD 'new-password'`);
        assert.equal(await exited, 0, stderr);
        assert.match(stderr, /works \(attempt \d+\)/);
    });
});

describe("pg-pitr-drill-check.sh (the object-store drill's check, here against a plain server standing in for the recovered Cluster)", () => {
    it("passes when every app database is there (one without tables too), fails naming a missing one or a false check", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const shop = await database(t, "shop");
        await seed(shop);
        const empty = await database(t, "empty");
        const ok = runScript("pg-pitr-drill-check.sh", [], { DRILL_DATABASES: `${shop} ${empty}` });
        assert.equal(ok.status, 0, show(ok));
        assert.match(ok.stdout, new RegExp(`^pitr-drill ${shop}: ok timeline=1 tables=2 largest=public\\.orders rows=5000$`, "m"));
        assert.match(ok.stdout, new RegExp(`^pitr-drill ${empty}: ok timeline=1 tables=0 largest=- rows=0$`, "m"));
        assertNoSecret(ok, pg.password);

        const missing = `gone_${process.pid}`;
        const notThere = runScript("pg-pitr-drill-check.sh", [], { DRILL_DATABASES: `${shop} ${missing}` });
        assert.equal(notThere.status, 1, show(notThere));
        assert.match(notThere.stdout, new RegExp(`^pitr-drill ${shop}: ok `, "m"), "the others are still checked");
        assert.match(notThere.stdout, new RegExp(`^pitr-drill ${missing}: FAILED: not in the recovered Cluster$`, "m"));
        assert.match(notThere.stderr, new RegExp(`FAILED: object-store drill failed for: ${missing}$`, "m"));

        const falseCheck = runScript("pg-pitr-drill-check.sh", [], { DRILL_DATABASES: shop, DRILL_CHECK_QUERY: "SELECT count(*) = 1 FROM customers" });
        assert.equal(falseCheck.status, 1, show(falseCheck));
        assert.match(falseCheck.stdout, new RegExp(`^pitr-drill ${shop}: FAILED: DRILL_CHECK_QUERY returned 'f', not a single t/true or positive number$`, "m"));

        const unset = runScript("pg-pitr-drill-check.sh", []);
        assert.equal(unset.status, 2, show(unset));
        assert.match(unset.stderr, /DRILL_DATABASES is required/);
        const badLogin = runScript("pg-pitr-drill-check.sh", [], { DRILL_DATABASES: shop, PGPASSWORD: "wrong", CHECK_TIMEOUT: "2" });
        assert.equal(badLogin.status, 1, show(badLogin));
        assert.match(badLogin.stderr, /FAILED: cannot log in to the recovered Cluster/);
    });

    it("fails while the server is still in recovery: it has not reached the end of the archived WAL", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t)) return;
        const standby = await startPostgres();
        t.after(() => standby.destroy());
        await standby.stop();
        // An empty standby.signal without primary_conninfo: a hot standby that stays in recovery.
        const signal = path.join(standby.dataDir, "standby.signal");
        fs.writeFileSync(signal, "");
        const owner = fs.statSync(standby.dataDir);
        fs.chownSync(signal, owner.uid, owner.gid);
        await standby.start();
        const r = runScript("pg-pitr-drill-check.sh", [], { DRILL_DATABASES: "postgres", PGHOST: standby.host, PGPORT: String(standby.port), PGPASSWORD: standby.password });
        assert.equal(r.status, 1, show(r));
        assert.match(r.stderr, /FAILED: the recovered server is still in recovery/);
    });
});
