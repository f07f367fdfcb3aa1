export { createLogger, type LoggerOptions, type LogLevel } from "./pinoLogger.js";
