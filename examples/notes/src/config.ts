// Configuration from the environment the platform gives every app: PORT,
// SHUTDOWN_TIMEOUT ("30s"), and the volume's path (DATA_DIR, default /data).
export interface NotesConfig {
    readonly port: number;
    readonly dataDir: string;
    readonly shutdownTimeoutMs: number;
}

export function loadConfig(env: NodeJS.ProcessEnv): NotesConfig {
    const port = Number(env.PORT ?? "8080");
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got '${env.PORT}'`);
    const shutdown = /^(\d+)s?$/.exec(env.SHUTDOWN_TIMEOUT ?? "30s");
    if (!shutdown) throw new Error(`SHUTDOWN_TIMEOUT must be seconds such as 30s, got '${env.SHUTDOWN_TIMEOUT}'`);
    return { port, dataDir: env.DATA_DIR ?? "/data", shutdownTimeoutMs: Number(shutdown[1]) * 1000 };
}

/** One JSON object per line. */
export function log(level: "info" | "error", msg: string, fields: Record<string, unknown> = {}): void {
    const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields });
    (level === "error" ? process.stderr : process.stdout).write(`${line}\n`);
}
