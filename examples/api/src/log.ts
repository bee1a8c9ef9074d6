// JSON logs, one object per line, so the platform's log stream can be
// filtered by field. `fatal` (the process is about to exit 1) goes to stderr,
// everything else to stdout.

export const LOG_LEVELS = ["debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type Fields = Record<string, unknown>;

export interface Logger {
    debug(msg: string, fields?: Fields): void;
    info(msg: string, fields?: Fields): void;
    warn(msg: string, fields?: Fields): void;
    error(msg: string, fields?: Fields): void;
    fatal(msg: string, fields?: Fields): void;
}

export interface LoggerOptions {
    level?: LogLevel;
    /**
     * Values that must never appear in a log line (connection strings,
     * passwords). We never log them on purpose; this is the second line of
     * defence for error messages that might quote them.
     */
    secrets?: Iterable<string | undefined>;
    write?: (stream: "stdout" | "stderr", line: string) => void;
}

// Shorter "secrets" would mangle ordinary words; a real password is longer.
const MIN_SECRET_LENGTH = 4;

export function createLogger(options: LoggerOptions = {}): Logger {
    const threshold = LOG_LEVELS.indexOf(options.level ?? "info");
    const secrets = [...(options.secrets ?? [])]
        .filter((s): s is string => typeof s === "string" && s.length >= MIN_SECRET_LENGTH)
        // A secret shows up JSON-escaped inside a serialized line.
        .map((s) => JSON.stringify(s).slice(1, -1))
        // Longest first, so a URL is replaced whole before its password part.
        .sort((a, b) => b.length - a.length);
    const write = options.write ?? ((stream, line) => process[stream].write(line));

    const emit = (level: LogLevel, msg: string, fields: Fields = {}): void => {
        if (LOG_LEVELS.indexOf(level) < threshold) return;
        let line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields });
        for (const secret of secrets) line = line.split(secret).join("[redacted]");
        write(level === "fatal" ? "stderr" : "stdout", line + "\n");
    };
    return {
        debug: (msg, fields) => emit("debug", msg, fields),
        info: (msg, fields) => emit("info", msg, fields),
        warn: (msg, fields) => emit("warn", msg, fields),
        error: (msg, fields) => emit("error", msg, fields),
        fatal: (msg, fields) => emit("fatal", msg, fields),
    };
}

/** Log fields for an error: its message and, for pg and Node errors, the code. No stack: these are expected operational errors. */
export function errorFields(err: unknown): Fields {
    if (!(err instanceof Error)) return { error: String(err) };
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" ? { error: err.message, code } : { error: err.message };
}

/** The connection string and its password (raw and percent-decoded), for LoggerOptions.secrets. */
export function connectionSecrets(url: string | undefined): string[] {
    if (!url) return [];
    const secrets = [url];
    try {
        const password = new URL(url).password;
        if (password) secrets.push(password, decodeURIComponent(password));
    } catch {
        // Not a URL (e.g. a socket path): the whole string is the only secret we know.
    }
    return secrets;
}
