// The Pulumi program: read and validate stack config, refuse edits that would
// break what is deployed (settings fixed at creation, the live topology), then
// compose components.
import { loadConfig } from "./components/config";
import { ESTABLISHED_OUTPUT, establishedSettings, refuseEstablishedSettingsEdits } from "./components/established-settings";
import { createPlatform, stackOutputs } from "./components/platform";
import { refuseBreakingTopologyEdits } from "./components/cluster/topology-guard";

export = (async () => {
    const config = loadConfig();
    await refuseEstablishedSettingsEdits(config);
    if (config.mode === "hetzner") await refuseBreakingTopologyEdits(config.cluster);
    return {
        ...stackOutputs(createPlatform(config)),
        [ESTABLISHED_OUTPUT]: establishedSettings(config),
        // Read by the offline plan, which prices what the render holds.
        ...(config.monthlyCostCap !== undefined ? { monthlyCostCap: config.monthlyCostCap } : {}),
    };
})();
