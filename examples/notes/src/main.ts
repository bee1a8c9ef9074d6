// A small notes API on SQLite, the shape of seed 002's app: its data on the
// app's volume, migrated before start, served over HTTP, drained on SIGTERM.
//   GET /livez   the process serves (startup and liveness)
//   GET /health  the database answers (readiness)
//   GET /notes, POST /notes {"body": "..."}
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { loadConfig, log } from "./config";
import { MIGRATIONS, openDatabase, schemaVersion } from "./db";

const MAX_BODY_BYTES = 64 * 1024;

function send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > MAX_BODY_BYTES) throw new Error("body too large");
        chunks.push(chunk as Buffer);
    }
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function main(): void {
    const config = loadConfig(process.env);
    const db = openDatabase(config.dataDir);
    // Serving an older schema would fail on the first request: refuse to start instead.
    if (schemaVersion(db) !== MIGRATIONS.length) {
        log("error", "the database is not migrated: run dist/migrate.js first", { version: schemaVersion(db), expected: MIGRATIONS.length });
        process.exit(1);
    }
    const insert = db.prepare("INSERT INTO notes (body) VALUES (?) RETURNING id, body, created_at");
    const list = db.prepare("SELECT id, body, created_at FROM notes ORDER BY id DESC LIMIT 100");
    let draining = false;

    const server = createServer((req, res) => {
        void (async () => {
            if (req.url === "/livez") return send(res, 200, { ok: true });
            if (req.url === "/health") {
                if (draining) return send(res, 503, { ok: false, reason: "shutting down" });
                db.prepare("SELECT 1").get();
                return send(res, 200, { ok: true });
            }
            if (req.url === "/notes" && req.method === "GET") return send(res, 200, list.all());
            if (req.url === "/notes" && req.method === "POST") {
                const input = await readJson(req) as { body?: unknown };
                if (typeof input.body !== "string" || input.body.length === 0) return send(res, 400, { error: "body must be a non-empty string" });
                return send(res, 201, insert.get(input.body));
            }
            return send(res, 404, { error: "not found" });
        })().catch((err: unknown) => {
            log("error", "request failed", { url: req.url, error: String(err) });
            if (!res.headersSent) send(res, 500, { error: "internal error" });
        });
    });
    server.listen(config.port, () => log("info", "listening", { port: (server.address() as AddressInfo).port, data_dir: config.dataDir }));

    process.once("SIGTERM", () => {
        draining = true;
        log("info", "draining");
        const deadline = setTimeout(() => process.exit(1), config.shutdownTimeoutMs);
        deadline.unref();
        server.close(() => {
            // Closing the last connection checkpoints the WAL into the database file.
            db.close();
            log("info", "stopped");
        });
        server.closeIdleConnections();
    });
}

main();
