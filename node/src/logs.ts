import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { createLogger, type LogLevel } from "@custos/logger";
import type { Logger } from "@custos/utils";

/**
 * Size-based rotation, done when a log is opened: NAME.log -> NAME.log.1 -> ... -> NAME.log.N,
 * the oldest dropped. Between starts the files grow; the rotation size bounds each start's file.
 */
export function rotate(dir: string, name: string, maxBytes: number, keep: number): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${name}.log`);
  if (existsSync(file) && statSync(file).size >= maxBytes) {
    rmSync(`${file}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--)
      if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
    renameSync(file, `${file}.1`);
  }
  return file;
}

export interface NodeLogs {
  log: Logger;
  /** Every write and admin action, one JSON line each, kept apart from the diagnostic log. */
  ops: Logger;
}

export function openLogs(dir: string, level: LogLevel, maxBytes: number, keep: number): NodeLogs {
  return {
    log: createLogger({ level, destination: rotate(dir, "node", maxBytes, keep) }),
    ops: createLogger({ level: "info", destination: rotate(dir, "ops", maxBytes, keep) }),
  };
}
