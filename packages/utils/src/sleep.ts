import { CustosError } from "./errors.js";

/** Thrown (as the rejection) when an abortable operation is aborted. */
export class AbortedError extends CustosError<"ABORTED"> {
  constructor(reason?: unknown) {
    super("ABORTED", "operation aborted", {}, { cause: reason });
  }
}

/**
 * Resolves after `ms` milliseconds, or rejects with `AbortedError` as soon as `signal` aborts.
 * The timer never outlives the abort.
 */
export function sleep(ms: number, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const { signal } = opts;
  if (signal?.aborted) return Promise.reject(new AbortedError(signal.reason));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AbortedError(signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Waits on a condition, not on a guessed time: calls `probe` every `everyMs` until it returns a
 * truthy value (which it resolves with), and fails with WAIT_TIMEOUT (saying `what`) after
 * `timeoutMs`, or AbortedError when `signal` aborts. Tests, the testnet and the CLI wait with it.
 */
export async function until<T>(
  probe: () => T | Promise<T>,
  o: { timeoutMs?: number; everyMs?: number; what?: string; signal?: AbortSignal } = {},
): Promise<NonNullable<T>> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end)
      throw new CustosError("WAIT_TIMEOUT", `${o.what ?? "condition"} not met within ${timeoutMs} ms`);
    await sleep(o.everyMs ?? 50, o.signal ? { signal: o.signal } : {});
  }
}
