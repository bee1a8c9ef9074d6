// Building blocks of the stack-config schemas (cluster, apps, database). Top-level
// `pulumi config set` values arrive as strings ("3", "true", JSON for lists and
// maps); values set with `--path` arrive typed. Each block accepts both.
import { z } from "zod";

/** One problem with the stack config: the key, what is wrong, and the command that fixes it. */
export interface ConfigProblem {
    readonly key: string;
    readonly message: string;
    readonly fix: string;
}

export function integer(min: number, max: number) {
    return z.preprocess(
        (v) => (typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : v),
        z.number({ error: "must be a whole number" })
            .int("must be a whole number")
            .min(min, `must be at least ${min}`)
            .max(max, `must be at most ${max}`),
    );
}

export const boolean = z.preprocess(
    (v) => (v === "true" ? true : v === "false" ? false : v),
    z.boolean({ error: "must be true or false" }),
);

/** Lists and maps set as a whole arrive as JSON text. */
export function fromJson<T extends z.ZodType>(schema: T) {
    return z.preprocess((v) => {
        if (typeof v !== "string") return v;
        try { return JSON.parse(v); } catch { return v; }
    }, schema);
}

/**
 * The five cron fields with their ranges and names, as Kubernetes' CronJob and
 * k3s's etcd-snapshot-schedule-cron parse them (robfig/cron spec.go bounds:
 * day of week is 0-6, so Vixie cron's 7 for Sunday is refused).
 */
const CRON_FIELDS: readonly { name: string; min: number; max: number; names?: readonly string[] }[] = [
    { name: "minute", min: 0, max: 59 },
    { name: "hour", min: 0, max: 23 },
    { name: "day of month", min: 1, max: 31 },
    { name: "month", min: 1, max: 12, names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"] },
    { name: "day of week", min: 0, max: 6, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] },
];

/** What is wrong with a 5-field cron expression, or undefined when it is valid. */
export function cronProblem(expr: string): string | undefined {
    const fields = expr.trim().split(/\s+/);
    if (fields.length !== 5) return `has ${fields.length} field(s), not 5 (minute hour day-of-month month day-of-week)`;
    for (const [i, field] of fields.entries()) {
        const spec = CRON_FIELDS[i];
        const value = (text: string): number | undefined => {
            const named = spec.names?.indexOf(text.toLowerCase()) ?? -1;
            if (named >= 0) return named + (spec.name === "month" ? 1 : 0);
            return /^\d+$/.test(text) ? Number(text) : undefined;
        };
        for (const part of field.split(",")) {
            const m = /^(\*|\?|([^-/]+)(?:-([^/]+))?)(?:\/(\d+))?$/.exec(part);
            if (!m) return `${spec.name} '${field}' is not a value, range, list or step`;
            if (m[4] !== undefined && Number(m[4]) === 0) return `${spec.name} '${field}' has a step of 0`;
            for (const bound of [m[2], m[3]].filter((b): b is string => b !== undefined)) {
                const v = value(bound);
                if (v === undefined || v < spec.min || v > spec.max) return `${spec.name} '${bound}' is outside ${spec.min}-${spec.max}`;
            }
            if (m[2] !== undefined && m[3] !== undefined && (value(m[2]) ?? 0) > (value(m[3]) ?? 0)) return `${spec.name} range '${m[2]}-${m[3]}' runs backwards`;
        }
    }
    return undefined;
}

export const cron = z.string().superRefine((expr, ctx) => {
    const problem = cronProblem(expr);
    if (problem) ctx.addIssue({ code: "custom", message: `must be a 5-field cron expression such as '0 3 * * *' (UTC): ${problem}` });
});

export const cpuQuantity = z.preprocess(
    (v) => (typeof v === "number" ? String(v) : v),
    z.string().regex(/^(\d+m|\d+(\.\d{1,3})?)$/, "must be a CPU quantity such as 0.5, 1 or 500m"),
);

export const dnsName = z.string().regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$/, "must be a DNS name such as api.example.com");

/** An S3 endpoint host (Hetzner Object Storage by default), without scheme. */
export const s3Endpoint = z.string().regex(/^[a-z0-9.-]+(:\d+)?$/, "must be a host name without scheme, such as fsn1.your-objectstorage.com")
    .default("fsn1.your-objectstorage.com");

/** Levenshtein distance, for "did you mean" on a misspelt key. */
export function editDistance(a: string, b: string): number {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
        let diagonal = row[0];
        row[0] = i;
        for (let j = 1; j <= b.length; j++) {
            const above = row[j];
            row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
            diagonal = above;
        }
    }
    return row[b.length];
}
