/**
 * The prepaid-card template for tools and tests on the host (the CLI, the client SDK, the e2e
 * tests): where its source is, its stable error codes, its arithmetic and its record types.
 * The contract itself is `src/contract.ts`; bundle it with `custos contract build` or
 * `bundleContract(CONTRACT_SOURCE)` and submit it as a template.
 */
import { fileURLToPath } from "node:url";

/** Absolute path of the contract's entry file (TypeScript; the bundler makes one ES module of it). */
export const CONTRACT_SOURCE: string = fileURLToPath(new URL("../src/contract.ts", import.meta.url));
export const TEMPLATE_NAME = "prepaid-card";

export type { Card, CardStatus, CardView, Config, Kind, Product, ProgrammeState } from "./contract.js";
export { ERRORS, type ErrorCode } from "./errors.js";
export * from "./rules.js";
