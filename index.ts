// The Pulumi program: read and validate stack config, refuse edits that would
// break the running cluster, then compose components.
import { loadConfig } from "./components/config";
import { createPlatform, stackOutputs } from "./components/platform";
import { refuseBreakingTopologyEdits } from "./components/topology-guard";

export = (async () => {
    const config = loadConfig();
    if (config.mode === "hetzner") await refuseBreakingTopologyEdits(config.cluster);
    return stackOutputs(createPlatform(config));
})();
