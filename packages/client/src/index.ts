export * from "./amount.js";
export * from "./audit.js";
export * from "./client.js";
export * from "./prepaid.js";
export * from "./subscribe.js";
export * from "./wallet.js";
