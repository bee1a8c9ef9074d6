// A real, throwaway PostgreSQL server for integration tests: Debian's binaries
// (/usr/lib/postgresql/<version>/bin, not on PATH), a fresh data directory in a
// temp dir, a free loopback port, and password (SCRAM) authentication on every
// connection, as in production. On a laptop without PostgreSQL the test skips
// and says why; under CI=true it fails.
//
// PostgreSQL refuses to run as root, and CI runs as root: then every server
// command runs as the `postgres` OS user (runuser), in a temp dir it owns.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type { TestContext } from "node:test";
import { Client, type QueryResultRow } from "pg";

export const POSTGRES_DEBIAN_PACKAGE = "postgresql";
const DEBIAN_PG_ROOT = "/usr/lib/postgresql";
const OS_USER_WHEN_ROOT = "postgres";
const COMMAND_TIMEOUT_MS = 60_000;

export interface PgServer {
    readonly host: string;
    readonly port: number;
    /** Superuser role, with `password` (SCRAM) as its password. */
    readonly superuser: string;
    readonly password: string;
    readonly dataDir: string;
    /** Directory of the Unix socket (and of the log file, `postgres.log`). */
    readonly socketDir: string;
    /** Major version of the binaries, e.g. "15". */
    readonly version: string;
    readonly running: boolean;
    /** postgres:// URL over TCP; defaults: database `postgres`, the superuser. */
    url(database?: string, user?: string, password?: string): string;
    /** One query on a fresh connection as the superuser. */
    query<R extends QueryResultRow = QueryResultRow>(sql: string, params?: unknown[], database?: string): Promise<R[]>;
    /** Creates a database (owned by `owner`, default the superuser) and returns its name. */
    createDatabase(name: string, owner?: string): Promise<string>;
    /** Fast shutdown (disconnects clients). Safe to call when already stopped. */
    stop(): Promise<void>;
    /** Starts a stopped server again, on the same port and data. */
    start(): Promise<void>;
    /**
     * Freezes (SIGSTOP) the postmaster and every backend: connections are
     * accepted by the kernel but never answered, like a hung database or a
     * dropped network path. `resume()` (SIGCONT) undoes it. Linux only.
     */
    pause(): void;
    resume(): void;
    /** The server log so far (for assertion messages). */
    log(): string;
    /** Stops the server and removes its temp dir. Safe to call twice. */
    destroy(): Promise<void>;
}

export interface StartPostgresOptions {
    /** Superuser role name (default `postgres`). */
    superuser?: string;
    /** Superuser password (default: random). */
    password?: string;
    /** Extra postgresql.conf settings, e.g. `{ max_connections: "50" }`. */
    settings?: Record<string, string>;
    /** Directory of initdb, pg_ctl and postgres (default: findPgBinDir()), e.g. another major's. */
    binDir?: string;
}

/** Directory of the newest installed PostgreSQL's server binaries, or undefined. `PG_BINDIR` overrides. */
export function findPgBinDir(): string | undefined {
    const candidates: string[] = [];
    if (process.env.PG_BINDIR) candidates.push(process.env.PG_BINDIR);
    let versions: string[] = [];
    try {
        versions = fs.readdirSync(DEBIAN_PG_ROOT).filter((v) => /^\d+(\.\d+)?$/.test(v));
    } catch {
        // No Debian PostgreSQL installed.
    }
    versions.sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => path.join(DEBIAN_PG_ROOT, v, "bin")));
    return candidates.find((dir) => isExecutable(path.join(dir, "initdb")) && isExecutable(path.join(dir, "pg_ctl")));
}

/** Full path of a PostgreSQL program (`initdb`, `pg_ctl`, `pg_dump`, `psql`, ...) of the version findPgBinDir picks, else from PATH. */
export function findPgBin(name: string): string | undefined {
    const dir = findPgBinDir();
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
    for (const p of (process.env.PATH ?? "").split(path.delimiter)) {
        if (p && isExecutable(path.join(p, name))) return path.join(p, name);
    }
    return undefined;
}

/** Why a PostgreSQL server cannot be started here, or undefined when it can. */
export function postgresUnavailableReason(): string | undefined {
    if (!findPgBinDir()) return `PostgreSQL server not installed (apt-get install -y ${POSTGRES_DEBIAN_PACKAGE})`;
    if (isRoot()) {
        if (spawnSync("id", ["-u", OS_USER_WHEN_ROOT]).status !== 0) return `running as root and there is no '${OS_USER_WHEN_ROOT}' user to run PostgreSQL as (apt-get install -y ${POSTGRES_DEBIAN_PACKAGE})`;
        if (spawnSync("sh", ["-c", "command -v runuser"]).status !== 0) return "running as root and runuser is missing (apt-get install -y util-linux)";
    }
    return undefined;
}

/** True when a PostgreSQL server can be started; otherwise skips `t` (or throws under CI), like requireBinary. */
export function requirePostgres(t: TestContext): boolean {
    const reason = postgresUnavailableReason();
    if (reason === undefined) return true;
    if (process.env.CI === "true") throw new Error(`${reason}: required under CI`);
    t.skip(reason);
    return false;
}

/** initdb + start on a free loopback port. Call `destroy()` when done (e.g. in `after`). */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PgServer> {
    const reason = postgresUnavailableReason();
    if (reason) throw new Error(reason);
    const binDir = options.binDir ?? (findPgBinDir() as string);
    const superuser = options.superuser ?? "postgres";
    const password = options.password ?? randomBytes(18).toString("base64url");
    const asUser = isRoot() ? OS_USER_WHEN_ROOT : undefined;

    const root = fs.mkdtempSync(path.join(os.tmpdir(), "pgtest-"));
    const dataDir = path.join(root, "data");
    const logFile = path.join(root, "postgres.log");
    const server = new LocalPgServer(root, dataDir, logFile, binDir, superuser, password, asUser);
    installCleanup();
    live.add(server);
    try {
        const pwfile = path.join(root, "pwfile");
        fs.writeFileSync(pwfile, password + "\n", { mode: 0o600 });
        if (asUser) chownRecursive(root, asUser);
        await server.pg("initdb", ["-D", dataDir, "-U", superuser, "--pwfile", pwfile, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"]);
        fs.rmSync(pwfile);
        // A port can be taken between probing and binding: retry with another.
        for (let attempt = 1; ; attempt++) {
            const port = await freePort();
            server.configure(port, options.settings ?? {});
            try {
                await server.start();
                return server;
            } catch (err) {
                if (attempt >= 3 || !/could not bind|address already in use/i.test(server.log())) throw err;
            }
        }
    } catch (err) {
        await server.destroy();
        throw err;
    }
}

// Servers not destroyed yet: killed on process exit, so a failed or
// interrupted test run leaves no postgres behind. pg_ctl detaches the server
// into its own session, so Ctrl-C or the test runner's SIGTERM would not
// reach it: on those signals we stop the servers and exit (which also runs
// other 'exit' handlers, e.g. ones killing spawned children).
const live = new Set<LocalPgServer>();
let cleanupInstalled = false;
function installCleanup(): void {
    if (cleanupInstalled) return;
    cleanupInstalled = true;
    process.on("exit", () => {
        for (const server of live) server.destroySync();
    });
    for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
        process.once(signal, () => process.exit(code));
    }
}

class LocalPgServer implements PgServer {
    readonly host = "127.0.0.1";
    port = 0;
    readonly socketDir: string;
    readonly version: string;
    running = false;
    private transition: Promise<void> = Promise.resolve();
    private destroyed = false;

    constructor(
        private readonly root: string,
        readonly dataDir: string,
        private readonly logFile: string,
        private readonly binDir: string,
        readonly superuser: string,
        readonly password: string,
        private readonly asUser: string | undefined,
    ) {
        this.socketDir = root;
        this.version = /\) (\d+)/.exec(spawnSync(path.join(binDir, "postgres"), ["--version"]).stdout?.toString() ?? "")?.[1] ?? "unknown";
    }

    url(database = "postgres", user = this.superuser, password = this.password): string {
        return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${this.host}:${this.port}/${encodeURIComponent(database)}`;
    }

    async query<R extends QueryResultRow = QueryResultRow>(sql: string, params: unknown[] = [], database = "postgres"): Promise<R[]> {
        const client = new Client({ connectionString: this.url(database), connectionTimeoutMillis: 10_000 });
        client.on("error", () => undefined); // reported by the pending query
        await client.connect();
        try {
            return (await client.query<R>(sql, params)).rows;
        } finally {
            await client.end().catch(() => undefined);
        }
    }

    async createDatabase(name: string, owner = this.superuser): Promise<string> {
        await this.query(`CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(owner)}`);
        return name;
    }

    /** Writes the settings that make the server private to this test: port, loopback only, socket in our dir. */
    configure(port: number, settings: Record<string, string>): void {
        this.port = port;
        const all: Record<string, string> = {
            port: String(port),
            listen_addresses: "'127.0.0.1'",
            unix_socket_directories: `'${this.socketDir}'`,
            // Throwaway data: durability only costs time.
            fsync: "off",
            synchronous_commit: "off",
            full_page_writes: "off",
            ...settings,
        };
        const text = Object.entries(all).map(([k, v]) => `${k} = ${v}\n`).join("");
        // postgresql.auto.conf is read last, so these win over postgresql.conf
        // (initdb writes it empty; ALTER SYSTEM keeps lines it does not set).
        fs.writeFileSync(path.join(this.dataDir, "postgresql.auto.conf"), text);
        if (this.asUser) chownRecursive(path.join(this.dataDir, "postgresql.auto.conf"), this.asUser);
    }

    start(): Promise<void> {
        return this.serialize(async () => {
            if (this.destroyed) throw new Error("PostgreSQL test server already destroyed");
            if (this.running) return;
            try {
                await this.pg("pg_ctl", ["start", "-D", this.dataDir, "-l", this.logFile, "-w", "-t", "30"]);
            } catch (err) {
                throw new Error(`${(err as Error).message}\n--- postgres.log ---\n${this.log().slice(-4000)}`);
            }
            this.running = true;
        });
    }

    stop(): Promise<void> {
        return this.serialize(async () => {
            if (!this.running) return;
            this.resume(); // a frozen server cannot shut down
            await this.pg("pg_ctl", ["stop", "-D", this.dataDir, "-m", "fast", "-w", "-t", "30"]);
            this.running = false;
        });
    }

    pause(): void {
        this.signalAll("SIGSTOP");
    }

    resume(): void {
        this.signalAll("SIGCONT");
    }

    log(): string {
        try {
            return fs.readFileSync(this.logFile, "utf8");
        } catch {
            return "";
        }
    }

    async destroy(): Promise<void> {
        if (this.destroyed) return this.transition;
        try {
            await this.stop();
        } finally {
            this.destroyed = true;
            live.delete(this);
            fs.rmSync(this.root, { recursive: true, force: true });
        }
    }

    /** For process exit, where nothing async runs. */
    destroySync(): void {
        if (this.running) {
            this.resume();
            spawnSync(...this.command("pg_ctl", ["stop", "-D", this.dataDir, "-m", "immediate", "-w", "-t", "10"]), { stdio: "ignore", cwd: this.root });
        }
        this.running = false;
        this.destroyed = true;
        fs.rmSync(this.root, { recursive: true, force: true });
    }

    /** Runs a PostgreSQL program (as the postgres user when we are root); rejects with its output on failure. */
    pg(program: string, args: string[]): Promise<void> {
        const [cmd, argv] = this.command(program, args);
        return new Promise((resolve, reject) => {
            // cwd: the postgres user may not be able to enter ours.
            const child = spawn(cmd, argv, { cwd: this.root, stdio: ["ignore", "pipe", "pipe"] });
            let output = "";
            child.stdout.on("data", (d: Buffer) => (output += d.toString()));
            child.stderr.on("data", (d: Buffer) => (output += d.toString()));
            const timer = setTimeout(() => child.kill("SIGKILL"), COMMAND_TIMEOUT_MS);
            child.on("error", (err) => {
                clearTimeout(timer);
                reject(err);
            });
            // 'exit', not 'close': pg_ctl start leaves the postmaster running,
            // and it must not matter whether it holds our pipes.
            child.on("exit", (code, signal) => {
                clearTimeout(timer);
                if (code === 0) resolve();
                else reject(new Error(`${program} ${args.join(" ")} failed (${signal ?? `exit ${code}`}): ${output.trim()}`));
            });
        });
    }

    private command(program: string, args: string[]): [string, string[]] {
        const bin = path.join(this.binDir, program);
        return this.asUser ? ["runuser", ["-u", this.asUser, "--", bin, ...args]] : [bin, args];
    }

    /** Start/stop calls run one after another, so stop() twice or stop() then start() behave. */
    private serialize(step: () => Promise<void>): Promise<void> {
        const next = this.transition.then(step);
        this.transition = next.catch(() => undefined);
        return next;
    }

    private signalAll(signal: NodeJS.Signals): void {
        if (!this.running) return;
        const postmaster = Number(fs.readFileSync(path.join(this.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
        // The postmaster first, so it forks no new backend meanwhile; on
        // resume it goes last, after the backends it waits for.
        const pids = [postmaster, ...childPids(postmaster)];
        if (signal === "SIGCONT") pids.reverse();
        for (const pid of pids) {
            try {
                process.kill(pid, signal);
            } catch {
                // Exited in the meantime.
            }
        }
    }
}

function childPids(parent: number): number[] {
    const children: number[] = [];
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
            // Fields after the "(comm)", which may itself contain spaces: state ppid ...
            const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
            if (ppid === parent) children.push(Number(entry));
        } catch {
            // Exited while we looked.
        }
    }
    return children;
}

/** A loopback port nothing listens on right now. */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const { port } = srv.address() as net.AddressInfo;
            srv.close(() => resolve(port));
        });
    });
}

function quoteIdent(name: string): string {
    return `"${name.replace(/"/g, '""')}"`;
}

function isRoot(): boolean {
    return process.getuid?.() === 0;
}

function isExecutable(file: string): boolean {
    try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
    } catch {
        return false;
    }
}

function chownRecursive(target: string, user: string): void {
    const r = spawnSync("chown", ["-R", `${user}:`, target], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`chown ${user} ${target} failed: ${r.stderr}`);
}
