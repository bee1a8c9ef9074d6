// Configuration comes from environment variables only: the platform injects
// secrets (DATABASE_URL) and plain settings the same way. Parsing is strict: a
// typo crashes the pod at start with a message naming the variable, which is
// easier to diagnose than a service running on a surprising default.
import { LOG_LEVELS, type LogLevel } from "./log";

export type Env = Readonly<Record<string, string | undefined>>;

export interface ConfigProblem {
    variable: string;
    message: string;
}

export type ConfigResult<T> = { ok: true; config: T } | { ok: false; problems: ConfigProblem[] };

export interface ApiConfig {
    databaseUrl: string;
    port: number;
    healthTimeoutMs: number;
    shutdownTimeoutMs: number;
    dbMaxConnections: number;
    /** How long a query may wait for a pool connection (pg's connectionTimeoutMillis). */
    dbPoolTimeoutMs: number;
    logLevel: LogLevel;
}

export interface MigrateConfig {
    databaseUrl: string;
    /** Which variable the URL came from (logged; the URL itself never is). */
    source: "DATABASE_DIRECT_URL" | "DATABASE_URL";
    logLevel: LogLevel;
}

// Above this, setTimeout silently fires after 1 ms instead.
const MAX_DURATION_MS = 24 * 60 * 60 * 1000;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m)?$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000 } as const;

/** `3s`, `500ms`, `2m`, or a bare number of seconds, in milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
    const match = DURATION.exec(text.trim());
    if (!match) return undefined;
    const unit = (match[2] ?? "s") as keyof typeof UNIT_MS;
    return Math.round(Number(match[1]) * UNIT_MS[unit]);
}

/** Collects every problem, so one start-up reports all of them. */
class Reader {
    readonly problems: ConfigProblem[] = [];
    constructor(private readonly env: Env) {}

    /** The value, or undefined when unset; an empty value counts as unset (a Kubernetes env entry with value ""). */
    string(name: string): string | undefined {
        const value = this.env[name];
        return value === undefined || value.trim() === "" ? undefined : value;
    }

    duration(name: string, fallbackMs: number): number;
    duration(name: string, fallbackMs: undefined): number | undefined;
    duration(name: string, fallbackMs: number | undefined): number | undefined {
        const raw = this.string(name);
        if (raw === undefined) return fallbackMs;
        const ms = parseDuration(raw);
        if (ms === undefined) return this.problem(name, `${name} must be a duration like 3s, 500ms or 2m, or a number of seconds (got ${JSON.stringify(raw)})`, fallbackMs);
        if (ms <= 0) return this.problem(name, `${name} must be greater than 0 (got ${JSON.stringify(raw)})`, fallbackMs);
        if (ms > MAX_DURATION_MS) return this.problem(name, `${name} must be at most 24h (got ${JSON.stringify(raw)})`, fallbackMs);
        return ms;
    }

    integer(name: string, fallback: number, min: number, max: number): number {
        const raw = this.string(name);
        if (raw === undefined) return fallback;
        const n = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
        if (!(n >= min && n <= max)) return this.problem(name, `${name} must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`, fallback);
        return n;
    }

    logLevel(): LogLevel {
        const raw = this.string("LOG_LEVEL")?.trim().toLowerCase();
        if (raw === undefined) return "info";
        if ((LOG_LEVELS as readonly string[]).includes(raw)) return raw as LogLevel;
        return this.problem("LOG_LEVEL", `LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")} (got ${JSON.stringify(raw)})`, "info");
    }

    problem<T>(variable: string, message: string, fallback: T): T {
        this.problems.push({ variable, message });
        return fallback;
    }
}

export function loadApiConfig(env: Env): ConfigResult<ApiConfig> {
    const r = new Reader(env);
    // Never echo the value: it holds the password.
    const databaseUrl = r.string("DATABASE_URL") ?? r.problem("DATABASE_URL", "DATABASE_URL is not set", "");
    const healthTimeoutMs = r.duration("HEALTH_TIMEOUT", 3000);
    const config: ApiConfig = {
        databaseUrl,
        // 0 picks a free port (tests); the port actually bound is logged.
        port: r.integer("PORT", 8080, 0, 65535),
        healthTimeoutMs,
        shutdownTimeoutMs: r.duration("SHUTDOWN_TIMEOUT", 30_000),
        dbMaxConnections: r.integer("DB_MAX_CONNECTIONS", 10, 1, 10_000),
        // pg's own default is 0, "wait forever": a query would hang on a
        // database that accepts TCP but never answers. Unset, we wait no
        // longer than a health check may take.
        dbPoolTimeoutMs: r.duration("DB_POOL_TIMEOUT", undefined) ?? healthTimeoutMs,
        logLevel: r.logLevel(),
    };
    return r.problems.length > 0 ? { ok: false, problems: r.problems } : { ok: true, config };
}

export function loadMigrateConfig(env: Env): ConfigResult<MigrateConfig> {
    const r = new Reader(env);
    // PgBouncer in transaction mode hands each transaction to any server
    // connection, so a session-level advisory lock would not hold: prefer the
    // direct URL when the platform gives one.
    const direct = r.string("DATABASE_DIRECT_URL");
    const pooled = r.string("DATABASE_URL");
    const logLevel = r.logLevel();
    if (direct !== undefined) return done(r, { databaseUrl: direct, source: "DATABASE_DIRECT_URL", logLevel });
    if (pooled !== undefined) return done(r, { databaseUrl: pooled, source: "DATABASE_URL", logLevel });
    r.problem("DATABASE_URL", "DATABASE_URL is not set (nor DATABASE_DIRECT_URL)", undefined);
    return { ok: false, problems: r.problems };
}

function done<T>(r: Reader, config: T): ConfigResult<T> {
    return r.problems.length > 0 ? { ok: false, problems: r.problems } : { ok: true, config };
}
