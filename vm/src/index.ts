export { GAS, VM_LIMITS } from "./gas.js";
export {
  type CallEnv,
  type CallRequest,
  type CallResult,
  type ChainMember,
  type ContractState,
  ENGINE,
  type VmEvent,
  VmSession,
  type VmTransfer,
} from "./vm.js";
