// The database tier's rendered configuration against real servers: PgBouncer
// and PostgreSQL from Debian, on loopback ports, in temp dirs.
//
// Debian ships PgBouncer 1.18; we deploy 1.25. The one rendered setting 1.18
// does not know, `max_prepared_statements` (1.21+, prepared statements in
// transaction mode), is left out here and checked only as rendered text.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client } from "pg";
import { DATABASE_DEFAULTS, hasSecureSslmode } from "../components/database-config";
import { connectionBudget, pgbouncerIni, pgbouncerUserlist, postgresSettings, postgresUrl } from "../components/database-render";
import { PgServer, postgresUnavailableReason, startPostgres } from "./support/postgres";
import { pgbouncerVersion, RunningPgbouncer, startPgbouncer } from "./support/pgbouncer";

const POOL = DATABASE_DEFAULTS.pgbouncerPoolSize;
const MAX_CLIENTS = DATABASE_DEFAULTS.pgbouncerMaxClientConn;

describe("rendered PgBouncer config (text)", () => {
    const ini = pgbouncerIni({
        listenAddr: "0.0.0.0", listenPort: 5432, unixSocketDir: "", authFile: "/etc/pgbouncer/auth/userlist.txt",
        databases: [{ name: "api", host: "postgres.database.svc.cluster.local", port: 5432, dbname: "api" }],
        poolSize: POOL, reservePoolSize: 5, maxClientConn: MAX_CLIENTS, adminUser: "pgbouncer_admin", preparedStatements: true,
    });
    const setting = (key: string) => new RegExp(`^${key} = (.*)$`, "m").exec(ini)?.[1];

    it("pools per transaction with SCRAM, seed 001's sizes, and the startup parameters drivers send", () => {
        assert.equal(setting("pool_mode"), "transaction");
        assert.equal(setting("auth_type"), "scram-sha-256");
        assert.equal(setting("default_pool_size"), "20");
        assert.equal(setting("max_client_conn"), "100");
        assert.equal(setting("reserve_pool_size"), "5");
        assert.equal(setting("ignore_startup_parameters"), "extra_float_digits,options");
        assert.equal(setting("admin_users"), "pgbouncer_admin");
        assert.equal(setting("max_prepared_statements"), "200");
        assert.match(ini, /^api = host=postgres\.database\.svc\.cluster\.local port=5432 dbname=api$/m);
    });

    it("quotes userlist entries", () => {
        assert.equal(pgbouncerUserlist([{ user: "app_api", password: 'a"b' }]), '"app_api" "a""b"\n');
    });

    it("sizes PostgreSQL from the pod's memory", () => {
        const s = postgresSettings("2Gi", 100);
        assert.equal(s.shared_buffers, "512MB");
        assert.equal(s.effective_cache_size, "1536MB");
        assert.equal(s.max_connections, "100");
        assert.equal(s.password_encryption, "scram-sha-256");
    });

    it("builds DATABASE_URL in seed 001's format", () => {
        assert.equal(postgresUrl({ user: "app_api", password: "a1b2", host: "pgbouncer.database.svc.cluster.local", port: 5432, database: "api" }),
            "postgresql://app_api:a1b2@pgbouncer.database.svc.cluster.local:5432/api");
    });

    it("checks the connection budget with the numbers in the message", () => {
        const limits = { maxClientConn: 100, poolSize: 20, reservePoolSize: 5, pgbouncerReplicas: 2, postgresMaxConnections: 100, reservedConnections: 10 };
        const ok = connectionBudget([{ name: "api", maxPods: 4, perPod: 10 }], limits);
        assert.deepEqual([ok.clients, ok.serverConnections, ok.clientProblem, ok.serverProblem], [40, 50, undefined, undefined]);
        const tooMany = connectionBudget([{ name: "api", maxPods: 4, perPod: 25 }, { name: "worker", maxPods: 2, perPod: 10 }], limits);
        assert.match(tooMany.clientProblem ?? "", /apps can open 120 client connections \(api 4 pods x 25 \+ worker 2 pods x 10\) but PgBouncer accepts 100/);
        const server = connectionBudget([{ name: "a", maxPods: 1, perPod: 1 }, { name: "b", maxPods: 1, perPod: 1 }], limits);
        assert.match(server.serverProblem ?? "", /100 server connections \(2 database\(s\) x \(pool 20 \+ reserve 5\) x 2 replicas\) plus 10 reserved, 110 in all, but PostgreSQL allows 100/);
    });

    it("accepts only external URLs that require TLS", () => {
        assert.ok(hasSecureSslmode("postgresql://u:p@ep-x.neon.tech/db?sslmode=require"));
        assert.ok(hasSecureSslmode("postgres://u:p@h/db?sslmode=verify-full"));
        assert.ok(!hasSecureSslmode("postgresql://u:p@h/db"));
        assert.ok(!hasSecureSslmode("postgresql://u:p@h/db?sslmode=prefer"));
    });
});

/** Why the real servers cannot run here; never skipped under CI, where a missing binary fails. */
const unavailable = process.env.CI === "true" ? undefined
    : postgresUnavailableReason() ?? (pgbouncerVersion() ? undefined : "PgBouncer not installed (apt-get install -y pgbouncer)");

describe("real PgBouncer in front of real PostgreSQL", { skip: unavailable ?? false }, () => {
    let pg: PgServer;
    let bouncer: RunningPgbouncer;
    const appUser = { user: "app_api", password: "0123456789abcdef0123456789abcdef" };

    before(async () => {
        if (!pgbouncerVersion()) throw new Error("PgBouncer not installed (apt-get install -y pgbouncer): required under CI");
        pg = await startPostgres({ settings: { max_connections: "150" } });
        await pg.query(`CREATE ROLE app_api LOGIN PASSWORD '${appUser.password}'`);
        await pg.createDatabase("api", "app_api");
        bouncer = await startPgbouncer({
            settings: {
                databases: [{ name: "api", host: "127.0.0.1", port: pg.port, dbname: "api" }],
                poolSize: POOL, reservePoolSize: 5, maxClientConn: MAX_CLIENTS, adminUser: "pgbouncer_admin",
                // Debian's 1.18 rejects max_prepared_statements (1.21+); see the file header.
                preparedStatements: false,
            },
            users: [appUser],
            adminPassword: "admin-password-123",
        });
    });
    after(async () => {
        await bouncer?.stop();
        await pg?.destroy();
    });

    it("runs our rendered config: SCRAM auth, transaction pooling", async () => {
        const config = new Map((await bouncer.admin("SHOW CONFIG")).map((r) => [String(r.key), String(r.value)]));
        assert.equal(config.get("auth_type"), "scram-sha-256");
        assert.equal(config.get("pool_mode"), "transaction");
        assert.equal(config.get("default_pool_size"), String(POOL));
        assert.equal(config.get("max_client_conn"), String(MAX_CLIENTS));
    });

    it("serves a client connecting with the DATABASE_URL format", async () => {
        const url = postgresUrl({ ...appUser, host: "127.0.0.1", port: bouncer.port, database: "api" });
        const client = new Client({ connectionString: url });
        await client.connect();
        const { rows } = await client.query<{ user: string; db: string }>("SELECT current_user AS user, current_database() AS db");
        await client.end();
        assert.deepEqual(rows[0], { user: "app_api", db: "api" });
    });

    it("refuses a wrong password", async () => {
        const client = new Client({ connectionString: bouncer.url("api", "app_api", "wrong") });
        client.on("error", () => undefined);
        await assert.rejects(client.connect(), /password authentication failed|SASL authentication failed/);
    });

    it(`serves ${MAX_CLIENTS} concurrent clients with at most ${POOL} server connections`, async () => {
        const clients = Array.from({ length: MAX_CLIENTS }, () => new Client({ connectionString: bouncer.url("api", appUser.user, appUser.password) }));
        await Promise.all(clients.map((c) => c.connect()));
        let peak = 0;
        let sampling = true;
        const sampler = (async () => {
            while (sampling) {
                const rows = await pg.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE usename = 'app_api'");
                peak = Math.max(peak, Number(rows[0].n));
                await new Promise((r) => setTimeout(r, 20));
            }
        })();
        try {
            const results = await Promise.all(clients.map(async (c, i) => {
                let sum = 0;
                for (let q = 0; q < 3; q++) sum += Number((await c.query<{ v: number }>("SELECT $1::int AS v, pg_sleep(0.02)", [i])).rows[0].v);
                return sum;
            }));
            assert.deepEqual(results, clients.map((_, i) => 3 * i));
            const pools = (await bouncer.admin("SHOW POOLS")).find((r) => r.database === "api" && r.user === "app_api");
            assert.ok(pools, "SHOW POOLS lists the api pool");
            assert.ok(Number(pools.sv_active) + Number(pools.sv_idle) + Number(pools.sv_used) <= POOL);
        } finally {
            sampling = false;
            await sampler;
            await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
        }
        assert.ok(peak > 1, `the load reached PostgreSQL (peak ${peak})`);
        assert.ok(peak <= POOL, `PostgreSQL saw ${peak} connections from app_api, pool is ${POOL}`);
    });

    it("holds a migration's advisory lock over the direct URL", async () => {
        const direct = () => new Client({ connectionString: pg.url("api", appUser.user, appUser.password) });
        const a = direct();
        const b = direct();
        await a.connect();
        await b.connect();
        try {
            await a.query("SELECT pg_advisory_lock(4242)");
            const blocked = await b.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(4242) AS ok");
            assert.equal(blocked.rows[0].ok, false, "a second migrator must wait");
            await a.query("SELECT pg_advisory_unlock(4242)");
            const free = await b.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(4242) AS ok");
            assert.equal(free.rows[0].ok, true);
        } finally {
            await a.end();
            await b.end();
        }
    });

    it("rotation: after ALTER ROLE, a new userlist and RELOAD, the old password fails and the new one works", async () => {
        const rotated = { user: "app_api", password: "fedcba9876543210fedcba9876543210" };
        await pg.query(`ALTER ROLE app_api PASSWORD '${rotated.password}'`);
        bouncer.writeUserlist([rotated]);
        await bouncer.admin("RELOAD");
        // Server connections opened with the old password are closed so none outlives the rotation.
        await bouncer.admin("RECONNECT api").catch(() => undefined);
        const old = new Client({ connectionString: bouncer.url("api", "app_api", appUser.password) });
        old.on("error", () => undefined);
        await assert.rejects(old.connect(), /authentication failed/);
        const fresh = new Client({ connectionString: bouncer.url("api", "app_api", rotated.password) });
        await fresh.connect();
        assert.equal((await fresh.query<{ one: number }>("SELECT 1 AS one")).rows[0].one, 1);
        await fresh.end();
    });
});
