// Pod Security Admission (PSA) checks for the "baseline" and "restricted"
// levels at policy version "latest", as of Kubernetes v1.34.
//
// A TypeScript port of the checks in kubernetes/kubernetes at tag v1.34.0,
// staging/src/k8s.io/pod-security-admission/policy/ (read from the published
// staging copy, kubernetes/pod-security-admission at tag v0.34.0, policy/).
// "latest" means the newest registered policy version, which at v1.34.0 is
// 1.34 (the highest MinimumVersion of any check; see registry.go), so each
// check below implements its newest VersionedCheck:
//
//   check ID                     level       newest version used for "latest"
//   appArmorProfile              baseline    1.0
//   capabilities_baseline        baseline    1.0   (overridden at restricted)
//   hostNamespaces               baseline    1.0
//   hostPathVolumes              baseline    1.0   (overridden at restricted)
//   hostPorts                    baseline    1.0
//   hostProbesAndHostLifecycle   baseline    1.34
//   privileged                   baseline    1.0
//   procMount                    baseline    1.0
//   seLinuxOptions               baseline    1.31
//   seccompProfile_baseline      baseline    1.19  (fields only; the 1.0 annotation check no longer applies; overridden at restricted)
//   sysctls                      baseline    1.32
//   windowsHostProcess           baseline    1.0
//   allowPrivilegeEscalation     restricted  1.25
//   capabilities_restricted      restricted  1.25  (overrides capabilities_baseline)
//   restrictedVolumes            restricted  1.0   (overrides hostPathVolumes)
//   runAsNonRoot                 restricted  1.0
//   runAsUser                    restricted  1.23
//   seccompProfile_restricted    restricted  1.25  (overrides seccompProfile_baseline)
//
// As upstream (registry.go), "restricted" runs every baseline check that no
// restricted check overrides, plus the restricted checks; results are ordered
// baseline IDs (sorted) then restricted IDs (sorted).
//
// Each violation's `message` is upstream's ForbiddenReason, followed by the
// ForbiddenDetail in parentheses when there is one (the format of
// AggregateCheckResult.ForbiddenDetail in checks.go), e.g.
//   hostPort (container "web" uses hostPort 8080)
//
// Input is a plain object as parsed from YAML/JSON. JSON null is treated like
// an absent field, as Go's decoder leaves a nil pointer for both; an empty
// object ({}) is "set", as upstream distinguishes nil from a zero struct.

// ---------------------------------------------------------------------------
// Structural types: the parts of core/v1 objects the checks read.
// ---------------------------------------------------------------------------

type Maybe<T> = T | null | undefined;

export interface SeccompProfileLike { type?: Maybe<string>; localhostProfile?: Maybe<string> }
export interface AppArmorProfileLike { type?: Maybe<string>; localhostProfile?: Maybe<string> }
export interface SELinuxOptionsLike { user?: Maybe<string>; role?: Maybe<string>; type?: Maybe<string>; level?: Maybe<string> }
export interface WindowsSecurityContextOptionsLike {
  hostProcess?: Maybe<boolean>;
  runAsUserName?: Maybe<string>;
  gmsaCredentialSpecName?: Maybe<string>;
  gmsaCredentialSpec?: Maybe<string>;
}
export interface CapabilitiesLike { add?: Maybe<string[]>; drop?: Maybe<string[]> }

export interface SecurityContextLike {
  allowPrivilegeEscalation?: Maybe<boolean>;
  privileged?: Maybe<boolean>;
  runAsNonRoot?: Maybe<boolean>;
  runAsUser?: Maybe<number>;
  runAsGroup?: Maybe<number>;
  readOnlyRootFilesystem?: Maybe<boolean>;
  capabilities?: Maybe<CapabilitiesLike>;
  seccompProfile?: Maybe<SeccompProfileLike>;
  appArmorProfile?: Maybe<AppArmorProfileLike>;
  seLinuxOptions?: Maybe<SELinuxOptionsLike>;
  procMount?: Maybe<string>;
  windowsOptions?: Maybe<WindowsSecurityContextOptionsLike>;
}

export interface SysctlLike { name?: Maybe<string>; value?: Maybe<string> }

export interface PodSecurityContextLike {
  runAsNonRoot?: Maybe<boolean>;
  runAsUser?: Maybe<number>;
  runAsGroup?: Maybe<number>;
  fsGroup?: Maybe<number>;
  fsGroupChangePolicy?: Maybe<string>;
  supplementalGroups?: Maybe<number[]>;
  supplementalGroupsPolicy?: Maybe<string>;
  seccompProfile?: Maybe<SeccompProfileLike>;
  appArmorProfile?: Maybe<AppArmorProfileLike>;
  seLinuxOptions?: Maybe<SELinuxOptionsLike>;
  seLinuxChangePolicy?: Maybe<string>;
  sysctls?: Maybe<SysctlLike[]>;
  windowsOptions?: Maybe<WindowsSecurityContextOptionsLike>;
}

export interface ContainerPortLike {
  name?: Maybe<string>;
  containerPort?: Maybe<number>;
  hostPort?: Maybe<number>;
  hostIP?: Maybe<string>;
  protocol?: Maybe<string>;
}

export interface HTTPGetActionLike { host?: Maybe<string>; path?: Maybe<string>; port?: Maybe<number | string>; scheme?: Maybe<string>; httpHeaders?: unknown }
export interface TCPSocketActionLike { host?: Maybe<string>; port?: Maybe<number | string> }

export interface ProbeLike {
  httpGet?: Maybe<HTTPGetActionLike>;
  tcpSocket?: Maybe<TCPSocketActionLike>;
  exec?: unknown;
  grpc?: unknown;
  initialDelaySeconds?: Maybe<number>;
  timeoutSeconds?: Maybe<number>;
  periodSeconds?: Maybe<number>;
  successThreshold?: Maybe<number>;
  failureThreshold?: Maybe<number>;
  terminationGracePeriodSeconds?: Maybe<number>;
}

export interface LifecycleHandlerLike {
  httpGet?: Maybe<HTTPGetActionLike>;
  tcpSocket?: Maybe<TCPSocketActionLike>;
  exec?: unknown;
  sleep?: unknown;
}

export interface ContainerLike {
  name?: Maybe<string>;
  image?: Maybe<string>;
  command?: Maybe<string[]>;
  args?: Maybe<string[]>;
  ports?: Maybe<ContainerPortLike[]>;
  securityContext?: Maybe<SecurityContextLike>;
  livenessProbe?: Maybe<ProbeLike>;
  readinessProbe?: Maybe<ProbeLike>;
  startupProbe?: Maybe<ProbeLike>;
  lifecycle?: Maybe<{ postStart?: Maybe<LifecycleHandlerLike>; preStop?: Maybe<LifecycleHandlerLike>; stopSignal?: Maybe<string> }>;
}

// Every inline volume source of core/v1 VolumeSource; only presence matters.
export interface VolumeLike {
  name?: Maybe<string>;
  hostPath?: unknown;
  emptyDir?: unknown;
  gcePersistentDisk?: unknown;
  awsElasticBlockStore?: unknown;
  gitRepo?: unknown;
  secret?: unknown;
  nfs?: unknown;
  iscsi?: unknown;
  glusterfs?: unknown;
  persistentVolumeClaim?: unknown;
  rbd?: unknown;
  flexVolume?: unknown;
  cinder?: unknown;
  cephfs?: unknown;
  flocker?: unknown;
  downwardAPI?: unknown;
  fc?: unknown;
  azureFile?: unknown;
  configMap?: unknown;
  vsphereVolume?: unknown;
  quobyte?: unknown;
  azureDisk?: unknown;
  photonPersistentDisk?: unknown;
  projected?: unknown;
  portworxVolume?: unknown;
  scaleIO?: unknown;
  storageos?: unknown;
  csi?: unknown;
  ephemeral?: unknown;
  image?: unknown;
}

export interface PodSpecLike {
  containers?: Maybe<ContainerLike[]>;
  initContainers?: Maybe<ContainerLike[]>;
  // EphemeralContainer embeds EphemeralContainerCommon, which has the same
  // fields as Container (plus targetContainerName).
  ephemeralContainers?: Maybe<(ContainerLike & { targetContainerName?: Maybe<string> })[]>;
  securityContext?: Maybe<PodSecurityContextLike>;
  volumes?: Maybe<VolumeLike[]>;
  hostNetwork?: Maybe<boolean>;
  hostPID?: Maybe<boolean>;
  hostIPC?: Maybe<boolean>;
  hostUsers?: Maybe<boolean>;
  os?: Maybe<{ name?: Maybe<string> }>;
}

export interface PodMetaLike { annotations?: Record<string, string> }

export interface PodSecurityViolation { check: string; message: string }

export type PodSecurityLevel = "baseline" | "restricted";

export interface CheckPodSecurityOptions {
  // Upstream's RelaxPolicyForUserNamespacePods (policy/helpers.go): a
  // process-wide switch the API server sets from the alpha feature gate
  // UserNamespacesPodSecurityStandards, off by default in v1.34. When on, pods
  // with hostUsers: false skip runAsNonRoot, runAsUser and procMount.
  relaxPolicyForUserNamespacePods?: boolean;
}

// ---------------------------------------------------------------------------
// Helpers (policy/helpers.go, policy/visitor.go)
// ---------------------------------------------------------------------------

interface CheckResult { reason: string; detail: string }
type CheckFn = (meta: PodMetaLike, spec: PodSpecLike, opts: CheckPodSecurityOptions) => CheckResult | undefined;

const list = <T>(value: Maybe<T[]>): T[] => (Array.isArray(value) ? value : []);
const isSet = (value: unknown): boolean => value !== undefined && value !== null;

// Go compares strings bytewise (UTF-8); sets.String.List() and sort.Strings use that order.
const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
const sortedUnique = (values: Iterable<string>): string[] => [...new Set(values)].sort(byteOrder);

// helpers.go joinQuote: wraps each item in double quotes, no escaping.
const joinQuote = (items: string[]): string => (items.length === 0 ? "" : `"${items.join(`", "`)}"`);
// helpers.go pluralize
const pluralize = (singular: string, plural: string, count: number): string => (count === 1 ? singular : plural);

// Go's %q (strconv.Quote), used for annotation values. Exact for printable text and
// ASCII/C1 control characters; other non-printable code points are left as is.
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    switch (ch) {
      case '"': out += '\\"'; break;
      case "\\": out += "\\\\"; break;
      case "\x07": out += "\\a"; break;
      case "\b": out += "\\b"; break;
      case "\f": out += "\\f"; break;
      case "\n": out += "\\n"; break;
      case "\r": out += "\\r"; break;
      case "\t": out += "\\t"; break;
      case "\v": out += "\\v"; break;
      default:
        if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, "0")}`;
        else if (cp >= 0x80 && cp < 0xa0) out += `\\u${cp.toString(16).padStart(4, "0")}`;
        else out += ch;
    }
  }
  return `${out}"`;
}

// visitor.go visitContainers: init containers, then containers, then ephemeral containers.
function visitContainers(spec: PodSpecLike, visit: (c: ContainerLike, name: string) => void): void {
  for (const c of list(spec.initContainers)) visit(c ?? {}, c?.name ?? "");
  for (const c of list(spec.containers)) visit(c ?? {}, c?.name ?? "");
  for (const c of list(spec.ephemeralContainers)) visit(c ?? {}, c?.name ?? "");
}

// helpers.go relaxPolicyForUserNamespacePod
const relaxPolicyForUserNamespacePod = (spec: PodSpecLike, opts: CheckPodSecurityOptions): boolean =>
  opts.relaxPolicyForUserNamespacePods === true && spec.hostUsers === false;

const isWindowsPod = (spec: PodSpecLike): boolean => spec.os?.name === "windows";

const containersPhrase = (names: string[]): string => `${pluralize("container", "containers", names.length)} ${joinQuote(names)}`;

// ---------------------------------------------------------------------------
// Baseline checks
// ---------------------------------------------------------------------------

// v1.34.0 policy/check_appArmorProfile.go (appArmorProfile_1_0)
const APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/";
const appArmorProfile: CheckFn = (meta, spec) => {
  const allowedType = (t: Maybe<string>): boolean => t === "RuntimeDefault" || t === "Localhost";
  const allowedAnnotation = (v: string): boolean => v.length === 0 || v === "runtime/default" || v.startsWith("localhost/");
  const badSetters: string[] = [];
  const badValues = new Set<string>();
  const podProfile = spec.securityContext?.appArmorProfile;
  if (isSet(podProfile) && !allowedType(podProfile?.type)) {
    badSetters.push("pod");
    badValues.add(podProfile?.type ?? "");
  }
  const badContainers: string[] = [];
  visitContainers(spec, (c, name) => {
    const profile = c.securityContext?.appArmorProfile;
    if (isSet(profile) && !allowedType(profile?.type)) {
      badContainers.push(name);
      badValues.add(profile?.type ?? "");
    }
  });
  if (badContainers.length > 0) badSetters.push(containersPhrase(badContainers));
  const forbiddenAnnotations: string[] = [];
  for (const [k, v] of Object.entries(meta.annotations ?? {})) {
    if (k.startsWith(APPARMOR_ANNOTATION_PREFIX) && !allowedAnnotation(String(v))) forbiddenAnnotations.push(`${k}=${goQuote(String(v))}`);
  }
  const badValueList = sortedUnique(badValues);
  if (forbiddenAnnotations.length > 0) {
    badValueList.push(...forbiddenAnnotations.sort(byteOrder));
    badSetters.push(pluralize("annotation", "annotations", forbiddenAnnotations.length));
  }
  if (badSetters.length === 0) return undefined;
  return {
    reason: pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", badValueList.length),
    detail: `${badSetters.join(" and ")} must not set AppArmor profile type to ${joinQuote(badValueList)}`,
  };
};

// v1.34.0 policy/check_capabilities_baseline.go (capabilitiesBaseline_1_0)
const CAPABILITIES_ALLOWED_BASELINE = new Set([
  "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
  "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
]);
const capabilitiesBaseline: CheckFn = (_meta, spec) => {
  const badContainers: string[] = [];
  const nonDefault = new Set<string>();
  visitContainers(spec, (c, name) => {
    const caps = c.securityContext?.capabilities;
    if (!isSet(caps)) return;
    let valid = true;
    for (const cap of list(caps?.add)) {
      if (!CAPABILITIES_ALLOWED_BASELINE.has(cap)) {
        valid = false;
        nonDefault.add(cap);
      }
    }
    if (!valid) badContainers.push(name);
  });
  if (badContainers.length === 0) return undefined;
  return {
    reason: "non-default capabilities",
    detail: `${containersPhrase(badContainers)} must not include ${joinQuote(sortedUnique(nonDefault))} in securityContext.capabilities.add`,
  };
};

// v1.34.0 policy/check_hostNamespaces.go (hostNamespaces_1_0)
const hostNamespaces: CheckFn = (_meta, spec) => {
  const used: string[] = [];
  if (spec.hostNetwork === true) used.push("hostNetwork=true");
  if (spec.hostPID === true) used.push("hostPID=true");
  if (spec.hostIPC === true) used.push("hostIPC=true");
  return used.length > 0 ? { reason: "host namespaces", detail: used.join(", ") } : undefined;
};

// v1.34.0 policy/check_hostPathVolumes.go (hostPathVolumes_1_0)
const hostPathVolumes: CheckFn = (_meta, spec) => {
  const names = list(spec.volumes).filter((v) => isSet(v?.hostPath)).map((v) => v?.name ?? "");
  if (names.length === 0) return undefined;
  return { reason: "hostPath volumes", detail: `${pluralize("volume", "volumes", names.length)} ${joinQuote(names)}` };
};

// v1.34.0 policy/check_hostPorts.go (hostPorts_1_0)
const hostPorts: CheckFn = (_meta, spec) => {
  const badContainers: string[] = [];
  const ports = new Set<string>();
  visitContainers(spec, (c, name) => {
    let valid = true;
    for (const p of list(c.ports)) {
      const hostPort = p?.hostPort ?? 0;
      if (hostPort !== 0) {
        valid = false;
        ports.add(String(hostPort));
      }
    }
    if (!valid) badContainers.push(name);
  });
  if (badContainers.length === 0) return undefined;
  const portList = sortedUnique(ports); // sorted as strings, as upstream
  return {
    reason: "hostPort",
    detail: `${containersPhrase(badContainers)} ${pluralize("uses", "use", badContainers.length)} ${pluralize("hostPort", "hostPorts", portList.length)} ${portList.join(", ")}`,
  };
};

// v1.34.0 policy/check_hostProbesAndhostLifecycle.go (hostProbesAndHostLifecycleV1Dot34)
const hostProbesAndHostLifecycle: CheckFn = (_meta, spec) => {
  const hostsOf = (handler: Maybe<ProbeLike | LifecycleHandlerLike>): string[] => {
    if (!isSet(handler)) return [];
    const hosts: string[] = [];
    const httpHost = handler?.httpGet?.host;
    if (typeof httpHost === "string" && httpHost !== "") hosts.push(httpHost);
    const tcpHost = handler?.tcpSocket?.host;
    if (typeof tcpHost === "string" && tcpHost !== "") hosts.push(tcpHost);
    return hosts;
  };
  const badContainers = new Set<string>();
  const forbidden = new Set<string>();
  visitContainers(spec, (c, name) => {
    const handlers: Maybe<ProbeLike | LifecycleHandlerLike>[] = [c.livenessProbe, c.readinessProbe, c.startupProbe];
    if (isSet(c.lifecycle)) handlers.push(c.lifecycle?.postStart, c.lifecycle?.preStop);
    for (const h of handlers) {
      const hosts = hostsOf(h);
      if (hosts.length > 0) {
        badContainers.add(name);
        for (const host of hosts) forbidden.add(host);
      }
    }
  });
  if (badContainers.size === 0) return undefined;
  const names = sortedUnique(badContainers);
  const hosts = sortedUnique(forbidden);
  return {
    reason: "probe or lifecycle host",
    detail: `${containersPhrase(names)} ${pluralize("uses", "use", names.length)} ${pluralize("probe or lifecycle host", "probe or lifecycle hosts", hosts.length)} ${joinQuote(hosts)}`,
  };
};

// v1.34.0 policy/check_privileged.go (privileged_1_0)
const privileged: CheckFn = (_meta, spec) => {
  const badContainers: string[] = [];
  visitContainers(spec, (c, name) => {
    if (c.securityContext?.privileged === true) badContainers.push(name);
  });
  if (badContainers.length === 0) return undefined;
  return { reason: "privileged", detail: `${containersPhrase(badContainers)} must not set securityContext.privileged=true` };
};

// v1.34.0 policy/check_procMount.go (procMount_1_0)
const procMount: CheckFn = (_meta, spec, opts) => {
  if (relaxPolicyForUserNamespacePod(spec, opts)) return undefined;
  const badContainers: string[] = [];
  const badTypes = new Set<string>();
  visitContainers(spec, (c, name) => {
    const pm = c.securityContext?.procMount;
    if (!isSet(pm)) return;
    if (pm !== "Default") {
      badContainers.push(name);
      badTypes.add(pm ?? "");
    }
  });
  if (badContainers.length === 0) return undefined;
  return {
    reason: "procMount",
    detail: `${containersPhrase(badContainers)} must not set securityContext.procMount to ${joinQuote(sortedUnique(badTypes))}`,
  };
};

// v1.34.0 policy/check_seLinuxOptions.go (seLinuxOptions1_31)
const SELINUX_ALLOWED_TYPES = new Set(["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"]);
const seLinuxOptions: CheckFn = (_meta, spec) => {
  const badSetters: string[] = [];
  const badTypes = new Set<string>();
  let setUser = false;
  let setRole = false;
  const valid = (o: SELinuxOptionsLike | null | undefined): boolean => {
    let ok = true;
    const type = o?.type ?? "";
    if (!SELINUX_ALLOWED_TYPES.has(type)) {
      ok = false;
      badTypes.add(type);
    }
    if ((o?.user ?? "").length > 0) {
      ok = false;
      setUser = true;
    }
    if ((o?.role ?? "").length > 0) {
      ok = false;
      setRole = true;
    }
    return ok;
  };
  const podOpts = spec.securityContext?.seLinuxOptions;
  if (isSet(podOpts) && !valid(podOpts)) badSetters.push("pod");
  const badContainers: string[] = [];
  visitContainers(spec, (c, name) => {
    const o = c.securityContext?.seLinuxOptions;
    if (isSet(o) && !valid(o)) badContainers.push(name);
  });
  if (badContainers.length > 0) badSetters.push(containersPhrase(badContainers));
  if (badSetters.length === 0) return undefined;
  const badData: string[] = [];
  if (badTypes.size > 0) badData.push(`${pluralize("type", "types", badTypes.size)} ${joinQuote(sortedUnique(badTypes))}`);
  if (setUser) badData.push("user may not be set");
  if (setRole) badData.push("role may not be set");
  return {
    reason: "seLinuxOptions",
    detail: `${badSetters.join(" and ")} set forbidden securityContext.seLinuxOptions: ${badData.join("; ")}`,
  };
};

const validSeccomp = (t: Maybe<string>): boolean => t === "Localhost" || t === "RuntimeDefault";

// v1.34.0 policy/check_seccompProfile_baseline.go (seccompProfileBaseline_1_19; the
// 1.0 version's seccomp.security.alpha.kubernetes.io annotations are not checked at 1.19+)
const seccompProfileBaseline: CheckFn = (_meta, spec) => {
  const badSetters: string[] = [];
  const badValues = new Set<string>();
  const podProfile = spec.securityContext?.seccompProfile;
  if (isSet(podProfile) && !validSeccomp(podProfile?.type)) {
    badSetters.push("pod");
    badValues.add(podProfile?.type ?? "");
  }
  const badContainers: string[] = [];
  visitContainers(spec, (c, name) => {
    const profile = c.securityContext?.seccompProfile;
    if (isSet(profile) && !validSeccomp(profile?.type)) {
      badContainers.push(name);
      badValues.add(profile?.type ?? "");
    }
  });
  if (badContainers.length > 0) badSetters.push(containersPhrase(badContainers));
  if (badSetters.length === 0) return undefined;
  return {
    reason: "seccompProfile",
    detail: `${badSetters.join(" and ")} must not set securityContext.seccompProfile.type to ${joinQuote(sortedUnique(badValues))}`,
  };
};

// v1.34.0 policy/check_sysctls.go (sysctlsV1Dot32)
const SYSCTLS_ALLOWED = new Set([
  "kernel.shm_rmid_forced",
  "net.ipv4.ip_local_port_range",
  "net.ipv4.tcp_syncookies",
  "net.ipv4.ping_group_range",
  "net.ipv4.ip_unprivileged_port_start",
  "net.ipv4.ip_local_reserved_ports", // 1.27
  "net.ipv4.tcp_keepalive_time", // 1.29
  "net.ipv4.tcp_fin_timeout",
  "net.ipv4.tcp_keepalive_intvl",
  "net.ipv4.tcp_keepalive_probes",
  "net.ipv4.tcp_rmem", // 1.32
  "net.ipv4.tcp_wmem",
]);
const sysctls: CheckFn = (_meta, spec) => {
  const forbidden = list(spec.securityContext?.sysctls).map((s) => s?.name ?? "").filter((n) => !SYSCTLS_ALLOWED.has(n));
  return forbidden.length > 0 ? { reason: "forbidden sysctls", detail: forbidden.join(", ") } : undefined;
};

// v1.34.0 policy/check_windowsHostProcess.go (windowsHostProcess_1_0)
const windowsHostProcess: CheckFn = (_meta, spec) => {
  const badContainers: string[] = [];
  visitContainers(spec, (c, name) => {
    if (c.securityContext?.windowsOptions?.hostProcess === true) badContainers.push(name);
  });
  const setters: string[] = [];
  if (spec.securityContext?.windowsOptions?.hostProcess === true) setters.push("pod");
  if (badContainers.length > 0) setters.push(containersPhrase(badContainers));
  if (setters.length === 0) return undefined;
  return { reason: "hostProcess", detail: `${setters.join(" and ")} must not set securityContext.windowsOptions.hostProcess=true` };
};

// ---------------------------------------------------------------------------
// Restricted checks
// ---------------------------------------------------------------------------

// v1.34.0 policy/check_allowPrivilegeEscalation.go (allowPrivilegeEscalation_1_25)
const allowPrivilegeEscalation: CheckFn = (_meta, spec) => {
  if (isWindowsPod(spec)) return undefined;
  const badContainers: string[] = [];
  visitContainers(spec, (c, name) => {
    const ape = c.securityContext?.allowPrivilegeEscalation;
    if (!isSet(ape) || ape === true) badContainers.push(name);
  });
  if (badContainers.length === 0) return undefined;
  return {
    reason: "allowPrivilegeEscalation != false",
    detail: `${containersPhrase(badContainers)} must set securityContext.allowPrivilegeEscalation=false`,
  };
};

// v1.34.0 policy/check_capabilities_restricted.go (capabilitiesRestricted_1_25)
const capabilitiesRestricted: CheckFn = (_meta, spec) => {
  if (isWindowsPod(spec)) return undefined;
  const missingDropAll: string[] = [];
  const addingForbidden: string[] = [];
  const forbiddenCaps = new Set<string>();
  visitContainers(spec, (c, name) => {
    const caps = c.securityContext?.capabilities;
    if (!isSet(caps)) {
      missingDropAll.push(name);
      return;
    }
    if (!list(caps?.drop).includes("ALL")) missingDropAll.push(name);
    let added = false;
    for (const cap of list(caps?.add)) {
      if (cap !== "NET_BIND_SERVICE") {
        added = true;
        forbiddenCaps.add(cap);
      }
    }
    if (added) addingForbidden.push(name);
  });
  const details: string[] = [];
  if (missingDropAll.length > 0) details.push(`${containersPhrase(missingDropAll)} must set securityContext.capabilities.drop=["ALL"]`);
  if (addingForbidden.length > 0) {
    details.push(`${containersPhrase(addingForbidden)} must not include ${joinQuote(sortedUnique(forbiddenCaps))} in securityContext.capabilities.add`);
  }
  return details.length > 0 ? { reason: "unrestricted capabilities", detail: details.join("; ") } : undefined;
};

// v1.34.0 policy/check_restrictedVolumes.go (restrictedVolumes_1_0)
const ALLOWED_VOLUME_SOURCES = ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected", "secret"] as const;
const RESTRICTED_VOLUME_SOURCES = [
  "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs", "rbd", "flexVolume", "cinder",
  "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos",
] as const;
const restrictedVolumes: CheckFn = (_meta, spec) => {
  const badVolumes: string[] = [];
  const badTypes = new Set<string>();
  for (const raw of list(spec.volumes)) {
    const v: VolumeLike = raw ?? {};
    if (ALLOWED_VOLUME_SOURCES.some((k) => isSet(v[k]))) continue;
    badVolumes.push(v.name ?? "");
    badTypes.add(RESTRICTED_VOLUME_SOURCES.find((k) => isSet(v[k])) ?? "unknown");
  }
  if (badVolumes.length === 0) return undefined;
  const types = sortedUnique(badTypes);
  return {
    reason: "restricted volume types",
    detail:
      `${pluralize("volume", "volumes", badVolumes.length)} ${joinQuote(badVolumes)} ${pluralize("uses", "use", badVolumes.length)} ` +
      `${pluralize("restricted volume type", "restricted volume types", types.length)} ${joinQuote(types)}`,
  };
};

// v1.34.0 policy/check_runAsNonRoot.go (runAsNonRoot_1_0)
const runAsNonRoot: CheckFn = (_meta, spec, opts) => {
  if (relaxPolicyForUserNamespacePod(spec, opts)) return undefined;
  const badSetters: string[] = [];
  let podRunAsNonRoot = false;
  const podValue = spec.securityContext?.runAsNonRoot;
  if (isSet(podValue)) {
    if (!podValue) badSetters.push("pod");
    else podRunAsNonRoot = true;
  }
  const explicitlyBad: string[] = [];
  const implicitlyBad: string[] = [];
  visitContainers(spec, (c, name) => {
    const value = c.securityContext?.runAsNonRoot;
    if (isSet(value)) {
      if (!value) explicitlyBad.push(name);
    } else if (!podRunAsNonRoot) {
      implicitlyBad.push(name);
    }
  });
  if (explicitlyBad.length > 0) badSetters.push(containersPhrase(explicitlyBad));
  if (badSetters.length > 0) {
    return { reason: "runAsNonRoot != true", detail: `${badSetters.join(" and ")} must not set securityContext.runAsNonRoot=false` };
  }
  if (implicitlyBad.length > 0) {
    return { reason: "runAsNonRoot != true", detail: `pod or ${containersPhrase(implicitlyBad)} must set securityContext.runAsNonRoot=true` };
  }
  return undefined;
};

// v1.34.0 policy/check_runAsUser.go (runAsUser_1_23)
const runAsUser: CheckFn = (_meta, spec, opts) => {
  if (relaxPolicyForUserNamespacePod(spec, opts)) return undefined;
  const badSetters: string[] = [];
  if (spec.securityContext?.runAsUser === 0) badSetters.push("pod");
  const badContainers: string[] = [];
  visitContainers(spec, (c, name) => {
    if (c.securityContext?.runAsUser === 0) badContainers.push(name);
  });
  if (badContainers.length > 0) badSetters.push(containersPhrase(badContainers));
  if (badSetters.length === 0) return undefined;
  return { reason: "runAsUser=0", detail: `${badSetters.join(" and ")} must not set runAsUser=0` };
};

// v1.34.0 policy/check_seccompProfile_restricted.go (seccompProfileRestricted_1_25)
const seccompProfileRestricted: CheckFn = (_meta, spec) => {
  if (isWindowsPod(spec)) return undefined;
  const badSetters: string[] = [];
  const badValues = new Set<string>();
  let podSeccompSet = false;
  const podProfile = spec.securityContext?.seccompProfile;
  if (isSet(podProfile)) {
    if (!validSeccomp(podProfile?.type)) {
      badSetters.push("pod");
      badValues.add(podProfile?.type ?? "");
    } else {
      podSeccompSet = true;
    }
  }
  const explicitlyBad: string[] = [];
  const implicitlyBad: string[] = [];
  visitContainers(spec, (c, name) => {
    const profile = c.securityContext?.seccompProfile;
    if (isSet(profile)) {
      if (!validSeccomp(profile?.type)) {
        explicitlyBad.push(name);
        badValues.add(profile?.type ?? "");
      }
    } else if (!podSeccompSet) {
      implicitlyBad.push(name);
    }
  });
  if (explicitlyBad.length > 0) badSetters.push(containersPhrase(explicitlyBad));
  if (badSetters.length > 0) {
    return {
      reason: "seccompProfile",
      detail: `${badSetters.join(" and ")} must not set securityContext.seccompProfile.type to ${joinQuote(sortedUnique(badValues))}`,
    };
  }
  if (implicitlyBad.length > 0) {
    return {
      reason: "seccompProfile",
      detail: `pod or ${containersPhrase(implicitlyBad)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`,
    };
  }
  return undefined;
};

// ---------------------------------------------------------------------------
// Registry (policy/registry.go): levels, overrides, ordering.
// ---------------------------------------------------------------------------

interface Check { id: string; level: PodSecurityLevel; overrides?: string[]; run: CheckFn }

const CHECKS: Check[] = [
  { id: "appArmorProfile", level: "baseline", run: appArmorProfile },
  { id: "capabilities_baseline", level: "baseline", run: capabilitiesBaseline },
  { id: "hostNamespaces", level: "baseline", run: hostNamespaces },
  { id: "hostPathVolumes", level: "baseline", run: hostPathVolumes },
  { id: "hostPorts", level: "baseline", run: hostPorts },
  { id: "hostProbesAndHostLifecycle", level: "baseline", run: hostProbesAndHostLifecycle },
  { id: "privileged", level: "baseline", run: privileged },
  { id: "procMount", level: "baseline", run: procMount },
  { id: "seLinuxOptions", level: "baseline", run: seLinuxOptions },
  { id: "seccompProfile_baseline", level: "baseline", run: seccompProfileBaseline },
  { id: "sysctls", level: "baseline", run: sysctls },
  { id: "windowsHostProcess", level: "baseline", run: windowsHostProcess },
  { id: "allowPrivilegeEscalation", level: "restricted", run: allowPrivilegeEscalation },
  { id: "capabilities_restricted", level: "restricted", overrides: ["capabilities_baseline"], run: capabilitiesRestricted },
  { id: "restrictedVolumes", level: "restricted", overrides: ["hostPathVolumes"], run: restrictedVolumes },
  { id: "runAsNonRoot", level: "restricted", run: runAsNonRoot },
  { id: "runAsUser", level: "restricted", run: runAsUser },
  { id: "seccompProfile_restricted", level: "restricted", overrides: ["seccompProfile_baseline"], run: seccompProfileRestricted },
];

function checksFor(level: PodSecurityLevel): Check[] {
  const byId = (a: Check, b: Check): number => byteOrder(a.id, b.id);
  const baseline = CHECKS.filter((c) => c.level === "baseline").sort(byId);
  if (level === "baseline") return baseline;
  const restricted = CHECKS.filter((c) => c.level === "restricted").sort(byId);
  const overridden = new Set(restricted.flatMap((c) => c.overrides ?? []));
  return [...baseline.filter((c) => !overridden.has(c.id)), ...restricted];
}

/**
 * Evaluates a pod (its metadata and spec) against the Pod Security Standard
 * `level` at version "latest" (Kubernetes v1.34), returning one violation per
 * failing check, in upstream's order. An empty array means the pod is allowed.
 */
export function checkPodSecurity(
  level: PodSecurityLevel,
  podMeta: PodMetaLike | undefined,
  podSpec: PodSpecLike,
  options: CheckPodSecurityOptions = {},
): PodSecurityViolation[] {
  if (level !== "baseline" && level !== "restricted") throw new Error(`unknown Pod Security level: ${String(level)}`);
  const meta: PodMetaLike = podMeta ?? {};
  const spec: PodSpecLike = podSpec ?? {};
  const violations: PodSecurityViolation[] = [];
  for (const check of checksFor(level)) {
    const result = check.run(meta, spec, options);
    if (result === undefined) continue;
    const reason = result.reason === "" ? "unknown forbidden reason" : result.reason;
    violations.push({ check: check.id, message: result.detail === "" ? reason : `${reason} (${result.detail})` });
  }
  return violations;
}

// ---------------------------------------------------------------------------
// Pod templates of workload objects
// ---------------------------------------------------------------------------

export interface PodTemplateOf { meta?: PodMetaLike; spec: PodSpecLike }

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function metaOf(value: unknown): PodMetaLike | undefined {
  const metadata = asRecord(value);
  if (metadata === undefined) return undefined;
  const raw = asRecord(metadata.annotations);
  if (raw === undefined) return {};
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (typeof v === "string") annotations[k] = v;
  return { annotations };
}

function templateOf(value: unknown): PodTemplateOf[] {
  const template = asRecord(value);
  const spec = asRecord(template?.spec);
  if (template === undefined || spec === undefined) return [];
  const meta = metaOf(template.metadata);
  return [meta === undefined ? { spec: spec as PodSpecLike } : { meta, spec: spec as PodSpecLike }];
}

/**
 * The pod spec(s) that PodSecurity admission evaluates for an object: the
 * Pod's own spec, or the pod template of a workload (spec.template, or
 * spec.jobTemplate.spec.template for a CronJob). Other kinds give [].
 */
export function podTemplatesOf(obj: { kind: string; metadata?: unknown; spec?: unknown; template?: unknown }): PodTemplateOf[] {
  const spec = asRecord(obj.spec);
  switch (obj.kind) {
    case "Pod":
      return templateOf({ metadata: obj.metadata, spec: obj.spec });
    case "PodTemplate":
      return templateOf(obj.template);
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "ReplicaSet":
    case "ReplicationController":
    case "Job":
      return templateOf(spec?.template);
    case "CronJob":
      return templateOf(asRecord(asRecord(spec?.jobTemplate)?.spec)?.template);
    default:
      return [];
  }
}
