// Renders committed stacks with overrides for tests, and helpers to look into a render.
import * as path from "node:path";
import { isSecretValue, RecordedResource } from "../../tools/mock-runtime";
import { Render, renderStack } from "../../tools/render";

export const PROJECT_DIR = path.resolve(__dirname, "..", "..");

/** Renders a committed stack with overrides ("platform:x" -> value), as `npm run render -- --set` does. */
export { renderStack as render };

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

/** What a resource waits for directly: dependsOn, input dependencies and its explicit provider ("<urn>::<id>"). */
function waitsFor(x: RecordedResource): string[] {
    return [...x.dependencies, ...(x.provider ? [x.provider.slice(0, x.provider.lastIndexOf("::"))] : [])];
}

/** Every URN `start` waits for, directly or through what it waits for (dependsOn, input dependencies, providers). */
export function transitiveDependencies(r: Render, start: RecordedResource): Set<string> {
    const byUrn = new Map(r.run.resources.map((x) => [x.urn, x]));
    const seen = new Set<string>();
    const stack = waitsFor(start);
    while (stack.length > 0) {
        const urn = stack.pop() as string;
        if (seen.has(urn)) continue;
        seen.add(urn);
        const next = byUrn.get(urn);
        if (next) stack.push(...waitsFor(next));
    }
    return seen;
}
