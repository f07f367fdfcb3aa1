export * from "./amount.js";
export * from "./client.js";
export * from "./wallet.js";
