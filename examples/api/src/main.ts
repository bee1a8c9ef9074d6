// The API server: reads its configuration, serves HTTP, and shuts down
// gracefully on SIGTERM (Kubernetes' stop signal) so a rolling deploy drops
// no request.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Pool } from "pg";
import { checkDatabase, createApp, type AppState } from "./app";
import { loadApiConfig } from "./config";
import { connectionSecrets, createLogger, errorFields } from "./log";

function main(): void {
    const loaded = loadApiConfig(process.env);
    if (!loaded.ok) {
        // Crash fast with a clear message: a pod in CrashLoopBackOff that says
        // why is easier to fix than one running half-configured.
        const log = createLogger({ secrets: connectionSecrets(process.env.DATABASE_URL) });
        for (const problem of loaded.problems) log.fatal(problem.message, { variable: problem.variable });
        process.exitCode = 1;
        return;
    }
    const config = loaded.config;
    const log = createLogger({ level: config.logLevel, secrets: connectionSecrets(config.databaseUrl) });

    const pool = new Pool({
        connectionString: config.databaseUrl,
        max: config.dbMaxConnections,
        connectionTimeoutMillis: config.dbPoolTimeoutMs,
        application_name: "sample-api",
    });
    // An idle connection dies when the database restarts or a proxy drops it;
    // pg reports that here, and without a listener the process would crash.
    // The pool replaces the connection on the next query.
    pool.on("error", (err) => log.warn("idle database connection closed", errorFields(err)));

    const state: AppState = { shuttingDown: false, inFlight: 0 };
    const server = createServer(createApp({ pool, log, healthTimeoutMs: config.healthTimeoutMs, state }));
    server.on("error", (err) => {
        log.fatal("cannot listen", { port: config.port, ...errorFields(err) });
        process.exit(1);
    });
    server.listen(config.port, () => {
        const { port } = server.address() as AddressInfo;
        log.info("listening", {
            port,
            health_timeout_ms: config.healthTimeoutMs,
            shutdown_timeout_ms: config.shutdownTimeoutMs,
            db_max_connections: config.dbMaxConnections,
            db_pool_timeout_ms: config.dbPoolTimeoutMs,
        });
        // Not fatal when the database is down at start: /health answers 503
        // until it is up, instead of the pod crash-looping through a database restart.
        const started = performance.now();
        void checkDatabase(pool, config.healthTimeoutMs, log).then((ok) => {
            if (ok) log.info("connected to database", { duration_ms: Math.round(performance.now() - started) });
            else log.warn("database not reachable yet; /health answers 503 until it is");
        });
    });

    const shutdown = (signal: NodeJS.Signals): void => {
        if (state.shuttingDown) {
            log.info("already shutting down", { signal });
            return;
        }
        state.shuttingDown = true;

        // Kubernetes sends SIGKILL after terminationGracePeriodSeconds; give up
        // first, on our own terms, with a log line saying what was cut off.
        const deadline = setTimeout(() => {
            log.fatal("shutdown timed out with requests still in flight", { in_flight: state.inFlight, timeout_ms: config.shutdownTimeoutMs });
            process.exit(1);
        }, config.shutdownTimeoutMs);

        // Stop accepting connections; the callback runs once every open
        // connection has closed, i.e. in-flight requests have been answered
        // (responses now carry `Connection: close`).
        server.close(() => {
            pool.end().then(
                () => {
                    clearTimeout(deadline);
                    log.info("shutdown complete");
                    process.exit(0);
                },
                (err: unknown) => {
                    log.fatal("closing the database pool failed", errorFields(err));
                    process.exit(1);
                },
            );
        });
        // Keep-alive connections with no request in progress would otherwise hold the server open.
        server.closeIdleConnections();
        // Logged once the listener is closed: from here on, new connections are refused.
        log.info("shutting down", { signal, in_flight: state.inFlight, timeout_ms: config.shutdownTimeoutMs });
    };
    process.on("SIGTERM", shutdown);
    process.on("SIGINT", shutdown);
}

main();
