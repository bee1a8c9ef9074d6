// The Pulumi program: read and validate stack config, then compose components.
import { loadConfig } from "./components/config";
import { createPlatform } from "./components/platform";

const config = loadConfig();
const platform = createPlatform(config);

export const mode = platform.mode;
export const apiEndpoint = platform.cluster?.apiEndpoint;
export const kubeconfig = platform.kubeconfig;
export const servers = platform.cluster?.nodes.map((n) => ({ name: n.name, role: n.role, privateIp: n.privateIp, publicIpv4: n.publicIpv4 }));
export const sshPrivateKey = platform.cluster?.sshPrivateKey;
export const loadBalancerIpv4 = platform.cluster?.network.loadBalancerIpv4;
