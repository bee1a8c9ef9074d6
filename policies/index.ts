// The CrossGuard pack: `pulumi preview --policy-pack policies`. Only builds the
// PolicyPack; the rules live in rules/ (tests and `npm run policy` use them there).
import { PolicyPack } from "@pulumi/policy";
import { ALL_POLICIES, INITIAL_CONFIG, PACK_NAME } from "./rules";

new PolicyPack(PACK_NAME, { policies: [...ALL_POLICIES] }, INITIAL_CONFIG);
