export * from "./bytes.js";
export * from "./crc32c.js";
export * from "./errors.js";
export * from "./logger.js";
export * from "./ports.js";
export * from "./sleep.js";
