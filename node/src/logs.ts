import { join } from "node:path";
import { createRotatingFileLogger, type LogLevel } from "@custos/logger";
import type { Logger } from "@custos/utils";

export interface NodeLogs {
  log: Logger;
  /** Every write and admin action, one JSON line each, kept apart from the diagnostic log. */
  ops: Logger;
  close(): void;
}

export function openLogs(
  dir: string,
  o: { level: LogLevel; maxFileBytes: number; keepFiles: number; retentionDays: number },
): NodeLogs {
  const common = { maxBytes: o.maxFileBytes, keep: o.keepFiles, retentionDays: o.retentionDays };
  const log = createRotatingFileLogger(join(dir, "node.log"), { ...common, level: o.level });
  // a line per accepted transaction: written in runs of 64 KiB, at least every 200 ms (a write per
  // run, not per line)
  const ops = createRotatingFileLogger(join(dir, "ops.log"), {
    ...common,
    level: "info",
    flushMs: 200,
    minBytes: 64 * 1024,
  });
  return {
    log: log.logger,
    ops: ops.logger,
    close: () => {
      log.close();
      ops.close();
    },
  };
}
