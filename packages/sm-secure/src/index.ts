export * from "./encrypter.js";
export * from "./errors.js";
export * from "./handshake.js";
export * from "./keySchedule.js";
export * from "./record.js";
