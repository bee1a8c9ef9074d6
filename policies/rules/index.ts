// Every policy of the pack, by area. Tests import these without starting the
// pack (constructing a PolicyPack starts its gRPC server).
import type { PolicyPackConfig, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import { DATA_POLICIES } from "./data";
import { EXPOSURE_POLICIES } from "./exposure";
import { HETZNER_POLICIES } from "./hetzner";
import { SECRET_POLICIES } from "./secrets";
import { WORKLOAD_POLICIES } from "./workloads";

export const PACK_NAME = "platform";
export const ALL_POLICIES: readonly (ResourceValidationPolicy | StackValidationPolicy)[] = [
    ...WORKLOAD_POLICIES, ...EXPOSURE_POLICIES, ...SECRET_POLICIES, ...HETZNER_POLICIES, ...DATA_POLICIES,
];

/**
 * The pack's initial config (PolicyPack's third argument, which GetAnalyzerInfo
 * reports): it sits below a stack's config file and above the schema defaults.
 * Empty: the defaults live in the policies' schemas.
 */
export const INITIAL_CONFIG: PolicyPackConfig = {};
