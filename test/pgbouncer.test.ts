// The database tier against real servers: PgBouncer and PostgreSQL from
// Debian, on loopback ports, in temp dirs, with PgBouncer configured as
// CloudNativePG's Pooler runs it (support/pgbouncer.ts says what Debian's
// 1.18 cannot check of the 1.25 we deploy) and the roles CloudNativePG
// creates from our Cluster spec.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "pg";
import { ClusterDatabaseSettings, DATABASE_DEFAULTS, hasSecureSslmode, toDatabaseSettings } from "../components/database/database-config";
import {
    activeSlot, cnpgPoolerSpec, LOGIN_SLOTS, loginRole, LoginSlot, ownerRole, postgresSettings, postgresUrl, slotGenerations,
} from "../components/database/database-render";
import { connectionBudget } from "../policies/rules/connection-budget";
import { findPgBinDir, PgServer, postgresUnavailableReason, startPostgres } from "./support/postgres";
import { pgbouncerVersion, preparePoolerAuth, RunningPgbouncer, startPgbouncer } from "./support/pgbouncer";

const POOL = DATABASE_DEFAULTS.pgbouncerPoolSize;
const MAX_CLIENTS = DATABASE_DEFAULTS.pgbouncerMaxClientConn;
const SCRIPTS_DIR = path.resolve(__dirname, "..", "scripts");

/** The cluster tier with every default, as a stack with only an app with a database gets it. */
function defaultSettings(): ClusterDatabaseSettings {
    const s = toDatabaseSettings(Object.fromEntries(Object.entries(DATABASE_DEFAULTS).map(([k, v]) => [k, v])) as Parameters<typeof toDatabaseSettings>[0]);
    assert.equal(s.mode, "cluster");
    return s;
}

function poolerParameters(): Record<string, string> {
    return (cnpgPoolerSpec(defaultSettings(), "pgbouncer:test") as { pgbouncer: { parameters: Record<string, string> } }).pgbouncer.parameters;
}

describe("database tier (pure)", () => {
    it("pools per transaction with seed 001's sizes", () => {
        const spec = cnpgPoolerSpec(defaultSettings(), "ghcr.io/cloudnative-pg/pgbouncer:1.25.2") as { instances: number; pgbouncer: { poolMode: string; image: string } };
        assert.equal(spec.pgbouncer.poolMode, "transaction");
        assert.equal(spec.instances, 2);
        const p = poolerParameters();
        assert.deepEqual([p.default_pool_size, p.max_client_conn, p.reserve_pool_size], ["20", "100", "5"]);
    });

    it("alternates login roles: a rotation changes only the idle role's password and moves the app to it", () => {
        assert.deepEqual([1, 2, 3, 4].map(activeSlot), [1, 2, 1, 2]);
        for (let v = 1; v < 8; v++) {
            const before = slotGenerations(v);
            const after = slotGenerations(v + 1);
            const changed = LOGIN_SLOTS.filter((slot) => before[slot] !== after[slot]);
            assert.deepEqual(changed, [activeSlot(v + 1)], `version ${v} -> ${v + 1}`);
            assert.notEqual(activeSlot(v + 1), activeSlot(v), "the old pods' role is left alone");
        }
        assert.equal(loginRole("my-api", 2), "app_my_api_2");
        assert.equal(ownerRole("api"), "app_api");
    });

    it("sizes PostgreSQL from the pod's memory", () => {
        const s = postgresSettings("2Gi", 100);
        assert.equal(s.shared_buffers, "512MB");
        assert.equal(s.effective_cache_size, "1536MB");
        assert.equal(s.max_connections, "100");
    });

    it("builds DATABASE_URL in seed 001's format", () => {
        assert.equal(postgresUrl({ user: "app_api_1", password: "a1b2", host: "pgbouncer.database.svc.cluster.local", port: 5432, database: "api" }),
            "postgresql://app_api_1:a1b2@pgbouncer.database.svc.cluster.local:5432/api");
    });

    it("checks the connection budget with the numbers in the message, counting both login roles' pools", () => {
        const limits = { maxClientConn: 100, poolSize: 20, reservePoolSize: 5, pgbouncerReplicas: 2, postgresMaxConnections: 200, reservedConnections: 10, loginRolesPerDatabase: LOGIN_SLOTS.length };
        const ok = connectionBudget([{ name: "api", maxPods: 4, perPod: 10 }], limits);
        assert.deepEqual([ok.clients, ok.serverConnections, ok.clientProblem, ok.serverProblem], [40, 100, undefined, undefined]);
        const tooMany = connectionBudget([{ name: "api", maxPods: 4, perPod: 25 }, { name: "worker", maxPods: 2, perPod: 10 }], limits);
        assert.match(tooMany.clientProblem ?? "", /apps can open 120 client connections \(api 4 pods x 25 \+ worker 2 pods x 10\) but PgBouncer accepts 100/);
        const server = connectionBudget([{ name: "a", maxPods: 1, perPod: 1 }, { name: "b", maxPods: 1, perPod: 1 }], limits);
        assert.match(server.serverProblem ?? "", /200 server connections \(2 database\(s\) x 2 login roles x \(pool 20 \+ reserve 5\) x 2 replicas\) plus 10 reserved, 210 in all, but PostgreSQL allows 200/);
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

describe("real PgBouncer as the Pooler runs it, in front of real PostgreSQL", { skip: unavailable ?? false }, () => {
    let pg: PgServer;
    let bouncer: RunningPgbouncer;
    const passwords: Record<LoginSlot, string> = { 1: "0123456789abcdef0123456789abcdef", 2: "fedcba9876543210fedcba9876543210" };

    before(async () => {
        if (!pgbouncerVersion()) throw new Error("PgBouncer not installed (apt-get install -y pgbouncer): required under CI");
        pg = await startPostgres({ settings: { max_connections: "200" } });
        // What the operator creates from our Cluster and Database objects, then our grants script.
        await pg.query(`CREATE ROLE app_api NOLOGIN`);
        for (const slot of LOGIN_SLOTS) await pg.query(`CREATE ROLE ${loginRole("api", slot)} LOGIN INHERIT IN ROLE app_api PASSWORD '${passwords[slot]}'`);
        await pg.createDatabase("api", "app_api");
        const grants = spawnSync("bash", [path.join(SCRIPTS_DIR, "db-grants.sh"), "api"], {
            encoding: "utf8",
            env: { PATH: `${findPgBinDir()}:${process.env.PATH ?? ""}`, PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: pg.superuser, PGPASSWORD: pg.password },
        });
        assert.equal(grants.status, 0, grants.stderr);
        await preparePoolerAuth(pg, "pooler-auth-password", ["api"]);
        bouncer = await startPgbouncer({
            postgres: { host: "127.0.0.1", port: pg.port },
            parameters: poolerParameters(),
            authPassword: "pooler-auth-password",
            admin: { user: "pgbouncer_admin", password: "admin-password-123" },
        });
    });
    after(async () => {
        await bouncer?.stop();
        await pg?.destroy();
    });

    const through = (user: string, password: string) => new Client({ connectionString: bouncer.url("api", user, password) });

    it("runs transaction pooling with the Pooler's parameters; app passwords come from PostgreSQL (auth_query), not a file", async () => {
        const config = new Map((await bouncer.admin("SHOW CONFIG")).map((r) => [String(r.key), String(r.value)]));
        assert.equal(config.get("pool_mode"), "transaction");
        assert.equal(config.get("default_pool_size"), String(POOL));
        assert.equal(config.get("max_client_conn"), String(MAX_CLIENTS));
        assert.match(config.get("auth_query") ?? "", /user_search/);
        const client = through(loginRole("api", 1), passwords[1]);
        await client.connect();
        const { rows } = await client.query<{ session: string; acting: string; db: string }>("SELECT session_user AS session, current_user AS acting, current_database() AS db");
        await client.end();
        // The login role acts as the owner role (db-grants.sh), so what it creates belongs to the owner.
        assert.deepEqual(rows[0], { session: "app_api_1", acting: "app_api", db: "api" });
    });

    it("refuses a wrong password", async () => {
        const client = through(loginRole("api", 1), "wrong");
        client.on("error", () => undefined);
        await assert.rejects(client.connect(), /password authentication failed|SASL authentication failed/);
    });

    it(`serves ${MAX_CLIENTS} concurrent clients with at most ${POOL} server connections`, async () => {
        const user = loginRole("api", 1);
        const clients = Array.from({ length: MAX_CLIENTS }, () => through(user, passwords[1]));
        await Promise.all(clients.map((c) => c.connect()));
        let peak = 0;
        let sampling = true;
        const sampler = (async () => {
            while (sampling) {
                const rows = await pg.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1", [user]);
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
        } finally {
            sampling = false;
            await sampler;
            await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
        }
        assert.ok(peak > 1, `the load reached PostgreSQL (peak ${peak})`);
        assert.ok(peak <= POOL, `PostgreSQL saw ${peak} connections from ${user}, pool is ${POOL}`);
    });

    it("holds a migration's advisory lock over the direct URL", async () => {
        const direct = () => new Client({ connectionString: pg.url("api", loginRole("api", 1), passwords[1]) });
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

    /**
     * Pods querying through PgBouncer without pause, each with a fresh login per
     * query (a new pod, a reconnecting pool) and a kept connection; counts failures.
     */
    function load(user: string, password: () => string) {
        let running = true;
        const failures: string[] = [];
        let queries = 0;
        const fresh = (async () => {
            while (running) {
                const c = through(user, password());
                c.on("error", () => undefined);
                try {
                    await c.connect();
                    await c.query("SELECT 1");
                    queries++;
                } catch (err) {
                    failures.push(`${user} (new login): ${(err as Error).message}`);
                } finally {
                    await c.end().catch(() => undefined);
                }
            }
        })();
        const kept = (async () => {
            const c = through(user, password());
            c.on("error", () => undefined);
            await c.connect();
            while (running) {
                try {
                    await c.query("SELECT pg_sleep(0.005)");
                    queries++;
                } catch (err) {
                    failures.push(`${user} (kept connection): ${(err as Error).message}`);
                }
            }
            await c.end().catch(() => undefined);
        })();
        return {
            failures,
            get queries() { return queries; },
            async stop() { running = false; await Promise.all([fresh, kept]); },
        };
    }

    const settle = () => new Promise((r) => setTimeout(r, 400));

    it("rotates a password with zero failed queries: the idle login role gets the new password, pods move to it, old pods keep theirs", async (t) => {
        // Version 2 -> 3: pods run app_api_2 (version 2's password); version 3 makes app_api_1 active with a new password.
        const from = activeSlot(2);
        const to = activeSlot(3);
        const newPassword = "00112233445566778899aabbccddeeff";
        const oldPods = load(loginRole("api", from), () => passwords[from]);
        await settle();
        // 1. The operator applies the idle role's new password (its Secret changed).
        await pg.query(`ALTER ROLE ${loginRole("api", to)} PASSWORD '${newPassword}'`);
        await settle();
        // 2. The login check passes through the pooler before the app's Secret changes.
        const check = spawnSync("bash", [path.join(SCRIPTS_DIR, "db-login-check.sh")], {
            encoding: "utf8",
            env: {
                PATH: `${findPgBinDir()}:${process.env.PATH ?? ""}`, PGHOST: "127.0.0.1", PGPORT: String(bouncer.port),
                PGUSER: loginRole("api", to), PGPASSWORD: newPassword, PGDATABASE: "api", CHECK_TIMEOUT: "30",
            },
        });
        assert.equal(check.status, 0, check.stderr);
        // 3. The rollout: new pods with the new credentials while the old ones still serve.
        const newPods = load(loginRole("api", to), () => newPassword);
        await settle();
        await oldPods.stop();
        await settle();
        await newPods.stop();
        passwords[to] = newPassword;
        t.diagnostic(`old pods ${oldPods.queries} queries, new pods ${newPods.queries}, failed ${oldPods.failures.length + newPods.failures.length}`);
        assert.ok(oldPods.queries > 20 && newPods.queries > 20, `both generations queried (${oldPods.queries}, ${newPods.queries})`);
        assert.deepEqual([...oldPods.failures, ...newPods.failures], []);
    });

    it("changing the password of the role running pods use (a single-role rotation) fails their new logins: why the roles alternate", async () => {
        const slot = activeSlot(3);
        const pods = load(loginRole("api", slot), () => passwords[slot]);
        await settle();
        await pg.query(`ALTER ROLE ${loginRole("api", slot)} PASSWORD 'a-password-the-pods-do-not-have'`);
        await settle();
        await pods.stop();
        await pg.query(`ALTER ROLE ${loginRole("api", slot)} PASSWORD '${passwords[slot]}'`);
        assert.ok(pods.failures.some((f) => /\(new login\): .*authentication failed/.test(f)), `${pods.queries} queries, failures: ${pods.failures.slice(0, 3).join("\n")}`);
    });
});
