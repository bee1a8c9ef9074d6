// Monthly cost of a render at Hetzner's list prices (hetzner-prices.ts):
// servers, load balancer, primary IPs, the volumes the CSI driver creates for
// claims (PVCs and CloudNativePG instances), and Object Storage when a bucket
// there is configured. Pure: resources in, an itemised cost out; used by the
// render's cost report and by the monthly-cost-cap policy.
import { HETZNER_PRICES } from "./hetzner-prices";

/** A resource as a render records it or a policy sees it: its type and its inputs. */
export interface PricedResource {
    readonly type: string;
    readonly inputs?: unknown;
}

export interface CostLine {
    readonly item: string;
    readonly quantity: number;
    /** What one unit is: "cx33", "GB of volume", ... */
    readonly unit: string;
    readonly monthly: number;
}

export interface Cost {
    readonly lines: readonly CostLine[];
    readonly total: number;
    readonly currency: string;
    readonly pricesValidFrom: string;
    /** What is not counted. */
    readonly notes: readonly string[];
}

/** The StorageClasses whose volumes are Hetzner volumes (the default one in hetzner mode included). */
const HETZNER_CLASSES = new Set(["hcloud-volumes", "hcloud-volumes-retain"]);
const MIN_VOLUME_GB = 10;
const round = (n: number) => Math.round(n * 100) / 100;

/**
 * The size of the volume the CSI driver creates for a claim: the requested bytes
 * in whole 2^30-byte units, rounded up, at least 10 (hetznercloud/csi-driver
 * v2.21.2 internal/driver/helper.go volumeSizeFromCapacityRange); Hetzner bills
 * that size in "GB".
 */
export function volumeGb(quantity: string): number {
    const m = /^(\d+(?:\.\d+)?)(Gi|G|Mi|M|Ti|T)?$/.exec(quantity);
    if (!m) throw new Error(`cannot price the storage quantity '${quantity}'`);
    const factor: Record<string, number> = { Gi: 2 ** 30, G: 1e9, Mi: 2 ** 20, M: 1e6, Ti: 2 ** 40, T: 1e12, "": 1 };
    return Math.max(MIN_VOLUME_GB, Math.ceil((Number(m[1]) * factor[m[2] ?? ""]) / 2 ** 30));
}

/** Whether a string inside `value` contains `text` (stops at the first). */
function mentions(value: unknown, text: string): boolean {
    if (typeof value === "string") return value.includes(text);
    if (Array.isArray(value)) return value.some((v) => mentions(v, text));
    if (typeof value === "object" && value !== null) return Object.values(value).some((v) => mentions(v, text));
    return false;
}

export function monthlyCost(resources: readonly PricedResource[], hetznerMode: boolean): Cost {
    const p = HETZNER_PRICES;
    const lines: CostLine[] = [];
    const notes: string[] = [];
    const inputs = (type: string) => resources.filter((r) => r.type === type).map((r) => r.inputs as Record<string, unknown>);

    const serverTypes = new Map<string, number>();
    for (const s of inputs("hcloud:index/server:Server")) serverTypes.set(String(s.serverType), (serverTypes.get(String(s.serverType)) ?? 0) + 1);
    for (const [type, count] of serverTypes) {
        const price = p.servers[type];
        if (price === undefined) throw new Error(`no price for server type ${type}: add it to policies/rules/hetzner-prices.ts`);
        lines.push({ item: "servers", quantity: count, unit: type, monthly: round(count * price) });
    }
    for (const lb of inputs("hcloud:index/loadBalancer:LoadBalancer")) {
        const type = String(lb.loadBalancerType);
        lines.push({ item: "load balancer", quantity: 1, unit: type, monthly: p.loadBalancers[type] });
    }
    const ipv4 = inputs("hcloud:index/primaryIp:PrimaryIp").filter((ip) => ip.type === "ipv4").length;
    if (ipv4 > 0) lines.push({ item: "primary IPv4", quantity: ipv4, unit: "address", monthly: round(ipv4 * p.primaryIpv4) });

    // Volumes: only where the CSI driver makes Hetzner volumes (hetzner mode).
    let gb = 0;
    if (hetznerMode) {
        const onHetzner = (storageClass: unknown) => storageClass === undefined || HETZNER_CLASSES.has(String(storageClass));
        for (const pvc of inputs("kubernetes:core/v1:PersistentVolumeClaim")) {
            const spec = pvc.spec as { storageClassName?: string; resources: { requests: { storage: string } } };
            if (onHetzner(spec.storageClassName)) gb += volumeGb(spec.resources.requests.storage);
        }
        for (const cluster of inputs("kubernetes:postgresql.cnpg.io/v1:Cluster")) {
            const spec = cluster.spec as { instances: number; storage: { size: string; storageClass?: string } };
            if (onHetzner(spec.storage.storageClass)) gb += spec.instances * volumeGb(spec.storage.size);
        }
        notes.push("the object-store drill's scratch volume exists only while it runs (weekly, a few hours)");
    } else {
        notes.push("existing mode: the cluster, its volumes and its load balancers are not counted");
    }
    if (gb > 0) lines.push({ item: "volumes", quantity: gb, unit: "GB", monthly: round(gb * p.volumePerGb) });

    if (resources.some((r) => mentions(r.inputs, "your-objectstorage.com"))) {
        lines.push({ item: "object storage", quantity: 1, unit: "base (1 TB stored, 1 TB egress)", monthly: p.objectStorageBase });
        notes.push("object storage beyond 1 TB stored or 1 TB egress is billed by use; one base price per Hetzner project");
    }
    notes.push("traffic beyond 20 TB per server is billed by use");
    return { lines, total: round(lines.reduce((sum, l) => sum + l.monthly, 0)), currency: p.currency, pricesValidFrom: p.validFrom, notes };
}

export function describeCost(cost: Cost): string {
    const items = cost.lines.map((l) => `${l.item} ${l.quantity} x ${l.unit} ${l.monthly.toFixed(2)}`).join(", ");
    return `Monthly cost: ${cost.currency} ${cost.total.toFixed(2)}${items ? ` (${items})` : ""}; Hetzner list prices from ${cost.pricesValidFrom}, excl. VAT`;
}
