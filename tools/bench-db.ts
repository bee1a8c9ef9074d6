// Benchmark of the database tier on real servers from Debian: PostgreSQL 15
// and PgBouncer 1.18 running exactly our rendered pgbouncer.ini
// (components/database/database-render.ts, with DATABASE_DEFAULTS: transaction
// pooling, pool 20, reserve 5), driven by pgbench; then the throughput of our
// real backup and restore scripts (scripts/pg-backup.sh, scripts/pg-restore.sh)
// on a generated database of about 200 MB.
//
// Prints numbers and verdicts against the targets; asserts nothing, but exits
// non-zero when something fails to run (or a restore loses rows). Everything
// (servers, pgbench, temp dirs) is cleaned up, also on Ctrl-C. About 3 minutes
// on a 2-core machine, where PgBouncer, pgbench and PostgreSQL share the cores.
// The compared pair (through PgBouncer vs direct at 100 clients) runs twice in
// ABBA order and each is reported as the mean, so load drift hits both alike.
//
// Usage: npm run bench:db [-- --duration 15 --select-duration 8 --scale 10 --backup-scale 14 --plain-pgbench-data]
//   --duration N         seconds of each read-write pgbench run (default 15)
//   --select-duration N  seconds of each select-only (-S) run; 0 skips them (default 8)
//   --scale N            pgbench scale of the TPS database (default 10, about 165 MB)
//   --backup-scale N     pgbench scale of the backup/restore database (default 14, about 225 MB)
//   --plain-pgbench-data backup/restore database straight from `pgbench -i`, whose blank
//                        filler columns compress to almost nothing; by default
//                        pgbench_accounts.filler is random hex, so pg_dump's compression
//                        costs about what it would on real data
//
// On PostgreSQL 17, production's default major, whose pg_dump writes zstd (Debian
// bookworm has 15): tools/install-postgres17.sh /opt/postgres17, then
// PG_BINDIR=/opt/postgres17/bin npm run bench:db
import { ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { Client } from "pg";
import { DATABASE_DEFAULTS } from "../components/database/database-config";
import { pgbouncerVersion, preparePoolerAuth, startPgbouncer, type RunningPgbouncer } from "../test/support/pgbouncer";
import { findPgBin, findPgBinDir, postgresUnavailableReason, startPostgres, type PgServer } from "../test/support/postgres";

const ROOT = path.resolve(__dirname, "..");
const SCRIPTS_DIR = path.join(ROOT, "scripts");
const POOL = DATABASE_DEFAULTS.pgbouncerPoolSize;
const RESERVE = DATABASE_DEFAULTS.pgbouncerReservePool;
const APP_CLIENTS = DATABASE_DEFAULTS.pgbouncerMaxClientConn;
/**
 * PgBouncer 1.18 has only the global max_client_conn (a per-user client limit,
 * max_user_client_connections, is 1.24+). Admin console connections are never
 * refused but do count towards it, so the monitor's console connection (and
 * pgbench's set-up connection, closed just before its clients connect) get a
 * few slots on top of the app's 100; the app path is measured to use exactly 100.
 */
const MONITOR_HEADROOM = 5;
const APP_DB = "bench";
const BACKUP_DB = "backupsrc";
const RESTORE_DB = "restored";
const BARE_RESTORE_DB = "restored_bare";
const APP_ROLE = "app_bench";
const ADMIN_USER = "pgbouncer_admin";
const SAMPLE_INTERVAL_MS = 100;
const PGBENCH_TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"] as const;
const MB = 1_000_000;
const WARMUP_SECONDS = 5;

interface Options {
    readonly duration: number;
    readonly selectDuration: number;
    readonly scale: number;
    readonly backupScale: number;
    readonly plainData: boolean;
}

function parseOptions(argv: readonly string[]): Options {
    const opts = { duration: 15, selectDuration: 8, scale: 10, backupScale: 14, plainData: false };
    const names: Record<string, "duration" | "selectDuration" | "scale" | "backupScale"> = {
        "--duration": "duration", "--select-duration": "selectDuration", "--scale": "scale", "--backup-scale": "backupScale",
    };
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--plain-pgbench-data") {
            opts.plainData = true;
            continue;
        }
        const key = names[argv[i]];
        const value = Number(argv[i + 1]);
        if (!key || !Number.isInteger(value) || value < 0 || (key !== "selectDuration" && value < 1)) {
            throw new Error(`bad argument '${argv[i]} ${argv[i + 1] ?? ""}'; usage: bench-db.ts [--duration N] [--select-duration N] [--scale N] [--backup-scale N] [--plain-pgbench-data]`);
        }
        opts[key] = value;
        i++;
    }
    return opts;
}

// ---------------------------------------------------------------- processes

const started = performance.now();
const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
process.on("exit", () => {
    // Runs on normal exit and, through the PostgreSQL harness's signal
    // handlers, on Ctrl-C/SIGTERM: no pgbench or temp dir is left behind.
    for (const child of children) child.kill("SIGKILL");
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function clock(): string {
    const s = Math.floor((performance.now() - started) / 1000);
    return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

function phase(text: string): void {
    console.log(`\n[${clock()}] ${text}`);
}

function note(text: string): void {
    console.log(`         ${text}`);
}

interface Ran {
    readonly stdout: string;
    readonly stderr: string;
    readonly seconds: number;
}

/** Runs a program to completion (bounded); rejects with its output's tail when it fails. */
function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Ran> {
    return new Promise((resolve, reject) => {
        const t0 = performance.now();
        const child = spawn(cmd, args, { env, cwd: os.tmpdir(), stdio: ["ignore", "pipe", "pipe"] });
        children.add(child);
        let stdout = "";
        let stderr = "";
        child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
        let timedOut = false;
        const timer = setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
        }, timeoutMs);
        child.on("error", (err) => {
            clearTimeout(timer);
            children.delete(child);
            reject(err);
        });
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            children.delete(child);
            const seconds = (performance.now() - t0) / 1000;
            if (code === 0) return resolve({ stdout, stderr, seconds });
            const why = timedOut ? `timed out after ${timeoutMs / 1000} s` : signal ? `killed by ${signal}` : `exit ${code}`;
            const tail = `${stdout}\n${stderr}`.trim().split("\n").slice(-15).join("\n");
            reject(new Error(`${path.basename(cmd)} ${args.join(" ")} failed (${why}):\n${tail}`));
        });
    });
}

/** Only what the clients need: our PostgreSQL's binaries first, no PG* settings from the caller's environment. */
function clientEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
    return {
        PATH: `${findPgBinDir() ?? ""}:${process.env.PATH ?? "/usr/bin:/bin"}`,
        HOME: os.tmpdir(),
        LANG: "C",
        PGCONNECT_TIMEOUT: "30",
        ...extra,
    };
}

// ---------------------------------------------------------------- sampling

interface Peaks {
    /** Most connections of the app role PostgreSQL had at once (pg_stat_activity). */
    backends: number;
    /** Most server connections PgBouncer had in the app's pool (sv_active+sv_idle+sv_used+sv_tested+sv_login). */
    poolServers?: number;
    /** Most client connections in the app's pool (cl_active+cl_waiting). */
    poolClients?: number;
    /** Longest a client waited for a server connection, in ms (SHOW POOLS maxwait). */
    maxWaitMs?: number;
    samples: number;
}

/** Samples every ~100 ms over persistent connections (a superuser one to PostgreSQL, optionally PgBouncer's console) until stopped. */
class Sampler {
    private running = true;
    private readonly peaks: Peaks = { backends: 0, samples: 0 };
    private readonly loop: Promise<void>;

    constructor(private readonly pg: Client, private readonly console?: Client) {
        if (console) Object.assign(this.peaks, { poolServers: 0, poolClients: 0, maxWaitMs: 0 });
        this.loop = this.sample();
    }

    private async sample(): Promise<void> {
        while (this.running) {
            const t0 = performance.now();
            const rows = (await this.pg.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1", [APP_ROLE])).rows;
            this.peaks.backends = Math.max(this.peaks.backends, Number(rows[0].n));
            if (this.console) {
                // No parameters: the simple query protocol, the only one the console speaks.
                const pools = (await this.console.query<Record<string, unknown>>("SHOW POOLS")).rows;
                const pool = pools.find((r) => r.database === APP_DB && r.user === APP_ROLE);
                if (pool) {
                    const n = (k: string) => Number(pool[k] ?? 0);
                    this.peaks.poolServers = Math.max(this.peaks.poolServers ?? 0, n("sv_active") + n("sv_idle") + n("sv_used") + n("sv_tested") + n("sv_login"));
                    this.peaks.poolClients = Math.max(this.peaks.poolClients ?? 0, n("cl_active") + n("cl_waiting"));
                    this.peaks.maxWaitMs = Math.max(this.peaks.maxWaitMs ?? 0, n("maxwait") * 1000 + n("maxwait_us") / 1000);
                }
            }
            this.peaks.samples++;
            const rest = SAMPLE_INTERVAL_MS - (performance.now() - t0);
            if (rest > 0) await new Promise((r) => setTimeout(r, rest));
        }
    }

    async stop(): Promise<Peaks> {
        this.running = false;
        await this.loop;
        return this.peaks;
    }
}

// ---------------------------------------------------------------- pgbench

interface Target {
    readonly label: string;
    readonly port: number;
    readonly viaPgbouncer: boolean;
}

interface BenchRow {
    readonly name: string;
    readonly target: Target;
    readonly clients: number;
    readonly selectOnly: boolean;
    readonly tps: number;
    readonly latencyMs: number;
    readonly connectMs: number;
    readonly transactions: number;
    readonly failed: number;
    readonly peaks: Peaks;
}

/** One row for repeated runs of the same configuration: mean throughput and latency, highest peaks. */
function meanRow(rows: readonly BenchRow[]): BenchRow {
    const mean = (f: (r: BenchRow) => number) => rows.reduce((sum, r) => sum + f(r), 0) / rows.length;
    const max = (f: (p: Peaks) => number | undefined) => {
        const values = rows.map((r) => f(r.peaks)).filter((v): v is number => v !== undefined);
        return values.length > 0 ? Math.max(...values) : undefined;
    };
    return {
        ...rows[0],
        tps: mean((r) => r.tps),
        latencyMs: mean((r) => r.latencyMs),
        connectMs: mean((r) => r.connectMs),
        transactions: rows.reduce((sum, r) => sum + r.transactions, 0),
        failed: rows.reduce((sum, r) => sum + r.failed, 0),
        peaks: {
            ...rows[0].peaks,
            backends: max((p) => p.backends) ?? 0,
            poolServers: max((p) => p.poolServers),
            poolClients: max((p) => p.poolClients),
            maxWaitMs: max((p) => p.maxWaitMs),
        },
    };
}

function match(text: string, re: RegExp, what: string): number {
    const m = re.exec(text);
    if (!m) throw new Error(`pgbench printed no ${what}:\n${text}`);
    return Number(m[1]);
}

const PGBENCH_TIMEOUT_EXTRA_MS = 90_000;

async function pgbench(ctx: Context, name: string, target: Target, clients: number, seconds: number, selectOnly: boolean): Promise<BenchRow> {
    // One query mode for every run: PgBouncer's transaction pooling cannot keep
    // named prepared statements (1.18), so no `-M prepared`.
    const args = ["-h", "127.0.0.1", "-p", String(target.port), "-U", APP_ROLE, "-M", "simple",
        "-c", String(clients), "-j", "2", "-T", String(seconds), ...(selectOnly ? ["-S"] : []), APP_DB];
    // Each run starts from the same state: no app connection left from the run
    // before (so the peaks count this run's only), no dirty buffers.
    await waitForNoAppBackends(ctx.superuser);
    await ctx.superuser.query("CHECKPOINT");
    const console = target.viaPgbouncer ? await connect(ctx.bouncer.url("pgbouncer", ADMIN_USER, ctx.adminPassword)) : undefined;
    const sampler = new Sampler(ctx.superuser, console);
    let ran: Ran;
    let peaks: Peaks;
    try {
        ran = await run(ctx.pgbenchBin, args, clientEnv({ PGPASSWORD: ctx.appPassword }), seconds * 1000 + PGBENCH_TIMEOUT_EXTRA_MS);
    } finally {
        peaks = await sampler.stop();
        await console?.end().catch(() => undefined);
        // PgBouncer keeps its server connections (server_idle_timeout 300 s):
        // close them, or the direct runs after this one would count them.
        if (target.viaPgbouncer) {
            await ctx.bouncer.admin(`KILL ${APP_DB}`);
            await ctx.bouncer.admin(`RESUME ${APP_DB}`);
        }
    }
    const out = ran.stdout;
    const row: BenchRow = {
        name, target, clients, selectOnly,
        tps: match(out, /^tps = ([\d.]+) \(without initial connection time\)/m, "tps"),
        latencyMs: match(out, /^latency average = ([\d.]+) ms/m, "average latency"),
        connectMs: match(out, /^initial connection time = ([\d.]+) ms/m, "initial connection time"),
        transactions: match(out, /^number of transactions actually processed: (\d+)/m, "transaction count"),
        failed: Number(/^number of failed transactions: (\d+)/m.exec(out)?.[1] ?? 0),
        peaks,
    };
    const pool = row.peaks.poolServers !== undefined
        ? `, PgBouncer pool peak ${row.peaks.poolServers} server / ${row.peaks.poolClients} client conns, max wait ${(row.peaks.maxWaitMs ?? 0).toFixed(0)} ms`
        : "";
    note(`tps ${row.tps.toFixed(1)}, latency ${row.latencyMs.toFixed(1)} ms, ${row.transactions} transactions (${row.failed} failed), ` +
        `connect ${row.connectMs.toFixed(0)} ms, peak ${row.peaks.backends} ${APP_ROLE} backends${pool} (${row.peaks.samples} samples)`);
    return row;
}

/** Waits (bounded) until PostgreSQL has no session of the app role. */
async function waitForNoAppBackends(superuser: Client): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
        const n = Number((await superuser.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1", [APP_ROLE])).rows[0].n);
        if (n === 0) return;
        if (Date.now() > deadline) throw new Error(`${n} ${APP_ROLE} sessions still open 10 s after the previous run`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

interface Context {
    readonly pg: PgServer;
    readonly superuser: Client;
    readonly bouncer: RunningPgbouncer;
    readonly appPassword: string;
    readonly adminPassword: string;
    readonly pgbenchBin: string;
}

async function connect(url: string): Promise<Client> {
    const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
    client.on("error", () => undefined); // reported by the pending query
    await client.connect();
    return client;
}

// ---------------------------------------------------------------- output

function pad(s: string, n: number): string {
    return s.length >= n ? s : s + " ".repeat(n - s.length);
}

function lpad(s: string, n: number): string {
    return s.length >= n ? s : " ".repeat(n - s.length) + s;
}

function printTable(title: string, rows: readonly BenchRow[]): void {
    const direct100 = rows.find((r) => !r.target.viaPgbouncer && r.clients === APP_CLIENTS);
    const direct20 = rows.find((r) => !r.target.viaPgbouncer && r.clients === POOL);
    console.log(`\n${title}`);
    const header = [pad("run", 34), lpad("clients", 7), lpad("TPS", 9), lpad("avg lat", 10), lpad("vs direct-100", 14), lpad("vs direct-20", 13), "  peak server conns"];
    console.log(header.join(" "));
    console.log("-".repeat(header.join(" ").length + 14));
    for (const r of rows) {
        const ratio = (base: BenchRow | undefined) => (base ? `${(r.tps / base.tps).toFixed(2)}x` : "-");
        const conns = r.peaks.poolServers !== undefined
            ? `${r.peaks.backends} (pg_stat_activity), ${r.peaks.poolServers} (SHOW POOLS)`
            : `${r.peaks.backends} (pg_stat_activity)`;
        console.log([pad(r.name, 34), lpad(String(r.clients), 7), lpad(r.tps.toFixed(1), 9), lpad(`${r.latencyMs.toFixed(1)} ms`, 10),
            lpad(ratio(direct100), 14), lpad(ratio(direct20), 13), `  ${conns}`].join(" "));
    }
}

function mb(bytes: number): string {
    return `${(bytes / MB).toFixed(1)} MB`;
}

function dirBytes(dir: string): number {
    return fs.readdirSync(dir).reduce((sum, f) => sum + fs.statSync(path.join(dir, f)).size, 0);
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
    const opts = parseOptions(process.argv.slice(2));
    const unavailable = postgresUnavailableReason() ?? (pgbouncerVersion() ? undefined : "PgBouncer not installed (apt-get install -y pgbouncer)");
    if (unavailable) throw new Error(unavailable);
    const pgbenchBin = findPgBin("pgbench");
    if (!pgbenchBin) throw new Error("pgbench not found (apt-get install -y postgresql-contrib, or postgresql >= 10 ships it)");

    console.log(`Database tier benchmark: PostgreSQL + PgBouncer ${pgbouncerVersion()} (our rendered config) + pgbench, ` +
        `${os.cpus().length} cores, Node ${process.version}`);
    console.log(`Note: PgBouncer, pgbench and PostgreSQL (and this sampler) share the same ${os.cpus().length} cores; ` +
        "in production PgBouncer and PostgreSQL run on their own CPUs and the clients elsewhere.");
    console.log(`Load average before starting: ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} ` +
        "(anything else running on the machine skews the numbers; single runs of 20 s vary by several percent).");

    const appPassword = randomBytes(16).toString("hex");
    const adminPassword = randomBytes(16).toString("hex");
    let pg: PgServer | undefined;
    let bouncer: RunningPgbouncer | undefined;
    let superuser: Client | undefined;
    const backupDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-db-backups-"));
    tempDirs.add(backupDir);
    try {
        // 1. Servers.
        phase("1. starting PostgreSQL (max_connections 200, shared_buffers 128MB; fsync off as the test harness sets) and PgBouncer");
        pg = await startPostgres({ settings: { max_connections: "200", shared_buffers: "128MB" } });
        note(`PostgreSQL ${pg.version} on 127.0.0.1:${pg.port}`);
        await pg.query(`CREATE ROLE ${APP_ROLE} LOGIN PASSWORD '${appPassword}'`);
        await pg.createDatabase(APP_DB, APP_ROLE);
        const maxClientConn = APP_CLIENTS + MONITOR_HEADROOM;
        // PgBouncer as CloudNativePG's Pooler runs it, with our Pooler parameters (test/support/pgbouncer.ts).
        const authPassword = randomBytes(16).toString("hex");
        await preparePoolerAuth(pg, authPassword, [APP_DB]);
        bouncer = await startPgbouncer({
            postgres: { host: "127.0.0.1", port: pg.port },
            parameters: { default_pool_size: String(POOL), reserve_pool_size: String(RESERVE), reserve_pool_timeout: "3", max_client_conn: String(maxClientConn) },
            authPassword,
            admin: { user: ADMIN_USER, password: adminPassword },
        });
        const config = new Map((await bouncer.admin("SHOW CONFIG")).map((r) => [String(r.key), String(r.value)]));
        note(`PgBouncer on 127.0.0.1:${bouncer.port}: pool_mode ${config.get("pool_mode")}, default_pool_size ${config.get("default_pool_size")}, ` +
            `reserve_pool_size ${config.get("reserve_pool_size")}, max_client_conn ${config.get("max_client_conn")} ` +
            `(${APP_CLIENTS} for the app + ${MONITOR_HEADROOM} for the admin console/monitor: 1.18 has no per-user client limit), auth ${config.get("auth_type")}`);
        superuser = await connect(pg.url());
        const ctx: Context = { pg, superuser, bouncer, appPassword, adminPassword, pgbenchBin };

        // 2. TPS database.
        phase(`2. pgbench -i -s ${opts.scale} on database ${APP_DB} (direct, as ${APP_ROLE})`);
        const init = await run(pgbenchBin, ["-i", "-q", "-s", String(opts.scale), "-h", "127.0.0.1", "-p", String(pg.port), "-U", APP_ROLE, APP_DB],
            clientEnv({ PGPASSWORD: appPassword }), 180_000);
        const benchSize = Number((await superuser.query<{ b: string }>("SELECT pg_database_size($1) AS b", [APP_DB])).rows[0].b);
        note(`initialized in ${init.seconds.toFixed(1)} s: ${mb(benchSize)}`);
        // Without it the first measured run, (a), pays for the cold caches.
        note(`warm-up (not reported): pgbench -M simple -c ${POOL} -j 2 -T ${WARMUP_SECONDS}, direct`);
        await run(pgbenchBin, ["-h", "127.0.0.1", "-p", String(pg.port), "-U", APP_ROLE, "-M", "simple", "-c", String(POOL), "-j", "2", "-T", String(WARMUP_SECONDS), APP_DB],
            clientEnv({ PGPASSWORD: appPassword }), WARMUP_SECONDS * 1000 + PGBENCH_TIMEOUT_EXTRA_MS);

        // 3. Side by side.
        const viaBouncer: Target = { label: "PgBouncer", port: bouncer.port, viaPgbouncer: true };
        const direct: Target = { label: "direct", port: pg.port, viaPgbouncer: false };
        // a and b, the compared pair, run twice in ABBA order, so a drift in machine load
        // (other processes, checkpoints, autovacuum) weighs on both alike; each row is their mean.
        const plan = (selectOnly: boolean, seconds: number): [string, Target, number][] => {
            const kind = selectOnly ? "select-only (-S)" : "TPC-B-like (rw)";
            if (seconds <= 0) return [];
            const a: [string, Target, number] = [`a) via PgBouncer, ${kind}`, viaBouncer, APP_CLIENTS];
            const b: [string, Target, number] = [`b) direct, ${kind}`, direct, APP_CLIENTS];
            return [a, b, b, a, [`c) direct, ${kind}`, direct, POOL]];
        };
        const runPlan = async (selectOnly: boolean, seconds: number): Promise<BenchRow[]> => {
            const runs: BenchRow[] = [];
            for (const [name, target, clients] of plan(selectOnly, seconds)) {
                phase(`3. ${name}: pgbench -M simple ${selectOnly ? "-S " : ""}-c ${clients} -j 2 -T ${seconds} (${target.label}, port ${target.port})`);
                runs.push(await pgbench(ctx, name, target, clients, seconds, selectOnly));
            }
            return [...new Set(runs.map((r) => r.name))].map((name) => meanRow(runs.filter((r) => r.name === name)));
        };
        const rw = await runPlan(false, opts.duration);
        const ro = await runPlan(true, opts.selectDuration);

        // PgBouncer is done; the TPS database must not be in the backup.
        await bouncer.stop();
        bouncer = undefined;
        await superuser.query(`DROP DATABASE ${APP_DB} WITH (FORCE)`);

        // 5. Backup and restore.
        const dataKind = opts.plainData
            ? "plain pgbench -i data (blank filler columns: the dump is about 2% of the database, unlike real data)"
            : "pgbench's tables and keys, pgbench_accounts.filler random hex (so the dump is about a third of the database, more like real data than pgbench's blank filler)";
        phase(`5. backup/restore: generating database ${BACKUP_DB}, pgbench scale ${opts.backupScale}: ${dataKind}`);
        await pg.createDatabase(BACKUP_DB, APP_ROLE);
        const pgPort = String(pg.port);
        const pgbenchInit = (steps: string) => run(pgbenchBin, ["-i", "-q", "-I", steps, "-s", String(opts.backupScale), "-h", "127.0.0.1", "-p", pgPort, "-U", APP_ROLE, BACKUP_DB],
            clientEnv({ PGPASSWORD: appPassword }), 240_000);
        const genStart = performance.now();
        if (opts.plainData) {
            await pgbenchInit("dtgvp");
        } else {
            // pgbench's own steps for the tables, vacuum and keys; the rows from SQL.
            await pgbenchInit("dt");
            const scale = opts.backupScale;
            await pg.query(`INSERT INTO pgbench_branches (bid, bbalance) SELECT i, 0 FROM generate_series(1, ${scale}) i`, [], BACKUP_DB);
            await pg.query(`INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT i, (i - 1) / 10 + 1, 0 FROM generate_series(1, ${scale * 10}) i`, [], BACKUP_DB);
            await pg.query(`INSERT INTO pgbench_accounts (aid, bid, abalance, filler)
                SELECT i, (i - 1) / 100000 + 1, 0, substr(md5(random()::text) || md5(random()::text) || md5(random()::text), 1, 84)
                FROM generate_series(1, ${scale * 100_000}) i`, [], BACKUP_DB);
            await pgbenchInit("vp");
        }
        const gen = { seconds: (performance.now() - genStart) / 1000 };
        const dbBytes = Number((await superuser.query<{ b: string }>("SELECT pg_database_size($1) AS b", [BACKUP_DB])).rows[0].b);
        note(`generated in ${gen.seconds.toFixed(1)} s: pg_database_size(${BACKUP_DB}) = ${mb(dbBytes)} (${dbBytes} bytes)`);

        const libpq = { PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: pg.superuser, PGPASSWORD: pg.password };
        phase(`5. scripts/pg-backup.sh (BACKUP_DIR=${backupDir}, RETENTION_DAYS=7)`);
        const backup = await run("bash", [path.join(SCRIPTS_DIR, "pg-backup.sh")],
            clientEnv({ ...libpq, BACKUP_DIR: backupDir, RETENTION_DAYS: "7" }), 300_000);
        const backupPath = backup.stdout.trim().split("\n").pop() ?? "";
        const dumpFile = path.join(backupPath, `${BACKUP_DB}.dump`);
        if (!fs.existsSync(dumpFile)) throw new Error(`pg-backup.sh printed '${backupPath}', which has no ${BACKUP_DB}.dump:\n${backup.stderr}`);
        const dumpBytes = fs.statSync(dumpFile).size;
        const backupBytes = dirBytes(backupPath);
        note(`backup ${path.basename(backupPath)} in ${backup.seconds.toFixed(1)} s: ${BACKUP_DB}.dump ${mb(dumpBytes)}, whole backup ${mb(backupBytes)}`);

        phase(`5. scripts/pg-restore.sh ${BACKUP_DB} ${RESTORE_DB} (into a fresh database)`);
        const restore = await run("bash", [path.join(SCRIPTS_DIR, "pg-restore.sh"), BACKUP_DB, RESTORE_DB],
            clientEnv({ ...libpq, BACKUP_DIR: backupDir }), 300_000);
        const pgRestoreSeconds = /pg_restore done in (\d+) s/.exec(restore.stderr)?.[1];
        const restoredBytes = Number((await superuser.query<{ b: string }>("SELECT pg_database_size($1) AS b", [RESTORE_DB])).rows[0].b);
        note(`${restore.stdout.trim()}`);
        note(`restored in ${restore.seconds.toFixed(1)} s (the script logs its pg_restore step as ${pgRestoreSeconds ?? "?"} s, whole seconds): restored database ${mb(restoredBytes)}`);

        // The same work by the bare tools, for comparison: what our scripts add (checksums, MANIFEST, globals, checks).
        phase(`5. bare pg_dump -Fc and pg_restore of ${BACKUP_DB} (the same database, for comparison)`);
        const bareDump = path.join(backupDir, "bare.dump");
        const pgDumpBin = findPgBin("pg_dump") ?? "pg_dump";
        const pgRestoreBin = findPgBin("pg_restore") ?? "pg_restore";
        const bareBackup = await run(pgDumpBin, ["-w", "-Fc", "-d", BACKUP_DB, "-f", bareDump], clientEnv(libpq), 300_000);
        await superuser.query(`CREATE DATABASE ${BARE_RESTORE_DB}`);
        const bareRestore = await run(pgRestoreBin, ["-w", "--no-owner", "--no-acl", "--exit-on-error", "-d", BARE_RESTORE_DB, bareDump], clientEnv(libpq), 300_000);
        const bareDumpBytes = fs.statSync(bareDump).size;
        note(`bare pg_dump ${bareBackup.seconds.toFixed(1)} s (${mb(bareDumpBytes)}), bare pg_restore ${bareRestore.seconds.toFixed(1)} s`);
        // The codecs as pg_restore reads them from the archive headers.
        const codecOf = async (file: string) => /^;\s+Compression: (\S+)$/m.exec((await run(pgRestoreBin, ["--list", file], clientEnv({}), 60_000)).stdout)?.[1] ?? "unknown";
        const ourCodec = await codecOf(dumpFile);
        const bareCodec = await codecOf(bareDump);
        const pgDumpMajor = Number(/\) (\d+)/.exec((await run(pgDumpBin, ["--version"], clientEnv({}), 10_000)).stdout)?.[1]);

        const counts: { table: string; source: number; restored: number }[] = [];
        const server = pg;
        for (const table of PGBENCH_TABLES) {
            const count = async (db: string) => Number((await server.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`, [], db))[0].n);
            counts.push({ table, source: await count(BACKUP_DB), restored: await count(RESTORE_DB) });
        }
        const countsMatch = counts.every((c) => c.source === c.restored);
        for (const c of counts) note(`${pad(c.table, 17)} source ${lpad(String(c.source), 9)}  restored ${lpad(String(c.restored), 9)}  ${c.source === c.restored ? "match" : "MISMATCH"}`);

        // Summary.
        phase("summary");
        console.log(`PgBouncer ${pgbouncerVersion()} in transaction mode, pool ${POOL} (+ reserve ${RESERVE} after 3 s waits), max_client_conn ${maxClientConn}; ` +
            `PostgreSQL ${pg.version}, max_connections 200, shared_buffers 128MB, fsync/synchronous_commit/full_page_writes off (throwaway data).`);
        console.log(`pgbench scale ${opts.scale} (${mb(benchSize)}), -M simple (no prepared statements: transaction pooling), -j 2, ` +
            `-T ${opts.duration} s read-write / ${opts.selectDuration > 0 ? `-T ${opts.selectDuration} s select-only` : "select-only skipped"}; TPS without initial connection time.`);
        console.log(`The read-write rows are pgbench's default TPC-B-like script (3 UPDATEs, 1 SELECT, 1 INSERT per transaction; at scale ${opts.scale} ` +
            `every transaction updates one of ${opts.scale} pgbench_branches rows, so 100 clients contend on row locks).`);
        console.log(`Peak server connections: ${APP_ROLE} sessions in pg_stat_activity, and for (a) PgBouncer's SHOW POOLS ` +
            `(sv_active+sv_idle+sv_used+sv_tested+sv_login), sampled every ${SAMPLE_INTERVAL_MS} ms from one extra superuser connection (and a console connection in a).`);
        console.log(`PgBouncer, pgbench and PostgreSQL all share these ${os.cpus().length} cores, so the pooler's CPU is taken from the database's.`);
        printTable("Read-write (TPC-B-like, default script)", rw);
        if (ro.length > 0) printTable("Select-only (-S)", ro);

        const [a, b, c] = rw;
        const ratio100 = a.tps / b.tps;
        const ratio20 = a.tps / c.tps;
        const serverPeak = Math.max(a.peaks.backends, a.peaks.poolServers ?? 0);
        console.log("\nVerdicts (read-write runs):");
        console.log(`  through PgBouncer at ${APP_CLIENTS} clients >= 0.9x direct at ${APP_CLIENTS}: ${ratio100.toFixed(2)}x ` +
            `(${a.tps.toFixed(1)} vs ${b.tps.toFixed(1)} TPS) -> ${ratio100 >= 0.9 ? "PASS" : "MISS"}`);
        console.log(`  server connections never above pool size ${POOL}: peak ${a.peaks.backends} in pg_stat_activity, ` +
            `${a.peaks.poolServers ?? "?"} in SHOW POOLS (app clients in the pool peaked at ${a.peaks.poolClients ?? "?"}, longest wait ${(a.peaks.maxWaitMs ?? 0).toFixed(0)} ms) ` +
            `-> ${serverPeak <= POOL ? "PASS" : "MISS"}`);
        console.log(`  through PgBouncer at ${APP_CLIENTS} clients vs direct at ${POOL}: ${ratio20.toFixed(2)}x (${a.tps.toFixed(1)} vs ${c.tps.toFixed(1)} TPS) (report only)`);
        if (ro.length === 3) {
            console.log(`  select-only: PgBouncer-${APP_CLIENTS} vs direct-${APP_CLIENTS} ${(ro[0].tps / ro[1].tps).toFixed(2)}x, ` +
                `vs direct-${POOL} ${(ro[0].tps / ro[2].tps).toFixed(2)}x; peak server conns ${Math.max(ro[0].peaks.backends, ro[0].peaks.poolServers ?? 0)} (report only)`);
        }
        const failed = [...rw, ...ro].filter((r) => r.failed > 0);
        if (failed.length > 0) console.log(`  failed transactions in: ${failed.map((r) => `${r.name} (${r.failed})`).join(", ")}`);

        console.log("\nBackup/restore (scripts/pg-backup.sh, scripts/pg-restore.sh; 1 MB = 10^6 bytes; MB/s = database size / wall time of the script):");
        console.log(`  database ${BACKUP_DB}: ${dataKind}`);
        console.log(`  pgbench scale ${opts.backupScale}, pg_database_size ${mb(dbBytes)}, ${counts[0].source} pgbench_accounts rows`);
        console.log(`  backup:  ${backup.seconds.toFixed(1)} s -> ${(dbBytes / MB / backup.seconds).toFixed(1)} MB/s; ` +
            `dump ${mb(dumpBytes)} (pg_dump -Fc, ${ourCodec}, ${(dumpBytes / dbBytes * 100).toFixed(1)}% of the database), whole backup dir ${mb(backupBytes)}`);
        console.log(`  restore: ${restore.seconds.toFixed(1)} s -> ${(dbBytes / MB / restore.seconds).toFixed(1)} MB/s ` +
            `(includes checksum check, CREATE DATABASE, pg_restore with index builds); restored size ${mb(restoredBytes)}`);
        console.log(`  bare pg_dump -Fc: ${bareBackup.seconds.toFixed(1)} s -> ${(dbBytes / MB / bareBackup.seconds).toFixed(1)} MB/s, dump ${mb(bareDumpBytes)} (${bareCodec}); ` +
            `our backup takes ${(backup.seconds / bareBackup.seconds).toFixed(2)}x its time`);
        const speedup = bareBackup.seconds / backup.seconds;
        console.log(`  our backup (${ourCodec}) vs bare pg_dump -Fc (${bareCodec}), pg_dump ${pgDumpMajor}: ${speedup.toFixed(2)}x the throughput at ` +
            `${(dumpBytes / bareDumpBytes).toFixed(2)}x the size; target >= 3x at <= 1x -> ${speedup >= 3 && dumpBytes <= bareDumpBytes ? "PASS" : "MISS"}` +
            (pgDumpMajor < 16 ? ` (pg_dump ${pgDumpMajor} has only gzip; production's 17: PG_BINDIR=/opt/postgres17/bin after tools/install-postgres17.sh)` : ""));
        console.log(`  bare pg_restore:  ${bareRestore.seconds.toFixed(1)} s -> ${(dbBytes / MB / bareRestore.seconds).toFixed(1)} MB/s; ` +
            `our restore takes ${(restore.seconds / bareRestore.seconds).toFixed(2)}x its time`);
        console.log(`  row counts after restore (${PGBENCH_TABLES.join(", ")}): ${countsMatch ? "all match" : "MISMATCH"}`);
        console.log(`\nTotal time ${clock()} (mm:ss).`);
        return countsMatch ? 0 : 1;
    } finally {
        await superuser?.end().catch(() => undefined);
        await bouncer?.stop().catch(() => undefined);
        await pg?.destroy().catch(() => undefined);
        fs.rmSync(backupDir, { recursive: true, force: true });
        tempDirs.delete(backupDir);
    }
}

main().then(
    (code) => {
        process.exitCode = code;
    },
    (err: unknown) => {
        console.error(`\nbench:db FAILED at ${clock()}: ${err instanceof Error ? err.message : String(err)}`);
        process.exitCode = 1;
    },
);
