/** State keys are a chain rule (the state tree and the offline verifier hash them): in @custos/types. */
export { STATE_BUCKET, stateKey } from "@custos/types";
