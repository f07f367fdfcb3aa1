export { createLogger, type LoggerOptions, type LogLevel } from "./pinoLogger.js";
export {
  createRotatingFileLogger,
  type RotatingFileLogger,
  type RotatingFileOptions,
} from "./rotatingFile.js";
