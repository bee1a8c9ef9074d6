// The notes database: one SQLite file on the app's volume, in WAL mode, so
// readers (requests, the platform's backup snapshot) never block the writer.
import * as path from "node:path";
import { DatabaseSync } from "node:sqlite";

export const DATABASE_FILE = "notes.db";

/** The schema, one statement per version; PRAGMA user_version counts those applied. */
export const MIGRATIONS: readonly string[] = [
    `CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        body TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )`,
];

export function openDatabase(dataDir: string): DatabaseSync {
    const db = new DatabaseSync(path.join(dataDir, DATABASE_FILE));
    // Wait for a lock rather than fail at once: a migration or checkpoint holds it briefly.
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("PRAGMA journal_mode = WAL");
    return db;
}

export function schemaVersion(db: DatabaseSync): number {
    return Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
}

/** Applies the migrations not yet applied, each in its own write transaction; returns how many ran. */
export function migrate(db: DatabaseSync): number {
    let ran = 0;
    while (schemaVersion(db) < MIGRATIONS.length) {
        db.exec("BEGIN IMMEDIATE");
        try {
            // Read again under the write lock: another migrator may have gone first.
            const version = schemaVersion(db);
            if (version < MIGRATIONS.length) {
                db.exec(MIGRATIONS[version]);
                db.exec(`PRAGMA user_version = ${version + 1}`);
                ran++;
            }
            db.exec("COMMIT");
        } catch (err) {
            db.exec("ROLLBACK");
            throw err;
        }
    }
    return ran;
}
