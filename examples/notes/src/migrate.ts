// The migration the platform runs in the app's pod before the app starts
// (an init container on the same volume): `node dist/migrate.js`.
import { loadConfig, log } from "./config";
import { migrate, openDatabase, schemaVersion } from "./db";

try {
    const db = openDatabase(loadConfig(process.env).dataDir);
    const ran = migrate(db);
    log("info", "migrated", { ran, version: schemaVersion(db) });
    db.close();
} catch (err) {
    log("error", "migration failed", { error: String(err) });
    process.exitCode = 1;
}
