// The database scripts (backup, restore, restore drill, roles) run for real by
// bash against a real PostgreSQL (Debian's, via test/support/postgres.ts): one
// server for the whole file, fresh databases and temp dirs per test, all
// removed afterwards. The scripts are only clients: they connect over TCP with
// a password, as in the cluster.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { Client } from "pg";
import { findPgBinDir, freePort, postgresUnavailableReason, requirePostgres, startPostgres, type PgServer } from "./support/postgres";

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
        fs.writeFileSync(path.join(stubs, "pg_dump"), "#!/usr/bin/env bash\necho 'pg_dump: error: simulated failure' >&2\nexit 1\n", { mode: 0o755 });
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
        assert.deepEqual(await rowCounts(target), expected, "dropped and recreated: only the backup's tables");

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

        fs.mkdirSync(path.join(dir, stampAgo(1)));
        const incomplete = runScript("pg-restore-drill.sh", [], { BACKUP_DIR: dir });
        assert.equal(incomplete.status, 1, show(incomplete));
        assert.match(incomplete.stderr, /FAILED: the newest backup \d{8}T\d{6}Z has no MANIFEST/);
    });
});

describe("db-ensure-roles.sh", () => {
    /** ROLES_DIR laid out like a mounted Secret: files in a ..<timestamp> dir, reached through ..data and symlinks; rewritten atomically like the kubelet does. */
    function rolesDir(t: TestContext, passwords: Record<string, string>): string {
        const dir = tempDir(t, "roles");
        writeRoles(dir, passwords);
        return dir;
    }
    function writeRoles(dir: string, passwords: Record<string, string>): void {
        const version = `..${Date.now()}_${++counter}`;
        fs.mkdirSync(path.join(dir, version), { mode: 0o700 });
        for (const [name, password] of Object.entries(passwords)) fs.writeFileSync(path.join(dir, version, name), password, { mode: 0o600 });
        fs.rmSync(path.join(dir, "..data"), { force: true });
        fs.symlinkSync(version, path.join(dir, "..data"));
        for (const name of fs.readdirSync(dir)) {
            if (!name.startsWith(".") && !(name in passwords)) fs.rmSync(path.join(dir, name));
        }
        for (const name of Object.keys(passwords)) {
            if (!fs.existsSync(path.join(dir, name))) fs.symlinkSync(path.join("..data", name), path.join(dir, name));
        }
    }
    /** Drops the app databases and roles after the test. */
    function cleanupApps(t: TestContext, ...slugs: string[]): void {
        t.after(async () => {
            for (const slug of slugs) {
                await pg?.query(`DROP DATABASE IF EXISTS ${quoteIdent(slug)} WITH (FORCE)`);
                await pg?.query(`DROP ROLE IF EXISTS ${quoteIdent(`app_${slug}`)}`);
            }
        });
    }

    it("creates the roles and their private databases, runs idempotently, and prints no password", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        cleanupApps(t, "shop-1", "blog");
        const shopPassword = `it's $HOME and "$(id)" \\ \`x\` $1 ;--`;
        const blogPassword = "blog-secret";
        const dir = rolesDir(t, { "app_shop-1": shopPassword, app_blog: `${blogPassword}\n` });

        const first = runScript("db-ensure-roles.sh", [], { ROLES_DIR: dir });
        assert.equal(first.status, 0, show(first));
        assert.equal(first.stdout, "ensured 2 app roles and databases: blog shop-1\n");
        assert.match(first.stderr, /created role app_shop-1\n/);
        assert.match(first.stderr, /created database shop-1 owned by app_shop-1\n/);
        const state = async () =>
            pg!.query(
                `SELECT d.datname, pg_get_userbyid(d.datdba) AS owner, r.rolcanlogin AS login, r.rolsuper AS super,
                        has_database_privilege('app_blog', d.datname, 'CONNECT') AS blog_connects
                   FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname IN ('shop-1', 'blog') ORDER BY 1`,
            );
        const expected = [
            { datname: "blog", owner: "app_blog", login: true, super: false, blog_connects: true },
            { datname: "shop-1", owner: "app_shop-1", login: true, super: false, blog_connects: false },
        ];
        assert.deepEqual(await state(), expected);
        assert.equal(await connectAs("app_shop-1", shopPassword, "shop-1"), "app_shop-1");
        assert.equal(await connectAs("app_blog", blogPassword, "blog"), "app_blog");
        await assert.rejects(connectAs("app_blog", blogPassword, "shop-1"), /permission denied for database "shop-1"/);

        const second = runScript("db-ensure-roles.sh", [], { ROLES_DIR: dir });
        assert.equal(second.status, 0, show(second));
        assert.doesNotMatch(second.stderr, /created/);
        assert.deepEqual(await state(), expected);
        assert.equal(await connectAs("app_shop-1", shopPassword, "shop-1"), "app_shop-1");

        for (const r of [first, second]) assertNoSecret(r, shopPassword, blogPassword, pg.password);
        assert.ok(!pg.log().includes("blog-secret"), "the server log holds no password");
    });

    it("rotates a password when its file changes: the old one stops working, the new one works", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        cleanupApps(t, "rotate");
        const dir = rolesDir(t, { app_rotate: "first-password" });
        assert.equal(runScript("db-ensure-roles.sh", [], { ROLES_DIR: dir }).status, 0);
        assert.equal(await connectAs("app_rotate", "first-password", "rotate"), "app_rotate");

        writeRoles(dir, { app_rotate: "second'pass$word\r\n" });
        const r = runScript("db-ensure-roles.sh", [], { ROLES_DIR: dir });
        assert.equal(r.status, 0, show(r));
        await assert.rejects(connectAs("app_rotate", "first-password", "rotate"), /password authentication failed/);
        assert.equal(await connectAs("app_rotate", "second'pass$word", "rotate"), "app_rotate");
        assertNoSecret(r, "second'pass$word");
    });

    it("rotates the connecting superuser's password last with SUPERUSER_PASSWORD_FILE", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const superuser = `su_${process.pid}`;
        await pg.query(`CREATE ROLE ${superuser} SUPERUSER LOGIN PASSWORD 'old-superuser-password'`);
        t.after(() => pg?.query(`DROP ROLE IF EXISTS ${superuser}`));
        cleanupApps(t, "suapp");
        const dir = rolesDir(t, { app_suapp: "app-password" });
        const newPassword = "new 'super' $PASSWORD";
        const file = path.join(tempDir(t, "su"), "password");
        fs.writeFileSync(file, `${newPassword}\n`);

        const r = runScript("db-ensure-roles.sh", [], { ROLES_DIR: dir, PGUSER: superuser, PGPASSWORD: "old-superuser-password", SUPERUSER_PASSWORD_FILE: file });
        assert.equal(r.status, 0, show(r));
        assert.equal(r.stdout, "ensured 1 app roles and databases: suapp; superuser password set\n");
        assert.ok(r.stderr.indexOf(`set the password of the superuser ${superuser}`) > r.stderr.indexOf("revoked all on database suapp"), "superuser last");
        await assert.rejects(connectAs(superuser, "old-superuser-password", "postgres"), /password authentication failed/);
        assert.equal(await connectAs(superuser, newPassword, "postgres"), superuser);
        assert.equal(await connectAs("app_suapp", "app-password", "suapp"), "app_suapp");
        assertNoSecret(r, newPassword, "old-superuser-password", "app-password");

        // A failing app role stops the run before the superuser's password changes
        // (here: the superuser's sessions are made read-only, so CREATE ROLE fails).
        cleanupApps(t, "blocked");
        writeRoles(dir, { app_suapp: "app-password", app_blocked: "blocked-password" });
        const other = path.join(tempDir(t, "su"), "password");
        fs.writeFileSync(other, "never-set");
        await pg.query(`ALTER ROLE ${superuser} SET default_transaction_read_only = on`);
        const broken = runScript("db-ensure-roles.sh", [], { ROLES_DIR: dir, PGUSER: superuser, PGPASSWORD: newPassword, SUPERUSER_PASSWORD_FILE: other });
        assert.equal(broken.status, 1, show(broken));
        assert.match(broken.stderr, /cannot execute CREATE ROLE in a read-only transaction/);
        assert.match(broken.stderr, /FAILED: setting up role app_blocked and database blocked failed/);
        assert.equal(broken.stdout, "");
        assert.equal(await connectAs(superuser, newPassword, "postgres"), superuser, "superuser password unchanged");
        assertNoSecret(broken, "blocked-password", "never-set", newPassword);
    });

    it("refuses an unexpected file or an empty password before changing anything", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        cleanupApps(t, "good");
        const badName = rolesDir(t, { app_good: "pw", App_Bad: "pw" });
        const r = runScript("db-ensure-roles.sh", [], { ROLES_DIR: badName });
        assert.equal(r.status, 2, show(r));
        assert.match(r.stderr, /unexpected entry 'App_Bad' in ROLES_DIR: files must be named app_<slug>/);
        const empty = rolesDir(t, { app_good: "pw", app_empty: "\n" });
        const e = runScript("db-ensure-roles.sh", [], { ROLES_DIR: empty });
        assert.equal(e.status, 2, show(e));
        assert.match(e.stderr, /the password file of app_empty is empty/);
        const missing = runScript("db-ensure-roles.sh", []);
        assert.equal(missing.status, 2, show(missing));
        assert.match(missing.stderr, /ROLES_DIR is required/);
        assert.deepEqual(await pg.query("SELECT rolname FROM pg_roles WHERE rolname = 'app_good'"), []);
    });
});
