export { GAS, KEY_RE, REVERT_CODE_RE, VM_LIMITS } from "./gas.js";
export { decodeValue, encodeValue } from "./value.js";
export {
  type CallEnv,
  type CallRequest,
  type CallResult,
  type ContractState,
  ENGINE,
  type VmEvent,
  VmSession,
  type VmTransfer,
} from "./vm.js";
