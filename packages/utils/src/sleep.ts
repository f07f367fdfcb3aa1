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
