// Apps with a persistent volume (seed 002's SQLite app): a protected, retained
// claim mounted at its path, one pod with Recreate rollouts, the migration in
// the pod before the app on the same volume, and the edits that would lose
// data refused.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { isConfigError } from "../components/config";
import { VOLUME_FS_GROUP, VOLUME_USER } from "../components/apps/app-render";
import { parseAllDocuments } from "yaml";
import { checkResources, policyConfig, stackPolicyConfigFile } from "../tools/policy";
import { earlierState, type Render } from "../tools/render";
import { planRenders } from "../tools/plan";
import { validateKubernetesObject } from "./support/k8s-schema";
import { one, ofType, render, secretInput } from "./support/stack";

// Fixtures are arbitrary Kubernetes JSON: no narrower type exists for them.
type Json = Record<string, any>;

const NOTES = { image: "ghcr.io/acme/notes:1.4.2", host: "notes.example.com", volume: { path: "/data", size: "10Gi" }, migrationCommand: ["/app/notes", "migrate"] };
/** The stack's apps replaced by one app `notes`. */
const withNotes = (notes: Record<string, unknown>) => ({ "platform:apps": JSON.stringify({ notes }) });

/**
 * What the kubelet does with a pod's fsGroup at a mount (kubernetes
 * pkg/volume/volume_linux.go, SetVolumeOwnership and changeFilePermission):
 * with OnRootMismatch it skips the walk when the root already has the group,
 * read-write for user and group, and setgid (requiresPermissionChange);
 * otherwise each file gets the group and ug+rw, each directory also setgid and ug+x.
 */
function kubeletFsGroupWalk(root: string, fsGroup: number, policy: string | undefined): void {
    const rootStat = fs.statSync(root);
    if (policy === "OnRootMismatch" && rootStat.gid === fsGroup && (rootStat.mode & 0o660) === 0o660 && (rootStat.mode & 0o2000) !== 0) return;
    const visit = (p: string) => {
        const st = fs.lstatSync(p);
        if (st.isSymbolicLink()) return;
        fs.chownSync(p, st.uid, fsGroup);
        fs.chmodSync(p, (st.mode & 0o7777) | 0o660 | (st.isDirectory() ? 0o2110 : 0));
        if (st.isDirectory()) for (const e of fs.readdirSync(p)) visit(path.join(p, e));
    };
    visit(root);
}

async function problemKeys(stack: string, overrides: Record<string, string>, live?: Parameters<typeof render>[3]): Promise<string[]> {
    try {
        await render(stack, overrides, [], live);
        return [];
    } catch (err) {
        assert.ok(isConfigError(err), String(err));
        return err.problems.map((p) => p.key);
    }
}

describe("an app with a volume", () => {
    let prod: Render;
    it("renders a protected, retained claim on the retaining class, in a protected namespace", async () => {
        prod = await render("prod", withNotes(NOTES));
        const claim = one(prod, "kubernetes:core/v1:PersistentVolumeClaim", "notes-data");
        assert.ok(claim.protect && claim.retainOnDelete);
        assert.deepEqual((claim.inputs as Json).spec, { accessModes: ["ReadWriteOnce"], storageClassName: "hcloud-volumes-retain", resources: { requests: { storage: "10Gi" } } });
        const ns = one(prod, "kubernetes:core/v1:Namespace", "notes-ns");
        assert.ok(ns.protect && ns.retainOnDelete, "deleting the namespace would delete the claim");
        // Existing mode: the cluster's default class, or the one the app names.
        const local = await render("local", withNotes({ ...NOTES, volume: { ...NOTES.volume, storageClass: "local-path" } }));
        assert.equal((one(local, "kubernetes:core/v1:PersistentVolumeClaim", "notes-data").inputs as Json).spec.storageClassName, "local-path");
        const localDefault = await render("local", withNotes(NOTES));
        assert.equal((one(localDefault, "kubernetes:core/v1:PersistentVolumeClaim", "notes-data").inputs as Json).spec.storageClassName, undefined);
    });

    it("runs one pod, stopped before the next starts, writable by the non-root user at the path, the rest read-only", () => {
        const d = one(prod, "kubernetes:apps/v1:Deployment", "notes-deployment").inputs as Json;
        assert.equal(d.spec.replicas, 1);
        assert.deepEqual(d.spec.strategy, { type: "Recreate" });
        const pod = d.spec.template.spec;
        assert.equal(pod.securityContext.fsGroup, VOLUME_FS_GROUP);
        assert.equal(pod.securityContext.runAsNonRoot, true);
        assert.deepEqual(pod.volumes.find((v: Json) => v.name === "data"), { name: "data", persistentVolumeClaim: { claimName: "notes-data" } });
        const [app] = pod.containers;
        assert.ok(app.volumeMounts.some((m: Json) => m.name === "data" && m.mountPath === "/data"));
        assert.equal(app.securityContext.readOnlyRootFilesystem, true);
        assert.equal(ofType(prod, "kubernetes:policy/v1:PodDisruptionBudget").filter((p) => p.name.startsWith("notes")).length, 0, "no PDB for a singleton");
        // The Deployment waits for its claim.
        const claim = one(prod, "kubernetes:core/v1:PersistentVolumeClaim", "notes-data");
        assert.ok(one(prod, "kubernetes:apps/v1:Deployment", "notes-deployment").dependencies?.includes(claim.urn));
    });

    it("migrates in its own pod, on the volume, before the app (no Job that could not attach it)", () => {
        const pod = (one(prod, "kubernetes:apps/v1:Deployment", "notes-deployment").inputs as Json).spec.template.spec;
        assert.equal(pod.initContainers.length, 1);
        const [migrate] = pod.initContainers;
        assert.equal(migrate.name, "migrate");
        assert.deepEqual(migrate.command, ["/app/notes", "migrate"]);
        assert.equal(migrate.image, pod.containers[0].image);
        assert.ok(migrate.volumeMounts.some((m: Json) => m.name === "data" && m.mountPath === "/data"));
        assert.equal(migrate.readinessProbe, undefined);
        assert.equal(ofType(prod, "kubernetes:batch/v1:Job").filter((j) => j.name.startsWith("notes")).length, 0);
    });

    it("passes the policy pack (restricted pods, protected data, singleton rules)", async () => {
        const violations = await checkResources(prod.resources, policyConfig(stackPolicyConfigFile("prod")));
        assert.deepEqual(violations.filter((v) => v.level === "mandatory").map((v) => `${v.policy} ${v.name}`), []);
    });

    it("runs every process on the volume as one user, so the backup and restore can write what the app wrote", () => {
        const pod = (one(prod, "kubernetes:apps/v1:Deployment", "notes-deployment").inputs as Json).spec.template.spec;
        assert.equal(pod.securityContext.runAsUser, VOLUME_USER);
        assert.equal(pod.securityContext.runAsGroup, VOLUME_FS_GROUP);
        for (const cron of ["notes-volume-backup", "notes-volume-restore"]) {
            const job = (one(prod, "kubernetes:batch/v1:CronJob", cron).inputs as Json).spec.jobTemplate.spec.template.spec;
            assert.deepEqual([job.securityContext.runAsUser, job.securityContext.runAsGroup, job.securityContext.fsGroup], [VOLUME_USER, VOLUME_FS_GROUP, VOLUME_FS_GROUP], cron);
        }
    });

    it("keeps files written under another user writable by the volume's user after a mount", (t) => {
        if (process.getuid?.() !== 0) {
            if (process.env.CI === "true") throw new Error("needs root to own files as other users: required under CI");
            return t.skip("needs root to own files as other users");
        }
        const sc = (one(prod, "kubernetes:apps/v1:Deployment", "notes-deployment").inputs as Json).spec.template.spec.securityContext;
        const volume = fs.mkdtempSync(path.join(os.tmpdir(), "volume-fsgroup-"));
        try {
            // A volume mounted before: its root already the group's. The image's own user (65532) wrote a file with umask 022.
            fs.chownSync(volume, 0, sc.fsGroup);
            fs.chmodSync(volume, 0o2775);
            const file = path.join(volume, "notes.db");
            fs.writeFileSync(file, "data", { mode: 0o644 });
            fs.chownSync(file, 65532, sc.fsGroup);
            kubeletFsGroupWalk(volume, sc.fsGroup, sc.fsGroupChangePolicy);
            const append = spawnSync("sh", ["-c", `echo more >> '${file}'`], { uid: sc.runAsUser, gid: sc.runAsGroup });
            assert.equal(append.status, 0, `the volume's user cannot write ${file}: ${append.stderr}`);
        } finally {
            fs.rmSync(volume, { recursive: true, force: true });
        }
    });

    it("snapshots the volume on the app's node to the backup bucket, then uploads, then prunes", () => {
        const cron = (one(prod, "kubernetes:batch/v1:CronJob", "notes-volume-backup").inputs as Json).spec;
        assert.equal(cron.schedule, "0 * * * *");
        assert.equal(cron.suspend, false);
        assert.equal(cron.concurrencyPolicy, "Forbid");
        const pod = cron.jobTemplate.spec.template.spec;
        // Init containers run one after the other; prune only after the upload succeeded.
        assert.deepEqual(pod.initContainers.map((c: Json) => c.name), ["snapshot", "upload"]);
        assert.deepEqual(pod.containers.map((c: Json) => c.name), ["prune"]);
        // The node of the app's pods: the Deployment's own selector.
        const appPods = (one(prod, "kubernetes:apps/v1:Deployment", "notes-deployment").inputs as Json).spec.selector.matchLabels;
        assert.deepEqual(pod.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution,
            [{ labelSelector: { matchLabels: appPods }, topologyKey: "kubernetes.io/hostname" }]);
        assert.ok(pod.volumes.some((v: Json) => v.persistentVolumeClaim?.claimName === "notes-data"));
        const bucket = one(prod, "kubernetes:core/v1:Secret", "notes-volume-backup-s3");
        assert.ok(secretInput((bucket.inputs as Json).stringData), "the bucket's keys stay a Pulumi secret");
        const [upload, prune] = [pod.initContainers[1], pod.containers[0]];
        assert.match(upload.args[2], /^offsite:[^/]+\/volumes\/notes$/);
        assert.equal(prune.args[1], upload.args[2]);
        assert.deepEqual(prune.args.slice(2), ["--min-age", "7d", "--include", "*.tar.gz"]);
    });

    it("keeps a restore that never runs on its own nor beside the app", () => {
        const cron = (one(prod, "kubernetes:batch/v1:CronJob", "notes-volume-restore").inputs as Json).spec;
        assert.equal(cron.suspend, true);
        const pod = cron.jobTemplate.spec.template.spec;
        assert.deepEqual(pod.initContainers.map((c: Json) => c.name), ["download"]);
        assert.deepEqual(pod.containers.map((c: Json) => c.name), ["restore"]);
        const appPods = (one(prod, "kubernetes:apps/v1:Deployment", "notes-deployment").inputs as Json).spec.selector.matchLabels;
        assert.deepEqual(pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution,
            [{ labelSelector: { matchLabels: appPods }, topologyKey: "kubernetes.io/hostname" }]);
        assert.equal(pod.affinity.podAffinity, undefined);
    });

    it("renders backup objects the Kubernetes schema accepts", async () => {
        const files = [...prod.files].filter(([file]) => /^k8s\/.*-notes-notes-volume-(backup|restore|scripts)\.yaml$/.test(file) || file.endsWith("secret-notes-volume-backup-s3.yaml"));
        assert.equal(files.length, 4);
        for (const [file, text] of files) {
            for (const doc of parseAllDocuments(text)) {
                const result = await validateKubernetesObject(doc.toJS());
                assert.ok(result.known, file);
                assert.deepEqual(result.errors, [], file);
            }
        }
    });

    it("takes the schedule and retention from volume.backup", async () => {
        const r = await render("prod", withNotes({ ...NOTES, volume: { ...NOTES.volume, backup: { schedule: "*/15 * * * *", keepDays: 30 } } }));
        const cron = (one(r, "kubernetes:batch/v1:CronJob", "notes-volume-backup").inputs as Json).spec;
        assert.equal(cron.schedule, "*/15 * * * *");
        assert.deepEqual(cron.jobTemplate.spec.template.spec.containers[0].args.slice(2, 4), ["--min-age", "30d"]);
    });

    it("without a backup bucket: no backup Job, and the policy pack says the claim is not copied off-site", async () => {
        const local = await render("local", withNotes(NOTES));
        assert.equal(ofType(local, "kubernetes:batch/v1:CronJob").filter((c) => c.name.startsWith("notes")).length, 0);
        const offSite = (await checkResources(local.resources, policyConfig(stackPolicyConfigFile("local")))).filter((v) => v.policy === "off-site-backups");
        assert.deepEqual(offSite.map((v) => v.name), ["notes-deployment"]);
        const withBucket = (await checkResources(prod.resources, policyConfig(stackPolicyConfigFile("prod")))).filter((v) => v.policy === "off-site-backups");
        assert.deepEqual(withBucket, []);
    });

    it("refuses what a single-writer volume cannot do, naming the key", async () => {
        assert.deepEqual(await problemKeys("prod", withNotes({ ...NOTES, replicas: 3 })), ["platform:apps.notes.replicas"]);
        assert.deepEqual(await problemKeys("prod", withNotes({ ...NOTES, autoscaling: { minReplicas: 1, maxReplicas: 3 } })), ["platform:apps.notes.autoscaling"]);
        assert.deepEqual(await problemKeys("prod", withNotes({ ...NOTES, volume: { path: "/tmp/db", size: "10Gi" } })), ["platform:apps.notes.volume.path"]);
        assert.deepEqual(await problemKeys("prod", withNotes({ ...NOTES, volume: { path: "/data", size: "10GB" } })), ["platform:apps.notes.volume.size"]);
        assert.deepEqual(await problemKeys("prod", withNotes({ ...NOTES, volume: { path: "/data" } })), ["platform:apps.notes.volume.size"]);
        // One pod is what it runs; saying so is fine.
        assert.deepEqual(await problemKeys("prod", withNotes({ ...NOTES, replicas: 1 })), []);
    });

    it("grows in place and refuses to shrink or change class on a deployed stack", async () => {
        const live = earlierState({ resources: prod.resources, outputs: prod.outputs });
        const bigger = await render("prod", withNotes({ ...NOTES, volume: { ...NOTES.volume, size: "20Gi" } }), [], live);
        const plan = planRenders(prod.resources, bigger.resources);
        const claim = plan.entries.find((e) => e.name === "notes-data");
        assert.equal(claim?.action, "update");
        assert.deepEqual(claim?.paths, ["spec.resources.requests.storage"]);
        assert.equal(plan.destructive.length, 0);
        assert.deepEqual(await problemKeys("prod", withNotes({ ...NOTES, volume: { ...NOTES.volume, size: "5Gi" } }), live), ["platform:apps.notes.volume.size"]);
        assert.deepEqual(await problemKeys("prod", withNotes({ ...NOTES, volume: { ...NOTES.volume, storageClass: "hcloud-volumes" } }), live), ["platform:apps.notes.volume.storageClass"]);
    });
});
