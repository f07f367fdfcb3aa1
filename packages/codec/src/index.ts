export * from "./errors.js";
export * from "./fields.js";
export * from "./merkle.js";
export * from "./msgpack.js";
