/** Structured fields attached to a log line. Never put secrets here. */
export type LogFields = Record<string, unknown>;

/**
 * The Logger every module takes. `@custos/logger` implements it with pino; tests pass
 * `nullLogger` or a recording stub. Messages are constant strings; variable data goes in fields.
 */
export interface Logger {
  trace(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines all carry `bindings`, e.g. `{ module: "consensus" }`. */
  child(bindings: LogFields): Logger;
}

const noop = (): void => {};

/** A Logger that drops everything. */
export const nullLogger: Logger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => nullLogger,
};
