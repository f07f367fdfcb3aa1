export * from "./block.js";
export * from "./certificate.js";
export * from "./genesis.js";
export * from "./limits.js";
export * from "./receipt.js";
export * from "./tx.js";
