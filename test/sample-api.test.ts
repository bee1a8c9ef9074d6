// The sample API (examples/api) against a real PostgreSQL: the contract the
// platform relies on. Start-up config errors, migrations as a Job (idempotent,
// serialised by an advisory lock), /health with a time budget, and graceful
// shutdown on SIGTERM. Real processes, run from source with tsx.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as http from "node:http";
import * as path from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import type { AddressInfo } from "node:net";
import { Client, Pool } from "pg";
import type { AppSettings } from "../components/apps/app-config";
import { deployment, migrationJob } from "../components/apps/app-render";
import { parseConfig } from "../components/config";
import { createApp } from "../examples/api/src/app";
import { loadApiConfig, parseDuration } from "../examples/api/src/config";
import { createLogger } from "../examples/api/src/log";
import { MIGRATION_LOCK_KEY, MIGRATIONS } from "../examples/api/src/migrations";
import { findPgBin, postgresUnavailableReason, requirePostgres, startPostgres, type PgServer } from "./support/postgres";

const REPO = path.resolve(__dirname, "..");
const TEST_TIMEOUT = 60_000;

// ---------------------------------------------------------------- processes

interface LogLine {
    level: string;
    msg: string;
    [field: string]: unknown;
}

interface Exit {
    code: number | null;
    signal: NodeJS.Signals | null;
}

interface ExampleProcess {
    child: ChildProcess;
    /** stdout and stderr so far. */
    output(): string;
    stderr(): string;
    /** Every JSON log line so far, from both streams. */
    logs(): LogLine[];
    waitForLog(predicate: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
    exited: Promise<Exit>;
    waitForExit(timeoutMs?: number): Promise<Exit>;
}

// Variables the example reads: the test sets them explicitly, never inherits them.
const EXAMPLE_VARIABLES = ["DATABASE_URL", "DATABASE_DIRECT_URL", "PGOPTIONS", "PORT", "HEALTH_TIMEOUT", "SHUTDOWN_TIMEOUT", "DB_MAX_CONNECTIONS", "DB_POOL_TIMEOUT", "LOG_LEVEL"];

// Children still running when this process exits (a test failed before its
// `after` ran, or the run was interrupted) are killed with it.
const children = new Set<ChildProcess>();
process.on("exit", () => {
    for (const child of children) child.kill("SIGKILL");
});

/** Runs examples/api/src/<script>.ts; killed when the test ends if still running. */
function runExample(t: TestContext, script: "main" | "migrate", env: Record<string, string>): ExampleProcess {
    const childEnv: NodeJS.ProcessEnv = { ...process.env };
    for (const name of [...EXAMPLE_VARIABLES, "NODE_TEST_CONTEXT"]) delete childEnv[name];
    Object.assign(childEnv, env);
    const child = spawn(process.execPath, ["--import", "tsx", path.join("examples", "api", "src", `${script}.ts`)], {
        cwd: REPO,
        env: childEnv,
        stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    let output = "";
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const lines: LogLine[] = [];
    const waiters = new Set<() => void>();
    for (const stream of [child.stdout, child.stderr]) {
        let partial = "";
        stream?.on("data", (chunk: Buffer) => {
            output += chunk.toString();
            partial += chunk.toString();
            const complete = partial.split("\n");
            partial = complete.pop() ?? "";
            for (const line of complete.filter((l) => l.trim() !== "")) {
                try {
                    lines.push(JSON.parse(line) as LogLine);
                } catch {
                    // Not JSON (e.g. a Node warning): kept in output() only.
                }
            }
            for (const wake of waiters) wake();
        });
    }
    const exited = new Promise<Exit>((resolve) =>
        child.on("exit", (code, signal) => {
            children.delete(child);
            resolve({ code, signal });
        }),
    );
    t.after(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });

    const proc: ExampleProcess = {
        child,
        output: () => output,
        stderr: () => stderr,
        logs: () => lines,
        exited,
        waitForLog(predicate, what, timeoutMs = 15_000) {
            return new Promise((resolve, reject) => {
                const check = (): boolean => {
                    const found = lines.find(predicate);
                    if (found) {
                        cleanup();
                        resolve(found);
                    }
                    return found !== undefined;
                };
                const timer = setTimeout(() => {
                    cleanup();
                    reject(new Error(`no log line ${what} within ${timeoutMs} ms; output:\n${output}`));
                }, timeoutMs);
                const cleanup = (): void => {
                    clearTimeout(timer);
                    waiters.delete(wake);
                };
                const wake = (): void => void check();
                if (check()) return;
                waiters.add(wake);
                void exited.then(() => {
                    if (!check()) {
                        cleanup();
                        reject(new Error(`exited before log line ${what}; output:\n${output}`));
                    }
                });
            });
        },
        async waitForExit(timeoutMs = 20_000) {
            let timer: NodeJS.Timeout | undefined;
            const timeout = new Promise<never>((_, reject) => {
                timer = setTimeout(() => reject(new Error(`${script} did not exit within ${timeoutMs} ms; output:\n${output}`)), timeoutMs);
            });
            try {
                return await Promise.race([exited, timeout]);
            } finally {
                clearTimeout(timer);
            }
        },
    };
    return proc;
}

/** Starts the server on a free port (PORT=0) and waits until it listens. */
async function startApi(t: TestContext, env: Record<string, string>): Promise<{ proc: ExampleProcess; port: number }> {
    const proc = runExample(t, "main", { PORT: "0", ...env });
    const listening = await proc.waitForLog((l) => l.msg === "listening", '"listening"');
    assert.equal(typeof listening.port, "number");
    return { proc, port: listening.port as number };
}

async function runMigrate(t: TestContext, env: Record<string, string>): Promise<{ exit: Exit; proc: ExampleProcess }> {
    const proc = runExample(t, "migrate", env);
    return { exit: await proc.waitForExit(), proc };
}

function appliedCount(proc: ExampleProcess): number {
    const line = proc.logs().find((l) => l.msg === "migrations applied");
    assert.ok(line, `no "migrations applied" log line:\n${proc.output()}`);
    assert.equal(typeof line.applied, "number");
    return line.applied as number;
}

// --------------------------------------------------------------------- HTTP

interface Response {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: unknown;
}

/** One request, bounded in time; on a new connection unless a keep-alive `agent` is given. */
function request(port: number, method: string, urlPath: string, body?: unknown, timeoutMs = 10_000, agent: http.Agent | false = false): Promise<Response> {
    return new Promise((resolve, reject) => {
        const payload = body === undefined ? undefined : JSON.stringify(body);
        const req = http.request(
            {
                host: "127.0.0.1",
                port,
                method,
                path: urlPath,
                agent,
                timeout: timeoutMs,
                headers: payload === undefined ? {} : { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) },
            },
            (res) => {
                let text = "";
                res.on("data", (d: Buffer) => (text += d.toString()));
                res.on("error", reject);
                res.on("end", () => {
                    try {
                        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text === "" ? undefined : JSON.parse(text) });
                    } catch (err) {
                        reject(new Error(`${method} ${urlPath}: body is not JSON: ${text} (${String(err)})`));
                    }
                });
            },
        );
        req.on("timeout", () => req.destroy(new Error(`${method} ${urlPath}: no answer within ${timeoutMs} ms`)));
        req.on("error", reject);
        req.end(payload);
    });
}

/** Polls `probe` until it returns true; bounded. */
async function waitFor(probe: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
        try {
            if (await probe()) return;
        } catch (err) {
            last = err;
        }
        await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
}

async function healthStatus(port: number): Promise<number> {
    return (await request(port, "GET", "/health")).status;
}

/** Waits until a backend of `database` is inside pg_sleep, i.e. /slow is in flight. */
function waitForSleepingQuery(pg: PgServer, database: string): Promise<void> {
    return waitFor(async () => {
        const rows = await pg.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
            [database],
        );
        return rows[0].n > 0;
    }, "the /slow request to reach pg_sleep");
}

function assertNoSecret(proc: ExampleProcess, secret: string): void {
    assert.ok(!proc.output().includes(secret), `the password appears in the output:\n${proc.output()}`);
}

// ------------------------------------------------------------------- tests

describe("sample API: configuration errors", () => {
    it("exits 1 with a fatal JSON line when DATABASE_URL is not set or empty", { timeout: TEST_TIMEOUT }, async (t) => {
        for (const [script, env] of [["main", {}], ["main", { DATABASE_URL: "" }], ["migrate", {}], ["migrate", { DATABASE_URL: " " }]] as const) {
            const proc = runExample(t, script, env);
            const exit = await proc.waitForExit();
            assert.equal(exit.code, 1, `${script}: ${proc.output()}`);
            const fatal = proc.logs().find((l) => l.level === "fatal");
            assert.ok(fatal, `${script}: no fatal log line:\n${proc.output()}`);
            assert.match(fatal.msg, /DATABASE_URL is not set/);
            assert.equal(fatal.variable, "DATABASE_URL");
            assert.match(proc.stderr(), /DATABASE_URL is not set/, "the reason goes to stderr");
        }
    });

    it("exits 1 naming HEALTH_TIMEOUT when it is not a duration, without printing the password", { timeout: TEST_TIMEOUT }, async (t) => {
        const password = "s3cret-pass-123";
        const proc = runExample(t, "main", { DATABASE_URL: `postgres://app:${password}@127.0.0.1:1/app`, HEALTH_TIMEOUT: "abc" });
        const exit = await proc.waitForExit();
        assert.equal(exit.code, 1, proc.output());
        const fatal = proc.logs().find((l) => l.level === "fatal");
        assert.ok(fatal, proc.output());
        assert.match(fatal.msg, /HEALTH_TIMEOUT/);
        assert.equal(fatal.variable, "HEALTH_TIMEOUT");
        assertNoSecret(proc, password);
    });
});

describe("sample API: configuration parsing", () => {
    it("reads durations as 500ms, 3s, 2m or bare seconds, and rejects anything else", () => {
        assert.equal(parseDuration("500ms"), 500);
        assert.equal(parseDuration("3s"), 3000);
        assert.equal(parseDuration("2m"), 120_000);
        assert.equal(parseDuration("1.5"), 1500);
        for (const bad of ["abc", "3 sec", "-1s", "1h", "", "3s5"]) assert.equal(parseDuration(bad), undefined, bad);
    });

    it("has the documented defaults, and reports every bad variable at once", () => {
        const ok = loadApiConfig({ DATABASE_URL: "postgres://a:b@h/db" });
        assert.ok(ok.ok);
        assert.deepEqual(
            { ...ok.config, databaseUrl: undefined },
            { databaseUrl: undefined, port: 8080, healthTimeoutMs: 3000, shutdownTimeoutMs: 30_000, dbMaxConnections: 10, dbPoolTimeoutMs: 3000, logLevel: "info" },
        );
        const bad = loadApiConfig({ PORT: "http", SHUTDOWN_TIMEOUT: "0s", DB_MAX_CONNECTIONS: "-3", DB_POOL_TIMEOUT: "soon" });
        assert.ok(!bad.ok);
        assert.deepEqual(bad.problems.map((p) => p.variable).sort(), ["DATABASE_URL", "DB_MAX_CONNECTIONS", "DB_POOL_TIMEOUT", "PORT", "SHUTDOWN_TIMEOUT"]);
    });
});

describe("sample API: handler during shutdown", () => {
    it("answers /health with 503 \"shutting down\" and closes the connection once SIGTERM was received", { timeout: TEST_TIMEOUT }, async (t) => {
        // In the real process the listener closes at once, so this path is only
        // reachable for a request already on an open connection: test it directly.
        // The pool points nowhere; it must not even be asked.
        const pool = new Pool({ connectionString: "postgres://nobody:nothing@127.0.0.1:1/none", connectionTimeoutMillis: 100 });
        const server = http.createServer(createApp({ pool, log: createLogger({ write: () => undefined }), healthTimeoutMs: 1000, state: { shuttingDown: true, inFlight: 0 } }));
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
        t.after(() => pool.end());
        const port = (server.address() as AddressInfo).port;

        const health = await request(port, "GET", "/health");
        assert.equal(health.status, 503);
        assert.deepEqual(health.body, { status: "shutting down" });
        assert.equal(health.headers.connection, "close");
        assert.equal(pool.totalCount, 0, "no database connection should be opened while shutting down");
    });
});

describe("sample API with PostgreSQL", () => {
    let pg: PgServer | undefined;
    let counter = 0;
    /** A fresh database per test, so tests do not depend on each other. */
    const freshDatabase = async (): Promise<string> => (pg as PgServer).createDatabase(`t${process.pid}_${++counter}`);

    before(async () => {
        if (postgresUnavailableReason() === undefined) pg = await startPostgres();
    });
    after(async () => {
        await pg?.destroy();
    });

    it("migrate applies the migrations once; a second run applies none", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const db = await freshDatabase();

        const first = await runMigrate(t, { DATABASE_URL: pg.url(db) });
        assert.equal(first.exit.code, 0, first.proc.output());
        assert.equal(appliedCount(first.proc), MIGRATIONS.length);
        const recorded = await pg.query<{ version: string }>("SELECT version FROM schema_migrations ORDER BY version", [], db);
        assert.deepEqual(recorded.map((r) => r.version), MIGRATIONS.map((m) => m.version));
        await pg.query("SELECT id, name, created_at FROM items", [], db); // the table exists

        const second = await runMigrate(t, { DATABASE_URL: pg.url(db) });
        assert.equal(second.exit.code, 0, second.proc.output());
        assert.equal(appliedCount(second.proc), 0);
        assertNoSecret(first.proc, pg.password);
    });

    it("migrate prefers DATABASE_DIRECT_URL over DATABASE_URL", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const db = await freshDatabase();
        // DATABASE_URL points at nothing: only the direct URL can work.
        const run = await runMigrate(t, { DATABASE_DIRECT_URL: pg.url(db), DATABASE_URL: "postgres://nobody:nothing@127.0.0.1:1/none" });
        assert.equal(run.exit.code, 0, run.proc.output());
        assert.equal(appliedCount(run.proc), MIGRATIONS.length);
    });

    it("two concurrent migrate runs wait for each other on the advisory lock and both succeed", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const db = await freshDatabase();
        // Hold the migration lock so both runs are certainly waiting at the
        // same time; without the lock they would race to CREATE TABLE.
        const holder = await holdMigrationLock(t, pg.url(db));

        const runs = [runExample(t, "migrate", { DATABASE_URL: pg.url(db) }), runExample(t, "migrate", { DATABASE_URL: pg.url(db) })];
        const server = pg;
        await waitFor(async () => {
            const rows = await server.query<{ n: number }>(
                "SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname = $1 AND l.locktype = 'advisory' AND NOT l.granted",
                [db],
            );
            return rows[0].n === 2;
        }, "both migrate runs to wait for the advisory lock", 20_000);
        await holder.query("SELECT pg_advisory_unlock($1::bigint)", [MIGRATION_LOCK_KEY]);

        const exits = await Promise.all(runs.map((r) => r.waitForExit()));
        for (const [i, exit] of exits.entries()) assert.equal(exit.code, 0, runs[i].output());
        assert.deepEqual(runs.map(appliedCount).sort(), [0, MIGRATIONS.length]);
        const tables = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tablename = 'items'", [], db);
        assert.equal(tables[0].n, 1);
        const recorded = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM schema_migrations", [], db);
        assert.equal(recorded[0].n, MIGRATIONS.length);
    });

    it("with the platform's migration env, a migration waiting for a lock fails fast instead of stalling the app's reads", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const psql = findPgBin("psql");
        assert.ok(psql, "psql ships with PostgreSQL");
        const db = await freshDatabase();
        await pg.query("CREATE TABLE items (id bigserial PRIMARY KEY, name text); INSERT INTO items (name) VALUES ('a')", [], db);
        const lockTimeout = 2;
        const env = migrationEnv({ migrationLockTimeout: lockTimeout });

        // The nightly pg_dump: a long transaction holding ACCESS SHARE on every table it dumps.
        const dump = new Client({ connectionString: pg.url(db) });
        await dump.connect();
        t.after(() => dump.end().catch(() => undefined));
        await dump.query("BEGIN; LOCK TABLE items IN ACCESS SHARE MODE");
        try {
            // A release's ALTER TABLE, run by a libpq tool (psql) with the Job's environment.
            const alter = spawn(psql, [pg.url(db), "-v", "ON_ERROR_STOP=1", "-c", "ALTER TABLE items ADD COLUMN note text"], {
                env: { ...process.env, PGOPTIONS: env.PGOPTIONS },
                stdio: ["ignore", "pipe", "pipe"],
            });
            let stderr = "";
            alter.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
            const altered = new Promise<number | null>((resolve) => alter.on("exit", resolve));
            const server = pg;
            await waitFor(async () => (await server.query<{ n: number }>(
                "SELECT count(*)::int AS n FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND NOT granted AND relation = $1::regclass",
                ["items"], db))[0].n === 1, "the ALTER TABLE to queue behind the dump's lock");
            // The app's reads queue behind the waiting ALTER...
            const reader = new Client({ connectionString: pg.url(db) });
            await reader.connect();
            t.after(() => reader.end().catch(() => undefined));
            const read = reader.query<{ n: number }>("SELECT count(*)::int AS n FROM items");
            // ...until the migration gives up after lock_timeout, while the dump still runs.
            const giveUp = new Promise<"stalled">((resolve) => setTimeout(() => resolve("stalled"), 20_000).unref());
            const code = await Promise.race([altered, giveUp]);
            assert.notEqual(code, "stalled", "the ALTER TABLE was still waiting after 20 s: no lock_timeout reached it");
            assert.notEqual(code, 0);
            assert.match(stderr, /canceling statement due to lock timeout/);
            assert.equal((await read).rows[0].n, 1);
        } finally {
            await dump.query("ROLLBACK");
        }
    });

    it("the sample migrate obeys the platform's lock timeout (node-postgres reads PGOPTIONS) and exits 1", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const db = await freshDatabase();
        // A migrator that never finishes holds the migration lock.
        await holdMigrationLock(t, pg.url(db));
        const run = await runMigrate(t, { DATABASE_URL: pg.url(db), PGOPTIONS: migrationEnv({ migrationLockTimeout: 1 }).PGOPTIONS });
        assert.equal(run.exit.code, 1, run.proc.output());
        assert.match(String(run.proc.logs().find((l) => l.level === "fatal")?.error), /lock timeout/);
    });

    it("migrate exits 1 with a JSON error when it cannot log in, without printing the password", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const wrong = "wrong-password-4711";
        const run = await runMigrate(t, { DATABASE_URL: pg.url("postgres", pg.superuser, wrong) });
        assert.equal(run.exit.code, 1, run.proc.output());
        const fatal = run.proc.logs().find((l) => l.level === "fatal");
        assert.ok(fatal, run.proc.output());
        assert.match(String(fatal.error), /password authentication failed/);
        assertNoSecret(run.proc, wrong);
    });

    it("serves /health and round-trips items", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const db = await freshDatabase();
        assert.equal((await runMigrate(t, { DATABASE_URL: pg.url(db) })).exit.code, 0);
        const { proc, port } = await startApi(t, { DATABASE_URL: pg.url(db) });

        const health = await request(port, "GET", "/health");
        assert.equal(health.status, 200);
        assert.deepEqual(health.body, { status: "ok" });
        assert.deepEqual((await request(port, "GET", "/")).body, { service: "api" });

        const created = await request(port, "POST", "/items", { name: "first item" });
        assert.equal(created.status, 201);
        const listed = await request(port, "GET", "/items");
        assert.equal(listed.status, 200);
        const items = (listed.body as { items: { id: string; name: string; created_at: string }[] }).items;
        assert.deepEqual(items.map((i) => i.name), ["first item"]);
        assert.ok(!Number.isNaN(Date.parse(items[0].created_at)));
        assert.deepEqual(created.body, items[0]);

        assert.equal((await request(port, "POST", "/items", { nom: "x" })).status, 400);
        assert.equal((await request(port, "GET", "/nope")).status, 404);
        assert.equal((await request(port, "DELETE", "/items")).status, 405);

        // Every stdout/stderr line is a JSON log; requests are logged with their outcome.
        const nonJson = proc.output().split("\n").filter((l) => l.trim() !== "" && !l.trim().startsWith("{"));
        assert.deepEqual(nonJson, []);
        const logged = await proc.waitForLog((l) => l.msg === "request" && l.method === "POST" && l.path === "/items" && l.status === 201, "for POST /items");
        assert.equal(typeof logged.duration_ms, "number");
        assertNoSecret(proc, pg.password);
    });

    it("on SIGTERM finishes the in-flight request, refuses new work, and exits 0", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const db = await freshDatabase();
        const { proc, port } = await startApi(t, { DATABASE_URL: pg.url(db), SHUTDOWN_TIMEOUT: "10s" });
        // Keep-alive, as a proxy in front of the pod would: one connection
        // idle at SIGTERM, one with the request in flight. Neither may hold
        // the process open after the work is done.
        const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 2 });
        t.after(() => keepAlive.destroy());
        assert.equal((await request(port, "GET", "/health", undefined, 10_000, keepAlive)).status, 200);

        const slow = request(port, "GET", "/slow?seconds=2", undefined, 10_000, keepAlive);
        await waitForSleepingQuery(pg, db);
        proc.child.kill("SIGTERM");
        await proc.waitForLog((l) => l.msg === "shutting down", '"shutting down"');

        // Readiness must drop: either the listener is closed or /health says no.
        const health = await request(port, "GET", "/health", undefined, 3000).then(
            (r) => r.status,
            (err: NodeJS.ErrnoException) => err.code ?? err.message,
        );
        assert.notEqual(health, 200, "the server still reported healthy during shutdown");

        const slowResponse = await slow;
        assert.equal(slowResponse.status, 200);
        assert.deepEqual(slowResponse.body, { slept_seconds: 2 });
        assert.equal(slowResponse.headers.connection, "close", "the server should end keep-alive connections while draining");
        // Promptly: not after a keep-alive timeout.
        const exit = await proc.waitForExit(2000);
        assert.deepEqual(exit, { code: 0, signal: null }, proc.output());
    });

    it("exits 1 when in-flight work outlasts SHUTDOWN_TIMEOUT", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t) || !pg) return;
        const db = await freshDatabase();
        const { proc, port } = await startApi(t, { DATABASE_URL: pg.url(db), SHUTDOWN_TIMEOUT: "1s" });

        const slow = request(port, "GET", "/slow?seconds=5").catch((err: Error) => err);
        await waitForSleepingQuery(pg, db);
        const signalled = Date.now();
        proc.child.kill("SIGTERM");
        const exit = await proc.waitForExit(10_000);
        const elapsed = Date.now() - signalled;
        assert.equal(exit.code, 1, proc.output());
        assert.ok(elapsed < 4000, `took ${elapsed} ms to give up (SHUTDOWN_TIMEOUT=1s)`);
        assert.ok(proc.logs().some((l) => l.level === "fatal" && /shutdown timed out/.test(l.msg)), proc.output());
        assert.ok((await slow) instanceof Error, "the cut-off request should fail, not succeed");
    });
});

/** A session holding the sample's migration lock until the test ends (or it is unlocked). */
async function holdMigrationLock(t: TestContext, url: string): Promise<Client> {
    const holder = new Client({ connectionString: url });
    await holder.connect();
    t.after(() => holder.end().catch(() => undefined));
    await holder.query("SELECT pg_advisory_lock($1::bigint)", [MIGRATION_LOCK_KEY]);
    return holder;
}

/** The literal env the platform's migration Job sets, for an app with default settings plus `overrides`. */
function migrationEnv(overrides: Partial<AppSettings>): Record<string, string> {
    const app: AppSettings = { ...defaultApp(), migrationCommand: ["migrate"], ...overrides };
    const job = migrationJob(app, { image: "api:1", pullFromRegistry: false }, "api-migrate");
    const [c] = (job.spec as unknown as { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } }).template.spec.containers;
    return Object.fromEntries(c.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
}

/** An app as stack config with only an image makes it: every setting at its default. */
function defaultApp(): AppSettings {
    // Existing mode needs nothing but the app.
    return parseConfig({ stack: "local", values: { mode: "existing", tls: "off", apps: JSON.stringify({ api: { image: "api:1" } }) }, isSecret: () => true }).apps[0];
}

/** The paths the platform's Deployment probes, for an app with default settings (as prod deploys the sample API). */
function platformProbePaths(): { startup: string; readiness: string; liveness: string } {
    const app = defaultApp();
    const spec = deployment(app, { image: "api:1", pullFromRegistry: false }, "sum").spec as unknown as {
        template: { spec: { containers: Record<"startupProbe" | "readinessProbe" | "livenessProbe", { httpGet: { path: string } }>[] } };
    };
    const [c] = spec.template.spec.containers;
    return { startup: c.startupProbe.httpGet.path, readiness: c.readinessProbe.httpGet.path, liveness: c.livenessProbe.httpGet.path };
}

describe("sample API during a database outage", () => {
    // Each test stops or freezes its own server, so it gets one to itself.
    async function apiWithOwnDatabase(t: TestContext): Promise<{ pg: PgServer; port: number }> {
        const pg = await startPostgres();
        t.after(() => pg.destroy());
        const { port } = await startApi(t, { DATABASE_URL: pg.url(), HEALTH_TIMEOUT: "1s" });
        assert.equal(await healthStatus(port), 200);
        return { pg, port };
    }

    async function timedHealth(port: number): Promise<{ status: number; ms: number }> {
        const started = Date.now();
        const status = await healthStatus(port);
        return { status, ms: Date.now() - started };
    }

    it("answers 503 within HEALTH_TIMEOUT while the database is stopped, and recovers after restart", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t)) return;
        const { pg, port } = await apiWithOwnDatabase(t);

        await pg.stop();
        const down = await timedHealth(port);
        assert.equal(down.status, 503);
        assert.ok(down.ms < 2500, `503 took ${down.ms} ms with HEALTH_TIMEOUT=1s`);
        // What the platform's probes see: readiness fails (out of the Service), liveness holds (no restart).
        const probes = platformProbePaths();
        assert.equal((await request(port, "GET", probes.readiness)).status, 503);
        assert.equal((await request(port, "GET", probes.liveness)).status, 200);
        assert.equal((await request(port, "GET", probes.startup)).status, 200);

        await pg.start();
        await waitFor(async () => (await healthStatus(port)) === 200, "/health to recover after the restart");
    });

    it("answers 503 within HEALTH_TIMEOUT while the database hangs, and recovers when it answers again", { timeout: TEST_TIMEOUT }, async (t) => {
        if (!requirePostgres(t)) return;
        const { pg, port } = await apiWithOwnDatabase(t);

        pg.pause();
        try {
            for (let i = 0; i < 2; i++) {
                // Twice: the second check must not queue behind the first's stuck connection.
                const hung = await timedHealth(port);
                assert.equal(hung.status, 503);
                assert.ok(hung.ms < 2500, `503 took ${hung.ms} ms with HEALTH_TIMEOUT=1s`);
            }
        } finally {
            pg.resume();
        }
        await waitFor(async () => (await healthStatus(port)) === 200, "/health to recover after the database answers again");
    });
});
