// The Pod Security Admission port in support/pod-security.ts, tested against
// upstream behaviour. Cases follow kubernetes/kubernetes v1.34.0
// staging/src/k8s.io/pod-security-admission: the minimal valid pods and
// pass/fail generators of test/fixtures.go and test/fixtures_<check>.go, and
// the expected reasons/details of policy/check_<check>_test.go.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import {
  checkPodSecurity, ContainerLike, PodMetaLike, PodSpecLike, podTemplatesOf, SecurityContextLike,
} from "../policies/rules/pod-security";

interface TestPod {
  meta?: PodMetaLike;
  spec: PodSpecLike & { containers: ContainerLike[]; initContainers: ContainerLike[] };
}

// fixtures.go: the minimal valid baseline pod (valid for all versions).
function baselinePod(): TestPod {
  return {
    spec: {
      initContainers: [{ name: "initcontainer1", image: "registry.k8s.io/pause" }],
      containers: [{ name: "container1", image: "registry.k8s.io/pause" }],
    },
  };
}

// fixtures.go: the minimal valid restricted pod for 1.25+ (OS neutral):
// runAsNonRoot=true and seccompProfile RuntimeDefault at pod level;
// allowPrivilegeEscalation=false and capabilities.drop=["ALL"] per container.
function restrictedPod(): TestPod {
  const p = baselinePod();
  p.spec.securityContext = { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } };
  for (const c of [...p.spec.initContainers, ...p.spec.containers]) {
    c.securityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } };
  }
  return p;
}

// fixtures.go tweak(): a modified deep copy.
function tweak(pod: TestPod, f: (p: TestPod) => void): TestPod {
  const copy = structuredClone(pod);
  f(copy);
  return copy;
}

const sc = (c: ContainerLike): SecurityContextLike => (c.securityContext ??= {});
const podSc = (p: TestPod) => (p.spec.securityContext ??= {});
const ctr = (p: TestPod) => p.spec.containers[0];
const init = (p: TestPod) => p.spec.initContainers[0];

function ids(level: "baseline" | "restricted", pod: TestPod): string[] {
  return checkPodSecurity(level, pod.meta, pod.spec).map((v) => v.check);
}

function message(level: "baseline" | "restricted", pod: TestPod, check: string): string | undefined {
  return checkPodSecurity(level, pod.meta, pod.spec).find((v) => v.check === check)?.message;
}

function assertOnly(level: "baseline" | "restricted", pod: TestPod, expected: string[], label = ""): void {
  assert.deepEqual(ids(level, pod), expected, label);
}

test("minimal valid restricted pod passes restricted and baseline", () => {
  assertOnly("restricted", restrictedPod(), []);
  assertOnly("baseline", restrictedPod(), []);
  const linux = tweak(restrictedPod(), (p) => { p.spec.os = { name: "linux" }; });
  assertOnly("restricted", linux, []);
});

test("a fuller compliant restricted pod passes", () => {
  const pod = tweak(restrictedPod(), (p) => {
    podSc(p).runAsUser = 1000;
    podSc(p).runAsGroup = 1000;
    podSc(p).fsGroup = 1000;
    podSc(p).sysctls = [{ name: "net.ipv4.tcp_keepalive_time", value: "60" }, { name: "net.ipv4.tcp_rmem", value: "4096 87380 6291456" }];
    podSc(p).seLinuxOptions = { type: "container_t", level: "s0:c123,c456" };
    podSc(p).appArmorProfile = { type: "RuntimeDefault" };
    const c = ctr(p);
    c.ports = [{ containerPort: 8080, protocol: "TCP" }, { containerPort: 9090, hostPort: 0 }];
    c.readinessProbe = { httpGet: { path: "/health", port: 8080 }, periodSeconds: 5 };
    c.livenessProbe = { tcpSocket: { port: 8080 } };
    c.lifecycle = { preStop: { exec: { command: ["sleep", "5"] } } };
    sc(c).readOnlyRootFilesystem = true;
    sc(c).runAsUser = 1000;
    sc(c).privileged = false;
    sc(c).procMount = "Default";
    sc(c).capabilities = { drop: ["ALL"], add: ["NET_BIND_SERVICE"] };
    sc(c).seccompProfile = { type: "Localhost", localhostProfile: "profiles/app.json" };
    p.spec.volumes = [
      { name: "tmp", emptyDir: {} },
      { name: "cfg", configMap: { name: "app" } },
      { name: "sec", secret: { secretName: "app" } },
      { name: "token", projected: { sources: [] } },
      { name: "info", downwardAPI: { items: [] } },
      { name: "data", persistentVolumeClaim: { claimName: "data" } },
      { name: "scratch", ephemeral: { volumeClaimTemplate: {} } },
      { name: "store", csi: { driver: "example.csi" } },
      { name: "model", image: { reference: "registry.example/model:1" } },
    ];
    p.spec.hostNetwork = false;
    p.spec.hostPID = false;
    p.spec.hostIPC = false;
    p.meta = { annotations: { "container.apparmor.security.beta.kubernetes.io/container1": "localhost/profile", team: "api" } };
  });
  assertOnly("restricted", pod, []);
});

test("baseline passes a pod that restricted rejects", () => {
  const pod = baselinePod();
  assertOnly("baseline", pod, []);
  // Restricted checks only, in upstream order (sorted IDs).
  assertOnly("restricted", pod, ["allowPrivilegeEscalation", "capabilities_restricted", "runAsNonRoot", "seccompProfile_restricted"]);
  assert.deepEqual(checkPodSecurity("restricted", undefined, pod.spec), [
    {
      check: "allowPrivilegeEscalation",
      message: 'allowPrivilegeEscalation != false (containers "initcontainer1", "container1" must set securityContext.allowPrivilegeEscalation=false)',
    },
    {
      check: "capabilities_restricted",
      message: 'unrestricted capabilities (containers "initcontainer1", "container1" must set securityContext.capabilities.drop=["ALL"])',
    },
    {
      check: "runAsNonRoot",
      message: 'runAsNonRoot != true (pod or containers "initcontainer1", "container1" must set securityContext.runAsNonRoot=true)',
    },
    {
      check: "seccompProfile_restricted",
      message: 'seccompProfile (pod or containers "initcontainer1", "container1" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    },
  ]);
});

test("runAsNonRoot (fixtures_runAsNonRoot.go, check_runAsNonRoot_test.go)", () => {
  // pass: pod-level true covers containers that leave it unset
  assertOnly("restricted", tweak(restrictedPod(), (p) => { podSc(p).runAsNonRoot = true; }), []);
  // pass: every container sets it, pod-level unset
  assertOnly("restricted", tweak(restrictedPod(), (p) => {
    delete podSc(p).runAsNonRoot;
    sc(ctr(p)).runAsNonRoot = true;
    sc(init(p)).runAsNonRoot = true;
  }), []);
  // fail: unset everywhere
  const unset = tweak(restrictedPod(), (p) => { delete podSc(p).runAsNonRoot; });
  assertOnly("restricted", unset, ["runAsNonRoot"]);
  assert.equal(message("restricted", unset, "runAsNonRoot"),
    'runAsNonRoot != true (pod or containers "initcontainer1", "container1" must set securityContext.runAsNonRoot=true)');
  // fail: only one container sets it
  const partial = tweak(unset, (p) => { sc(ctr(p)).runAsNonRoot = true; });
  assert.equal(message("restricted", partial, "runAsNonRoot"),
    'runAsNonRoot != true (pod or container "initcontainer1" must set securityContext.runAsNonRoot=true)');
  // fail: pod false
  const podFalse = tweak(restrictedPod(), (p) => { podSc(p).runAsNonRoot = false; });
  assertOnly("restricted", podFalse, ["runAsNonRoot"]);
  assert.equal(message("restricted", podFalse, "runAsNonRoot"), "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)");
  // fail: container false overrides pod-level true
  const ctrFalse = tweak(restrictedPod(), (p) => { sc(ctr(p)).runAsNonRoot = false; });
  assertOnly("restricted", ctrFalse, ["runAsNonRoot"]);
  assert.equal(message("restricted", ctrFalse, "runAsNonRoot"),
    'runAsNonRoot != true (container "container1" must not set securityContext.runAsNonRoot=false)');
  // fail: init container false
  assertOnly("restricted", tweak(restrictedPod(), (p) => { sc(init(p)).runAsNonRoot = false; }), ["runAsNonRoot"]);
  // null is "unset", as in Go
  assertOnly("restricted", tweak(restrictedPod(), (p) => { podSc(p).runAsNonRoot = null; }), ["runAsNonRoot"]);
  // check_runAsNonRoot_test.go "containers runAsNonRoot=false"
  const many: PodSpecLike = {
    securityContext: { runAsNonRoot: true },
    containers: [
      { name: "a", securityContext: null }, { name: "b", securityContext: {} },
      { name: "c", securityContext: { runAsNonRoot: false } }, { name: "d", securityContext: { runAsNonRoot: false } },
      { name: "e", securityContext: { runAsNonRoot: true } },
    ],
  };
  assert.equal(checkPodSecurity("restricted", undefined, many).find((v) => v.check === "runAsNonRoot")?.message,
    'runAsNonRoot != true (containers "c", "d" must not set securityContext.runAsNonRoot=false)');
  // pod false and container false
  const both: PodSpecLike = { securityContext: { runAsNonRoot: false }, containers: [{ name: "a", securityContext: { runAsNonRoot: false } }] };
  assert.equal(checkPodSecurity("restricted", undefined, both).find((v) => v.check === "runAsNonRoot")?.message,
    'runAsNonRoot != true (pod and container "a" must not set securityContext.runAsNonRoot=false)');
  // runAsNonRoot is restricted-only
  assertOnly("baseline", podFalse, []);
});

test("runAsUser (fixtures_runAsUser.go)", () => {
  assertOnly("restricted", tweak(restrictedPod(), (p) => {
    podSc(p).runAsUser = 1000;
    sc(ctr(p)).runAsUser = 1000;
    sc(init(p)).runAsUser = 1000;
  }), []);
  const podRoot = tweak(restrictedPod(), (p) => { podSc(p).runAsUser = 0; });
  assertOnly("restricted", podRoot, ["runAsUser"]);
  assert.equal(message("restricted", podRoot, "runAsUser"), "runAsUser=0 (pod must not set runAsUser=0)");
  const ctrRoot = tweak(restrictedPod(), (p) => { sc(ctr(p)).runAsUser = 0; });
  assertOnly("restricted", ctrRoot, ["runAsUser"]);
  assert.equal(message("restricted", ctrRoot, "runAsUser"), 'runAsUser=0 (container "container1" must not set runAsUser=0)');
  assertOnly("restricted", tweak(restrictedPod(), (p) => { sc(init(p)).runAsUser = 0; }), ["runAsUser"]);
  // runAsNonRoot=true does not excuse an explicit runAsUser=0
  assert.ok(ids("restricted", podRoot).includes("runAsUser"));
  assertOnly("baseline", podRoot, []);
});

test("user-namespace relaxation is off by default, as with the v1.34 alpha gate", () => {
  const pod = tweak(restrictedPod(), (p) => {
    p.spec.hostUsers = false;
    podSc(p).runAsUser = 0;
    podSc(p).runAsNonRoot = false;
    sc(ctr(p)).procMount = "Unmasked";
  });
  assertOnly("restricted", pod, ["procMount", "runAsNonRoot", "runAsUser"]);
  assert.deepEqual(checkPodSecurity("restricted", pod.meta, pod.spec, { relaxPolicyForUserNamespacePods: true }), []);
  // hostUsers true (or unset) is never relaxed
  const hostUsers = tweak(pod, (p) => { p.spec.hostUsers = true; });
  assert.deepEqual(checkPodSecurity("restricted", hostUsers.meta, hostUsers.spec, { relaxPolicyForUserNamespacePods: true }).map((v) => v.check),
    ["procMount", "runAsNonRoot", "runAsUser"]);
});

test("allowPrivilegeEscalation (fixtures_allowPrivilegeEscalation.go)", () => {
  for (const [label, f] of [
    ["container true", (p: TestPod) => { sc(ctr(p)).allowPrivilegeEscalation = true; }],
    ["init container true", (p: TestPod) => { sc(init(p)).allowPrivilegeEscalation = true; }],
    ["container unset", (p: TestPod) => { delete sc(ctr(p)).allowPrivilegeEscalation; }],
    ["container securityContext unset", (p: TestPod) => { delete ctr(p).securityContext; }],
  ] as const) {
    const pod = tweak(restrictedPod(), f);
    assert.ok(ids("restricted", pod).includes("allowPrivilegeEscalation"), label);
    assertOnly("baseline", pod, [], label);
  }
  const initTrue = tweak(restrictedPod(), (p) => { sc(init(p)).allowPrivilegeEscalation = true; });
  assertOnly("restricted", initTrue, ["allowPrivilegeEscalation"]);
  assert.equal(message("restricted", initTrue, "allowPrivilegeEscalation"),
    'allowPrivilegeEscalation != false (container "initcontainer1" must set securityContext.allowPrivilegeEscalation=false)');
});

test("capabilities_restricted (fixtures_capabilities_restricted.go, check_capabilities_restricted_test.go)", () => {
  // pass: drop ALL, add NET_BIND_SERVICE
  assertOnly("restricted", tweak(restrictedPod(), (p) => {
    for (const c of [ctr(p), init(p)]) sc(c).capabilities = { drop: ["ALL"], add: ["NET_BIND_SERVICE"] };
  }), []);
  // fail: drop empty (container, then init container)
  const noDrop = tweak(restrictedPod(), (p) => { sc(ctr(p)).capabilities = { drop: [] }; });
  assertOnly("restricted", noDrop, ["capabilities_restricted"]);
  assert.equal(message("restricted", noDrop, "capabilities_restricted"),
    'unrestricted capabilities (container "container1" must set securityContext.capabilities.drop=["ALL"])');
  assertOnly("restricted", tweak(restrictedPod(), (p) => { sc(init(p)).capabilities = { drop: [] }; }), ["capabilities_restricted"]);
  // fail: dropping every capability by name is not dropping "ALL"
  assertOnly("restricted", tweak(restrictedPod(), (p) => {
    sc(ctr(p)).capabilities = { drop: ["SYS_ADMIN", "NET_RAW", "CHOWN", "SETUID", "SETGID", "KILL", "MKNOD"] };
  }), ["capabilities_restricted"]);
  // fail: lower-case "all" is not "ALL"
  assertOnly("restricted", tweak(restrictedPod(), (p) => { sc(ctr(p)).capabilities = { drop: ["all"] }; }), ["capabilities_restricted"]);
  // fail: no capabilities object at all
  assertOnly("restricted", tweak(restrictedPod(), (p) => { delete sc(ctr(p)).capabilities; }), ["capabilities_restricted"]);
  // fail: adding a baseline default other than NET_BIND_SERVICE; only the
  // restricted check reports it (it overrides capabilities_baseline)
  const addChown = tweak(restrictedPod(), (p) => { sc(ctr(p)).capabilities = { drop: ["ALL"], add: ["NET_BIND_SERVICE", "CHOWN"] }; });
  assertOnly("restricted", addChown, ["capabilities_restricted"]);
  assert.equal(message("restricted", addChown, "capabilities_restricted"),
    'unrestricted capabilities (container "container1" must not include "CHOWN" in securityContext.capabilities.add)');
  assertOnly("baseline", addChown, []);
  // fail: a non-default capability; restricted still reports only capabilities_restricted
  const addNetRaw = tweak(restrictedPod(), (p) => { sc(init(p)).capabilities = { drop: ["ALL"], add: ["NET_RAW"] }; });
  assertOnly("restricted", addNetRaw, ["capabilities_restricted"]);
  assertOnly("baseline", addNetRaw, ["capabilities_baseline"]);
  // check_capabilities_restricted_test.go "multiple containers"
  const multi: PodSpecLike = {
    containers: [
      { name: "a", securityContext: { capabilities: { add: ["FOO", "BAR"] } } },
      { name: "b", securityContext: { capabilities: { add: ["BAR", "BAZ"] } } },
      { name: "c", securityContext: { capabilities: { add: ["NET_BIND_SERVICE", "CHOWN"], drop: ["ALL", "FOO"] } } },
    ],
  };
  assert.equal(checkPodSecurity("restricted", undefined, multi).find((v) => v.check === "capabilities_restricted")?.message,
    'unrestricted capabilities (containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; ' +
    'containers "a", "b", "c" must not include "BAR", "BAZ", "CHOWN", "FOO" in securityContext.capabilities.add)');
});

test("capabilities_baseline (fixtures_capabilities_baseline.go)", () => {
  const defaults = ["AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"];
  assertOnly("baseline", tweak(baselinePod(), (p) => {
    sc(ctr(p)).capabilities = { add: defaults };
    sc(init(p)).capabilities = { add: defaults };
  }), []);
  for (const cap of ["NET_RAW", "chown", "CAP_CHOWN", "SYS_ADMIN"]) {
    const pod = tweak(baselinePod(), (p) => { sc(ctr(p)).capabilities = { add: [cap] }; });
    assertOnly("baseline", pod, ["capabilities_baseline"], cap);
    assert.equal(message("baseline", pod, "capabilities_baseline"),
      `non-default capabilities (container "container1" must not include "${cap}" in securityContext.capabilities.add)`);
  }
  assertOnly("baseline", tweak(baselinePod(), (p) => { sc(init(p)).capabilities = { add: ["NET_RAW"] }; }), ["capabilities_baseline"]);
});

test("seccompProfile_restricted (fixtures_seccompProfile_restricted.go, check_seccompProfile_restricted_test.go)", () => {
  // pass: pod-level RuntimeDefault or Localhost satisfies containers
  assertOnly("restricted", restrictedPod(), []);
  assertOnly("restricted", tweak(restrictedPod(), (p) => { podSc(p).seccompProfile = { type: "Localhost", localhostProfile: "testing" }; }), []);
  // pass: every container sets a valid profile, pod-level unset
  assertOnly("restricted", tweak(restrictedPod(), (p) => {
    delete podSc(p).seccompProfile;
    sc(ctr(p)).seccompProfile = { type: "RuntimeDefault" };
    sc(init(p)).seccompProfile = { type: "Localhost", localhostProfile: "testing" };
  }), []);
  // fail: missing
  const missing = tweak(restrictedPod(), (p) => { delete podSc(p).seccompProfile; });
  assertOnly("restricted", missing, ["seccompProfile_restricted"]);
  assert.equal(message("restricted", missing, "seccompProfile_restricted"),
    'seccompProfile (pod or containers "initcontainer1", "container1" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")');
  // fail: pod Unconfined; only the restricted check reports it (it overrides seccompProfile_baseline)
  const unconfined = tweak(restrictedPod(), (p) => { podSc(p).seccompProfile = { type: "Unconfined" }; });
  assertOnly("restricted", unconfined, ["seccompProfile_restricted"]);
  assert.equal(message("restricted", unconfined, "seccompProfile_restricted"),
    'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")');
  // fail: only the app container sets it; the init container is uncovered
  const onlyCtr = tweak(missing, (p) => { sc(ctr(p)).seccompProfile = { type: "RuntimeDefault" }; });
  assertOnly("restricted", onlyCtr, ["seccompProfile_restricted"]);
  assert.equal(message("restricted", onlyCtr, "seccompProfile_restricted"),
    'seccompProfile (pod or container "initcontainer1" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")');
  assertOnly("restricted", tweak(missing, (p) => { sc(init(p)).seccompProfile = { type: "RuntimeDefault" }; }), ["seccompProfile_restricted"]);
  // fail: container RuntimeDefault, init container Unconfined
  assertOnly("restricted", tweak(missing, (p) => {
    sc(ctr(p)).seccompProfile = { type: "RuntimeDefault" };
    sc(init(p)).seccompProfile = { type: "Unconfined" };
  }), ["seccompProfile_restricted"]);
  // fail: container Unconfined overrides pod-level RuntimeDefault
  const ctrUnconfined = tweak(restrictedPod(), (p) => { sc(ctr(p)).seccompProfile = { type: "Unconfined" }; });
  assert.equal(message("restricted", ctrUnconfined, "seccompProfile_restricted"),
    'seccompProfile (container "container1" must not set securityContext.seccompProfile.type to "Unconfined")');
  // an empty seccompProfile object is set, with type "" (invalid)
  assert.equal(message("restricted", tweak(restrictedPod(), (p) => { podSc(p).seccompProfile = {}; }), "seccompProfile_restricted"),
    'seccompProfile (pod must not set securityContext.seccompProfile.type to "")');
});

test("seccompProfile_baseline (fixtures_seccompProfile_baseline.go, version 1.19+)", () => {
  // baseline does not require a profile
  assertOnly("baseline", baselinePod(), []);
  assertOnly("baseline", tweak(baselinePod(), (p) => {
    podSc(p).seccompProfile = { type: "RuntimeDefault" };
    sc(ctr(p)).seccompProfile = { type: "RuntimeDefault" };
  }), []);
  const podUnconfined = tweak(baselinePod(), (p) => { podSc(p).seccompProfile = { type: "Unconfined" }; });
  assertOnly("baseline", podUnconfined, ["seccompProfile_baseline"]);
  assert.equal(message("baseline", podUnconfined, "seccompProfile_baseline"),
    'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")');
  assertOnly("baseline", tweak(baselinePod(), (p) => { sc(ctr(p)).seccompProfile = { type: "Unconfined" }; }), ["seccompProfile_baseline"]);
  assertOnly("baseline", tweak(baselinePod(), (p) => { sc(init(p)).seccompProfile = { type: "Unconfined" }; }), ["seccompProfile_baseline"]);
  // the pre-1.19 alpha annotations are not checked at version latest
  const annotated = tweak(baselinePod(), (p) => {
    p.meta = { annotations: { "seccomp.security.alpha.kubernetes.io/pod": "unconfined", "container.seccomp.security.alpha.kubernetes.io/container1": "unconfined" } };
  });
  assertOnly("baseline", annotated, []);
});

test("Windows pods are exempt from the Linux-only restricted checks (1.25+)", () => {
  // fixtures.go: the minimal valid Windows restricted pod for 1.25+ is restricted_1_0 + os windows
  const windows: TestPod = tweak(baselinePod(), (p) => {
    p.spec.securityContext = { runAsNonRoot: true };
    p.spec.os = { name: "windows" };
  });
  assertOnly("restricted", windows, []);
  // still subject to baseline and the other restricted checks
  assertOnly("restricted", tweak(windows, (p) => { podSc(p).runAsNonRoot = false; }), ["runAsNonRoot"]);
  const hostProcess = tweak(windows, (p) => { podSc(p).windowsOptions = { hostProcess: true }; });
  assertOnly("restricted", hostProcess, ["windowsHostProcess"]);
  assert.equal(message("restricted", hostProcess, "windowsHostProcess"),
    "hostProcess (pod must not set securityContext.windowsOptions.hostProcess=true)");
  assertOnly("baseline", tweak(baselinePod(), (p) => { sc(init(p)).windowsOptions = { hostProcess: true }; }), ["windowsHostProcess"]);
  // linux (or unset) OS gets no exemption
  assertOnly("restricted", tweak(windows, (p) => { p.spec.os = { name: "linux" }; }),
    ["allowPrivilegeEscalation", "capabilities_restricted", "seccompProfile_restricted"]);
});

test("hostPath volumes: hostPathVolumes at baseline, restrictedVolumes at restricted", () => {
  const pod = tweak(restrictedPod(), (p) => { p.spec.volumes = [{ name: "host", hostPath: { path: "/var/run" } }, { name: "tmp", emptyDir: {} }]; });
  assertOnly("baseline", pod, ["hostPathVolumes"]);
  assert.equal(message("baseline", pod, "hostPathVolumes"), 'hostPath volumes (volume "host")');
  // restrictedVolumes overrides hostPathVolumes
  assertOnly("restricted", pod, ["restrictedVolumes"]);
  assert.equal(message("restricted", pod, "restrictedVolumes"), 'restricted volume types (volume "host" uses restricted volume type "hostPath")');
});

test("restrictedVolumes (check_restrictedVolumes_test.go)", () => {
  const restricted = [
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs", "rbd", "flexVolume", "cinder", "cephfs",
    "flocker", "fc", "azureFile", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos",
  ] as const;
  const allowed = ["emptyDir", "secret", "persistentVolumeClaim", "downwardAPI", "configMap", "projected", "csi", "ephemeral", "image"] as const;
  const spec: PodSpecLike = {
    volumes: [
      ...allowed.map((k, i) => ({ name: `a${i + 1}`, [k]: {} })),
      ...restricted.map((k, i) => ({ name: `b${i + 1}`, [k]: {} })),
      { name: "c1" }, // no source: "unknown"
    ],
  };
  const found = checkPodSecurity("restricted", undefined, spec).find((v) => v.check === "restrictedVolumes");
  assert.equal(found?.message,
    "restricted volume types (volumes " +
    '"b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "b10", "b11", "b12", "b13", "b14", "b15", "b16", "b17", "b18", "b19", "b20", "b21", "c1"' +
    " use restricted volume types " +
    '"awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "fc", "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", ' +
    '"hostPath", "iscsi", "nfs", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos", "unknown", "vsphereVolume")');
  // baseline only forbids hostPath
  assert.deepEqual(checkPodSecurity("baseline", undefined, spec).map((v) => v.check), ["hostPathVolumes"]);
  // an nfs volume passes baseline, fails restricted
  const nfs = tweak(restrictedPod(), (p) => { p.spec.volumes = [{ name: "share", nfs: { server: "nfs", path: "/" } }]; });
  assertOnly("baseline", nfs, []);
  assertOnly("restricted", nfs, ["restrictedVolumes"]);
});

test("hostPorts (check_hostPorts_test.go)", () => {
  const pod = tweak(restrictedPod(), (p) => { ctr(p).ports = [{ containerPort: 80, hostPort: 8080 }]; });
  assertOnly("restricted", pod, ["hostPorts"]);
  assertOnly("baseline", pod, ["hostPorts"]);
  assert.equal(message("baseline", pod, "hostPorts"), 'hostPort (container "container1" uses hostPort 8080)');
  assertOnly("baseline", tweak(baselinePod(), (p) => { init(p).ports = [{ containerPort: 53, hostPort: 53 }]; }), ["hostPorts"]);
  assertOnly("baseline", tweak(baselinePod(), (p) => { ctr(p).ports = [{ containerPort: 80, hostPort: 0 }, { containerPort: 81 }]; }), []);
  const multi: PodSpecLike = {
    containers: [
      { name: "a", ports: [{ hostPort: 0 }] },
      { name: "b", ports: [{ hostPort: 0 }, { hostPort: 10 }, { hostPort: 20 }] },
      { name: "c", ports: [{ hostPort: 0 }, { hostPort: 10 }, { hostPort: 30 }] },
    ],
  };
  assert.deepEqual(checkPodSecurity("baseline", undefined, multi), [{ check: "hostPorts", message: 'hostPort (containers "b", "c" use hostPorts 10, 20, 30)' }]);
});

test("privileged (fixtures_privileged.go)", () => {
  const pod = tweak(restrictedPod(), (p) => { sc(ctr(p)).privileged = true; });
  assertOnly("restricted", pod, ["privileged"]);
  assertOnly("baseline", pod, ["privileged"]);
  assert.equal(message("baseline", pod, "privileged"), 'privileged (container "container1" must not set securityContext.privileged=true)');
  assertOnly("baseline", tweak(baselinePod(), (p) => { sc(init(p)).privileged = true; }), ["privileged"]);
  assertOnly("baseline", tweak(baselinePod(), (p) => { sc(ctr(p)).privileged = false; }), []);
});

test("hostNamespaces (fixtures_hostNamespaces.go)", () => {
  const net = tweak(restrictedPod(), (p) => { p.spec.hostNetwork = true; });
  assertOnly("restricted", net, ["hostNamespaces"]);
  assertOnly("baseline", net, ["hostNamespaces"]);
  assert.equal(message("baseline", net, "hostNamespaces"), "host namespaces (hostNetwork=true)");
  assertOnly("baseline", tweak(baselinePod(), (p) => { p.spec.hostPID = true; }), ["hostNamespaces"]);
  assertOnly("baseline", tweak(baselinePod(), (p) => { p.spec.hostIPC = true; }), ["hostNamespaces"]);
  const all = tweak(baselinePod(), (p) => { p.spec.hostNetwork = true; p.spec.hostPID = true; p.spec.hostIPC = true; });
  assert.equal(message("baseline", all, "hostNamespaces"), "host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)");
});

test("init and ephemeral containers are checked too", () => {
  const initBad = tweak(restrictedPod(), (p) => {
    const c = init(p);
    c.ports = [{ containerPort: 1, hostPort: 1 }];
    c.securityContext = { privileged: true, runAsUser: 0, runAsNonRoot: false, procMount: "Unmasked" };
  });
  assertOnly("restricted", initBad, [
    "hostPorts", "privileged", "procMount",
    "allowPrivilegeEscalation", "capabilities_restricted", "runAsNonRoot", "runAsUser",
  ]);
  for (const v of checkPodSecurity("restricted", initBad.meta, initBad.spec)) {
    assert.match(v.message, /"initcontainer1"/, v.check);
    assert.doesNotMatch(v.message, /"container1"/, v.check);
  }
  const ephemeral = tweak(restrictedPod(), (p) => {
    p.spec.ephemeralContainers = [{ name: "debugger", image: "busybox", targetContainerName: "container1" }];
  });
  assertOnly("restricted", ephemeral, ["allowPrivilegeEscalation", "capabilities_restricted"]);
  assert.equal(message("restricted", ephemeral, "allowPrivilegeEscalation"),
    'allowPrivilegeEscalation != false (container "debugger" must set securityContext.allowPrivilegeEscalation=false)');
});

test("procMount (fixtures_procMount.go)", () => {
  const pod = tweak(baselinePod(), (p) => { sc(ctr(p)).procMount = "Unmasked"; });
  assertOnly("baseline", pod, ["procMount"]);
  assert.equal(message("baseline", pod, "procMount"), 'procMount (container "container1" must not set securityContext.procMount to "Unmasked")');
  assertOnly("baseline", tweak(baselinePod(), (p) => { sc(ctr(p)).procMount = "Default"; }), []);
});

test("seLinuxOptions (check_seLinuxOptions_test.go, version 1.31+)", () => {
  for (const type of ["container_t", "container_init_t", "container_kvm_t", "container_engine_t", ""]) {
    assertOnly("baseline", tweak(baselinePod(), (p) => { podSc(p).seLinuxOptions = { type, level: "s0" }; }), [], type);
  }
  const spec: PodSpecLike = {
    securityContext: { seLinuxOptions: { type: "foo", user: "u", role: "r" } },
    containers: [
      { name: "a", securityContext: { seLinuxOptions: { type: "container_t" } } },
      { name: "e", securityContext: { seLinuxOptions: { type: "bar" } } },
      { name: "f", securityContext: { seLinuxOptions: { user: "u" } } },
      { name: "g", securityContext: { seLinuxOptions: { role: "r" } } },
    ],
  };
  assert.deepEqual(checkPodSecurity("baseline", undefined, spec), [{
    check: "seLinuxOptions",
    message: 'seLinuxOptions (pod and containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: types "bar", "foo"; user may not be set; role may not be set)',
  }]);
});

test("sysctls (check_sysctls_test.go, version 1.32+)", () => {
  const allowed = [
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
  ];
  assertOnly("baseline", tweak(baselinePod(), (p) => { podSc(p).sysctls = allowed.map((name) => ({ name, value: "1" })); }), []);
  const bad = tweak(restrictedPod(), (p) => { podSc(p).sysctls = [{ name: "a", value: "a" }, { name: "net.ipv4.tcp_rmem", value: "1" }, { name: "b", value: "b" }]; });
  assert.deepEqual(checkPodSecurity("restricted", bad.meta, bad.spec), [{ check: "sysctls", message: "forbidden sysctls (a, b)" }]);
  assertOnly("baseline", tweak(baselinePod(), (p) => { podSc(p).sysctls = [{ name: "kernel.msgmax", value: "1" }]; }), ["sysctls"]);
});

test("appArmorProfile (check_appArmorProfile_test.go)", () => {
  assertOnly("baseline", tweak(baselinePod(), (p) => {
    podSc(p).appArmorProfile = { type: "RuntimeDefault" };
    sc(ctr(p)).appArmorProfile = { type: "Localhost", localhostProfile: "x" };
  }), []);
  const unconfined = tweak(baselinePod(), (p) => { podSc(p).appArmorProfile = { type: "Unconfined" }; });
  assert.equal(message("baseline", unconfined, "appArmorProfile"), 'forbidden AppArmor profile (pod must not set AppArmor profile type to "Unconfined")');
  const initUnconfined = tweak(restrictedPod(), (p) => { sc(init(p)).appArmorProfile = { type: "Unconfined" }; });
  assertOnly("restricted", initUnconfined, ["appArmorProfile"]);
  assert.equal(message("restricted", initUnconfined, "appArmorProfile"),
    'forbidden AppArmor profile (container "initcontainer1" must not set AppArmor profile type to "Unconfined")');
  const annotations: Record<string, string> = {
    "container.apparmor.security.beta.kubernetes.io/": "bogus",
    "container.apparmor.security.beta.kubernetes.io/a": "",
    "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
    "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
    "container.apparmor.security.beta.kubernetes.io/d": "localhost/foo",
    "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
    "container.apparmor.security.beta.kubernetes.io/f": "unknown",
    env: "prod",
  };
  assert.deepEqual(checkPodSecurity("baseline", { annotations }, {}), [{
    check: "appArmorProfile",
    message: "forbidden AppArmor profiles (annotations must not set AppArmor profile type to " +
      '"container.apparmor.security.beta.kubernetes.io/="bogus"", ' +
      '"container.apparmor.security.beta.kubernetes.io/e="unconfined"", ' +
      '"container.apparmor.security.beta.kubernetes.io/f="unknown"")',
  }]);
});

test("hostProbesAndHostLifecycle (check_hostProbesAndhostLifecycle_test.go, version 1.34)", () => {
  const pod = tweak(restrictedPod(), (p) => {
    ctr(p).livenessProbe = { httpGet: { host: "127.0.0.1", port: 80 } };
    ctr(p).readinessProbe = { tcpSocket: { host: "localhost", port: 80 } };
    ctr(p).lifecycle = { preStop: { httpGet: { host: "::1", port: 80 } } };
  });
  assertOnly("restricted", pod, ["hostProbesAndHostLifecycle"]);
  assert.equal(message("baseline", pod, "hostProbesAndHostLifecycle"),
    'probe or lifecycle host (container "container1" uses probe or lifecycle hosts "127.0.0.1", "::1", "localhost")');
  const multi: PodSpecLike = {
    containers: [
      { name: "invalid2", startupProbe: { httpGet: { host: "b.com" } } },
      { name: "invalid1", lifecycle: { postStart: { tcpSocket: { host: "a.com" } } } },
      { name: "valid", livenessProbe: { httpGet: { host: "", path: "/" } } },
    ],
  };
  assert.deepEqual(checkPodSecurity("baseline", undefined, multi),
    [{ check: "hostProbesAndHostLifecycle", message: 'probe or lifecycle host (containers "invalid1", "invalid2" use probe or lifecycle hosts "a.com", "b.com")' }]);
});

test("violations are ordered baseline IDs then restricted IDs, each sorted", () => {
  const pod: TestPod = tweak(baselinePod(), (p) => {
    p.spec.hostNetwork = true;
    p.spec.volumes = [{ name: "h", hostPath: { path: "/" } }];
    sc(ctr(p)).privileged = true;
    podSc(p).runAsUser = 0;
  });
  assertOnly("baseline", pod, ["hostNamespaces", "hostPathVolumes", "privileged"]);
  assertOnly("restricted", pod, [
    "hostNamespaces", "privileged",
    "allowPrivilegeEscalation", "capabilities_restricted", "restrictedVolumes", "runAsNonRoot", "runAsUser", "seccompProfile_restricted",
  ]);
});

test("podTemplatesOf finds the pod spec of each workload kind", () => {
  const docs = parseAllDocuments(`
apiVersion: v1
kind: Pod
metadata: { name: p, annotations: { a: "1" } }
spec: { containers: [{ name: pod, image: x }] }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: d }
spec:
  template:
    metadata: { annotations: { container.apparmor.security.beta.kubernetes.io/deploy: unconfined } }
    spec: { containers: [{ name: deploy, image: x }] }
---
apiVersion: apps/v1
kind: StatefulSet
spec: { template: { spec: { containers: [{ name: sts, image: x }] } } }
---
apiVersion: apps/v1
kind: DaemonSet
spec: { template: { spec: { containers: [{ name: ds, image: x }] } } }
---
apiVersion: apps/v1
kind: ReplicaSet
spec: { template: { spec: { containers: [{ name: rs, image: x }] } } }
---
apiVersion: batch/v1
kind: Job
spec: { template: { spec: { restartPolicy: Never, containers: [{ name: job, image: x }] } } }
---
apiVersion: batch/v1
kind: CronJob
spec:
  schedule: "* * * * *"
  jobTemplate: { spec: { template: { spec: { containers: [{ name: cron, image: x }] } } } }
---
apiVersion: v1
kind: Service
spec: { ports: [{ port: 80 }] }
`).map((d) => d.toJS() as { kind: string; metadata?: unknown; spec?: unknown });
  const names = docs.map((d) => podTemplatesOf(d).map((t) => (t.spec.containers ?? []).map((c) => c.name).join(",")));
  assert.deepEqual(names, [["pod"], ["deploy"], ["sts"], ["ds"], ["rs"], ["job"], ["cron"], []]);
  assert.deepEqual(podTemplatesOf(docs[0]!)[0]?.meta, { annotations: { a: "1" } });
  const [deploy] = podTemplatesOf(docs[1]!);
  assert.ok(deploy);
  assert.deepEqual(checkPodSecurity("baseline", deploy.meta, deploy.spec).map((v) => v.check), ["appArmorProfile"]);
  assert.deepEqual(podTemplatesOf({ kind: "Deployment", spec: {} }), []);
  assert.deepEqual(podTemplatesOf({ kind: "Deployment" }), []);
});

test("YAML with nulls behaves like Go's decoding (null = unset)", () => {
  const [doc] = parseAllDocuments(`
kind: Pod
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile: { type: RuntimeDefault }
  containers:
    - name: app
      image: x
      ports: ~
      securityContext:
        allowPrivilegeEscalation: false
        privileged: null
        capabilities: { drop: [ALL], add: null }
  volumes:
    - name: tmp
      emptyDir: {}
`).map((d) => d.toJS() as { kind: string; spec?: unknown });
  const [pod] = podTemplatesOf(doc!);
  assert.ok(pod);
  assert.deepEqual(checkPodSecurity("restricted", pod.meta, pod.spec), []);
});
