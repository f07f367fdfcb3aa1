import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Logger } from "@custos/utils";
import { pino } from "pino";
import { createLogger, type LogLevel } from "./pinoLogger.js";

export interface RotatingFileOptions {
  level: LogLevel;
  /** Rotate once the file reaches this size. */
  maxBytes: number;
  /** Rotated files kept: NAME.1 (newest) .. NAME.keep. */
  keep: number;
  /** Rotated files older than this are deleted (0 = keep by count only). */
  retentionDays: number;
  /** How often the size is checked. */
  checkIntervalMs?: number;
  /**
   * Lines are held and written in runs of `minBytes` (4 KiB unless set), and at least this often (ms): a busy log
   * (the ops log has a line per accepted transaction) costs one write per run instead of one per
   * line. A kill -9 loses at most what the last interval held; a normal exit and close() write
   * everything. Unset: each line is written as it comes.
   */
  flushMs?: number;
  /** With flushMs: how much is held before a write. */
  minBytes?: number;
}

export interface RotatingFileLogger {
  logger: Logger;
  /** Flushes and stops the rotation timer. */
  close(): void;
}

function shift(file: string, keep: number): void {
  rmSync(`${file}.${keep}`, { force: true });
  for (let i = keep - 1; i >= 1; i--)
    if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
  renameSync(file, `${file}.1`);
}

function dropExpired(file: string, retentionDays: number): void {
  if (retentionDays <= 0) return;
  const cutoff = Date.now() - retentionDays * 86_400_000;
  const dir = dirname(file);
  const base = `${basename(file)}.`;
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(base) || !/^\d+$/.test(name.slice(base.length))) continue;
    const path = join(dir, name);
    if (statSync(path).mtimeMs < cutoff) rmSync(path, { force: true });
  }
}

/**
 * A JSON-lines log file that rotates by size while the process runs (rename, then pino reopens
 * the path) and keeps `keep` old files within a retention period.
 */
export function createRotatingFileLogger(file: string, o: RotatingFileOptions): RotatingFileLogger {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const rotateIfDue = (): boolean => {
    if (existsSync(file) && statSync(file).size >= o.maxBytes) {
      shift(file, Math.max(1, o.keep));
      return true;
    }
    return false;
  };
  rotateIfDue();
  dropExpired(file, o.retentionDays);
  const dest = pino.destination({
    dest: file,
    mkdir: true,
    // Held lines are written synchronously, in runs: a run is one write into the page cache, in
    // order, and close() writes the rest after it (an asynchronous run still in flight at close
    // could land after the lines close wrote: seen once, a file ending in line 57 of 100)
    sync: o.flushMs !== undefined,
    ...(o.flushMs !== undefined
      ? {
          minLength: o.minBytes ?? 4096,
          // a write takes at most this much (sonic-boom wants it above minLength)
          maxWrite: Math.max(16 * 1024, 4 * (o.minBytes ?? 4096)),
          periodicFlush: o.flushMs,
        }
      : {}),
  });
  const timer = setInterval(() => {
    try {
      if (rotateIfDue()) dest.reopen();
      dropExpired(file, o.retentionDays);
    } catch {
      // rotation trouble must not take the node down; the file keeps growing instead
    }
  }, o.checkIntervalMs ?? 30_000);
  timer.unref();
  return {
    logger: createLogger({ level: o.level, destination: dest }),
    close: () => {
      clearInterval(timer);
      try {
        dest.flushSync();
      } catch {
        // nothing buffered, or already closed
      }
    },
  };
}
