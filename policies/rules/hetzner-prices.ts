// Hetzner Cloud list prices, EUR per month, excluding VAT, for the EU locations
// (fsn1, nbg1, hel1), as the Cloud API's /v1/pricing states them: a server's
// price excludes its primary IPv4, which is priced on its own. The monthly price
// is a cap: Hetzner bills hourly up to it.
//
// Valid for orders from 2026-06-15 (Hetzner raised server prices on 2026-04-01
// and again for new orders and rescales on 2026-06-15; servers ordered earlier
// keep their April price). Read from Hetzner's website price API and Cloud API
// reports between 2026-08-21 and 2026-09-19 (e.g. robhunter/agentdeals #1181,
// mixxor/eu-cloud-prices prices/hetzner.json @40e3af64, vitabaks/autobase
// console/db/migrations/20260723120000_2_10_0.sql). Check
// https://www.hetzner.com/cloud before relying on a figure; update the date
// with the numbers. US and Singapore prices differ (cpx11-cpx51 are US-only,
// cx/cax EU-only); the table holds the EU price for every type.
export const HETZNER_PRICES = {
    validFrom: "2026-06-15",
    checked: "2026-09-19",
    currency: "EUR",
    servers: {
        cx23: 5.49, cx33: 8.49, cx43: 15.99, cx53: 29.49,
        cax11: 5.99, cax21: 10.49, cax31: 20.99, cax41: 40.99,
        cpx12: 11.49, cpx22: 19.49, cpx32: 35.49, cpx42: 69.49, cpx52: 100.49, cpx62: 129.99,
        // US-only now; one source, not confirmed elsewhere.
        cpx11: 17.49, cpx21: 31.99, cpx31: 62.49, cpx41: 120.49, cpx51: 237.99,
        ccx13: 42.99, ccx23: 85.99, ccx33: 138.49, ccx43: 275.99, ccx53: 533.49, ccx63: 853.49,
    } as Readonly<Record<string, number>>,
    loadBalancers: { lb11: 7.49, lb21: 21.49, lb31: 42.99 } as Readonly<Record<string, number>>,
    primaryIpv4: 0.5,
    primaryIpv6: 0,
    /** Per GB and month; a volume is at least 10 GB. */
    volumePerGb: 0.0572,
    /** The base price of Object Storage: 1 TB stored and 1 TB egress included; more is billed by use. */
    objectStorageBase: 6.49,
} as const;
