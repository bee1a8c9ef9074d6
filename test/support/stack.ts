// Builds stack configs for tests from a committed stack file plus overrides,
// and helpers to look into a render.
import * as path from "node:path";
import { isSecretValue, RecordedResource } from "../../tools/mock-runtime";
import { Render, renderConfig } from "../../tools/render";
import { readStackConfig, StackConfig, withPlaceholderHcloudToken } from "../../tools/stack-config";

export const PROJECT_DIR = path.resolve(__dirname, "..", "..");

/** `base` stack's config with `overrides` ("platform:x" -> value; undefined removes the key). */
export function stackConfig(base: string, overrides: Record<string, string | undefined> = {}, secretKeys: string[] = []): StackConfig {
    const sc = withPlaceholderHcloudToken(readStackConfig(PROJECT_DIR, base));
    const config = { ...sc.config };
    for (const [k, v] of Object.entries(overrides)) {
        if (v === undefined) delete config[k];
        else config[k] = v;
    }
    return { ...sc, config, secretKeys: [...sc.secretKeys, ...secretKeys] };
}

export function render(base: string, overrides: Record<string, string | undefined> = {}, secretKeys: string[] = []): Promise<Render> {
    return renderConfig(stackConfig(base, overrides, secretKeys));
}

export function ofType(r: Render, type: string): RecordedResource[] {
    return r.run.resources.filter((x) => x.type === type);
}

export function one(r: Render, type: string, name?: string): RecordedResource {
    const found = ofType(r, type).filter((x) => name === undefined || x.name === name);
    if (found.length !== 1) throw new Error(`expected one ${type} ${name ?? ""}, found ${found.length}`);
    return found[0];
}

/** The plain value of an input, asserting it was marked secret. */
export function secretInput(value: unknown): unknown {
    if (!isSecretValue(value)) throw new Error(`expected a secret, got ${JSON.stringify(value)?.slice(0, 80)}`);
    return value.value;
}

export function plain(value: unknown): unknown {
    return isSecretValue(value) ? value.value : value;
}
