import type { LogFields, Logger } from "@custos/utils";
import { type DestinationStream, type Logger as PinoLogger, pino } from "pino";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "silent";

export interface LoggerOptions {
  level?: LogLevel;
  /** Where JSON lines go: a file path (appended, created if missing), a stream, or stderr by default. */
  destination?: string | DestinationStream;
  /** Fields on every line, e.g. `{ node: "validator-0" }`. */
  bindings?: LogFields;
}

class PinoAdapter implements Logger {
  constructor(private readonly p: PinoLogger) {}
  trace(msg: string, fields?: LogFields): void {
    this.p.trace(fields ?? {}, msg);
  }
  debug(msg: string, fields?: LogFields): void {
    this.p.debug(fields ?? {}, msg);
  }
  info(msg: string, fields?: LogFields): void {
    this.p.info(fields ?? {}, msg);
  }
  warn(msg: string, fields?: LogFields): void {
    this.p.warn(fields ?? {}, msg);
  }
  error(msg: string, fields?: LogFields): void {
    this.p.error(fields ?? {}, msg);
  }
  child(bindings: LogFields): Logger {
    return new PinoAdapter(this.p.child(bindings));
  }
}

/**
 * A pino-backed Logger writing one JSON object per line. bigint fields are written as decimal
 * strings (money is bigint fen and must survive logging exactly).
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const dest =
    typeof opts.destination === "string"
      ? pino.destination({ dest: opts.destination, mkdir: true, sync: false })
      : (opts.destination ?? pino.destination(2));
  const p = pino(
    {
      level: opts.level ?? "info",
      base: opts.bindings ?? {},
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method) {
          const [first, ...rest] = args as unknown[];
          if (first !== null && typeof first === "object") {
            method.apply(this, [stringifyBigInts(first as Record<string, unknown>), ...rest] as never);
          } else {
            method.apply(this, args);
          }
        },
      },
    },
    dest,
  );
  return new PinoAdapter(p);
}

function stringifyBigInts(fields: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v === "bigint") {
      out ??= { ...fields };
      out[k] = v.toString();
    }
  }
  return out ?? fields;
}
