export * from "./engine.js";
export * from "./messages.js";
export * from "./sm2Crypto.js";
export * from "./wal.js";
