/**
 * The one error base class of Custos. Every error that crosses a module boundary carries a
 * stable, machine-readable `code` (SCREAMING_SNAKE_CASE, never renamed once released) and
 * structured metadata. Callers compare `code`, never `instanceof`: a package can be loaded twice.
 */
export class CustosError<C extends string = string> extends Error {
  readonly code: C;
  readonly meta: Readonly<Record<string, unknown>>;

  constructor(code: C, message: string, meta: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CustosError";
    this.code = code;
    this.meta = meta;
  }

  toJSON(): { code: C; message: string; meta: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, meta: this.meta };
  }
}

/**
 * An expected refusal (a busy pool, a duplicate): a CustosError without a stack trace. Capturing
 * one costs more than the rest of the refusal, and above saturation a node refuses thousands a
 * second; nobody debugs a refusal from its stack, the code and message say what happened.
 */
export function refusal<C extends string>(
  code: C,
  message: string,
  meta: Record<string, unknown> = {},
): CustosError<C> {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new CustosError(code, message, meta);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** True when `err` is any CustosError (from any copy of this package), optionally with the given code. */
export function isCustosError(err: unknown, code?: string): err is CustosError {
  if (typeof err !== "object" || err === null) return false;
  const c = (err as { code?: unknown }).code;
  if (typeof c !== "string" || !(err instanceof Error)) return false;
  return code === undefined || c === code;
}

/** The message of anything thrown, for logs and one-line CLI errors. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
