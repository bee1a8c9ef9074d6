// The HTTP routes. No framework: the API is small, and node:http shows plainly
// what graceful shutdown and health checks do with connections.
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import type { Pool, QueryConfig } from "pg";
import { errorFields, type Logger } from "./log";

export interface AppState {
    /** Set on SIGTERM: /health answers 503 so readiness drops while in-flight requests finish. */
    shuttingDown: boolean;
    inFlight: number;
}

export interface AppDeps {
    pool: Pool;
    log: Logger;
    healthTimeoutMs: number;
    state: AppState;
}

const MAX_BODY_BYTES = 64 * 1024;
const MAX_NAME_LENGTH = 200;
const MAX_SLOW_SECONDS = 30;
// Bounds the response size; a sample API does not need paging.
const MAX_ITEMS = 1000;

class HttpError extends Error {
    constructor(readonly status: number, message: string) {
        super(message);
    }
}

interface Request {
    req: IncomingMessage;
    res: ServerResponse;
    query: URLSearchParams;
}
type Handler = (request: Request) => Promise<void>;

export function createApp(deps: AppDeps): RequestListener {
    const { pool, log, state } = deps;

    const routes: Record<string, Partial<Record<string, Handler>>> = {
        "/": { GET: async ({ res }) => sendJson(res, 200, { service: "api" }) },

        "/health": {
            GET: async ({ res }) => {
                if (state.shuttingDown) return sendJson(res, 503, { status: "shutting down" });
                const ok = await checkDatabase(pool, deps.healthTimeoutMs, log);
                sendJson(res, ok ? 200 : 503, { status: ok ? "ok" : "unavailable" });
            },
        },

        // Liveness: the process serves requests. It never touches the database: a database
        // outage must take pods out of the Service (/health), not restart them all.
        "/livez": { GET: async ({ res }) => sendJson(res, 200, { status: "alive" }) },

        "/items": {
            GET: async ({ res }) => {
                // id is bigserial: pg returns int8 as a string, which keeps it exact in JSON.
                const result = await pool.query("SELECT id, name, created_at FROM items ORDER BY id LIMIT $1", [MAX_ITEMS]);
                sendJson(res, 200, { items: result.rows });
            },
            POST: async ({ req, res }) => {
                const body = await readJson(req);
                const name = typeof body === "object" && body !== null ? (body as { name?: unknown }).name : undefined;
                if (typeof name !== "string" || name.trim() === "" || name.length > MAX_NAME_LENGTH) {
                    throw new HttpError(400, `body must be {"name": "..."} with a non-empty name of at most ${MAX_NAME_LENGTH} characters`);
                }
                const result = await pool.query("INSERT INTO items (name) VALUES ($1) RETURNING id, name, created_at", [name.trim()]);
                sendJson(res, 201, result.rows[0]);
            },
        },

        // Holds a request (and a pool connection) open for N seconds: used to
        // check that shutdown lets in-flight work finish.
        "/slow": {
            GET: async ({ res, query }) => {
                const raw = query.get("seconds") ?? "";
                const seconds = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
                if (!(seconds <= MAX_SLOW_SECONDS)) throw new HttpError(400, `seconds must be a number from 0 to ${MAX_SLOW_SECONDS}`);
                await pool.query("SELECT pg_sleep($1)", [seconds]);
                sendJson(res, 200, { slept_seconds: seconds });
            },
        },
    };

    function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
        const text = JSON.stringify(body);
        res.writeHead(status, {
            "Content-Type": "application/json; charset=utf-8",
            "Content-Length": String(Buffer.byteLength(text)),
            "Cache-Control": "no-store",
            // During shutdown, end keep-alive connections after this response
            // (also those whose request began before SIGTERM) so the server can close.
            ...(state.shuttingDown ? { Connection: "close" } : {}),
            ...headers,
        });
        res.end(text);
    }

    return (req, res) => {
        const started = performance.now();
        state.inFlight++;
        const target = req.url ?? "/";
        const q = target.indexOf("?");
        // The query string is not logged: it may carry tokens.
        const path = q === -1 ? target : target.slice(0, q);
        const query = new URLSearchParams(q === -1 ? "" : target.slice(q + 1));

        res.on("close", () => {
            state.inFlight--;
            const fields = {
                method: req.method,
                path,
                status: res.statusCode,
                duration_ms: Math.round((performance.now() - started) * 10) / 10,
                ...(res.writableFinished ? {} : { aborted: true }),
            };
            // Probes hit /health and /livez every few seconds; at info they would drown the rest.
            if (path === "/health" || path === "/livez") log.debug("request", fields);
            else log.info("request", fields);
        });

        const route = routes[path];
        const handler = route?.[req.method ?? ""];
        if (!route) return sendJson(res, 404, { error: "not found" });
        if (!handler) return sendJson(res, 405, { error: "method not allowed" }, { Allow: Object.keys(route).join(", ") });

        handler({ req, res, query }).catch((err: unknown) => {
            if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
            log.error("request failed", { method: req.method, path, ...errorFields(err) });
            if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
            else res.destroy();
        });
    };
}

/**
 * True when the database answers `SELECT 1` within the budget. The timer is a
 * hard bound: the probe gets a clean 503 before Kubernetes gives up on it,
 * even if connecting hangs (the pool's connect timeout covers that too, and
 * query_timeout makes pg drop a connection that stopped answering).
 */
export async function checkDatabase(pool: Pool, budgetMs: number, log: Logger): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => {
            timedOut = true;
            log.warn("database health check timed out", { timeout_ms: budgetMs });
            resolve(false);
        }, budgetMs);
    });
    // pg honours a per-query query_timeout (and then drops the connection);
    // @types/pg does not declare it, hence the typed variable.
    const select: QueryConfig & { query_timeout: number } = { text: "SELECT 1", query_timeout: budgetMs };
    const query = pool.query(select).then(
        () => true,
        (err: unknown) => {
            // After a timeout the late failure is the same outage: keep it out of the warnings.
            (timedOut ? log.debug : log.warn)("database health check failed", errorFields(err));
            return false;
        },
    );
    try {
        return await Promise.race([query, timeout]);
    } finally {
        clearTimeout(timer);
    }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > MAX_BODY_BYTES) throw new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`);
        chunks.push(chunk as Buffer);
    }
    try {
        return JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
        throw new HttpError(400, "body must be JSON");
    }
}
