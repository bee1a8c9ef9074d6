// The Pulumi program: read and validate stack config, then compose components.
import { loadConfig } from "./components/config";
import { createPlatform, stackOutputs } from "./components/platform";

export = stackOutputs(createPlatform(loadConfig()));
