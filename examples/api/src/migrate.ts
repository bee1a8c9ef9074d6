// `migrate` entry point: run as a Kubernetes Job before each release. Exits 0
// when the schema is up to date (applied or already there), 1 on any failure.
import { Client } from "pg";
import { loadMigrateConfig } from "./config";
import { connectionSecrets, createLogger, errorFields } from "./log";
import { migrate } from "./migrations";

// Bounds a hung connect; waiting for the lock and the migrations themselves
// are bounded by the Job's activeDeadlineSeconds instead.
const CONNECT_TIMEOUT_MS = 10_000;

async function main(): Promise<number> {
    const secrets = [...connectionSecrets(process.env.DATABASE_DIRECT_URL), ...connectionSecrets(process.env.DATABASE_URL)];
    const loaded = loadMigrateConfig(process.env);
    if (!loaded.ok) {
        const log = createLogger({ secrets });
        for (const problem of loaded.problems) log.fatal(problem.message, { variable: problem.variable });
        return 1;
    }
    const log = createLogger({ level: loaded.config.logLevel, secrets });

    const client = new Client({
        connectionString: loaded.config.databaseUrl,
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        application_name: "sample-api-migrate",
    });
    // A connection lost mid-run is reported here as well as by the pending
    // query; without a listener it would crash the process without a log line.
    client.on("error", (err) => log.error("database connection lost", errorFields(err)));
    try {
        log.info("connecting", { source: loaded.config.source });
        await client.connect();
        const applied = await migrate(client, log);
        log.info("migrations applied", { applied: applied.length, versions: applied });
        return 0;
    } catch (err) {
        log.fatal("migration failed", errorFields(err));
        return 1;
    } finally {
        await client.end().catch(() => undefined);
    }
}

// Exit explicitly: a Job must not hang on a stray handle. stdout and stderr
// are synchronous for files and pipes on Linux, so no log line is lost.
void main().then((code) => process.exit(code));
