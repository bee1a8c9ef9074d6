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

export const cron = z.string().regex(/^(\S+\s+){4}\S+$/, "must be a 5-field cron expression such as '0 3 * * *' (UTC)");

export const cpuQuantity = z.preprocess(
    (v) => (typeof v === "number" ? String(v) : v),
    z.string().regex(/^(\d+m|\d+(\.\d{1,3})?)$/, "must be a CPU quantity such as 0.5, 1 or 500m"),
);

export const dnsName = z.string().regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$/, "must be a DNS name such as api.example.com");

/** An S3 endpoint host (Hetzner Object Storage by default), without scheme. */
export const s3Endpoint = z.string().regex(/^[a-z0-9.-]+(:\d+)?$/, "must be a host name without scheme, such as fsn1.your-objectstorage.com")
    .default("fsn1.your-objectstorage.com");
