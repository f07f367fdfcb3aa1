/**
 * The VM's consensus rules: the gas schedule and the limits. Every validator must run the same
 * numbers (and the same QuickJS build, see ENGINE in vm.ts): changing any of them is a fork.
 *
 * Gas never depends on what ran before: every call starts from the same bytes, the memory of
 * the contract's instance as it was snapshotted after loading (vm.ts restores it after each
 * call), so the interrupt counter, the heap and the GC start from the same state each time.
 */
export const GAS = {
  /** Charged once per call (restoring the instance, entering the method). */
  call: 5_000n,
  /** QuickJS calls the interrupt handler once every 10,000 interpreter ticks. */
  interrupt: 1_000n,
  /** Every host call, on top of what it does. */
  hostCall: 20n,
  read: 200n,
  /** Per byte of key and value read. */
  readByte: 1n,
  write: 1_000n,
  /** Per byte of key and value stored. */
  writeByte: 10n,
  /** Per entry a prefix scan returns. */
  scanEntry: 100n,
  event: 500n,
  eventByte: 10n,
  transfer: 2_000n,
  /** A member-registry lookup (memberOf): like a read, plus readByte per byte of the answer. */
  member: 200n,
  /** Per 16 characters or elements produced by repeat, padStart, padEnd, join and fill. */
  builtinUnits: 1n,
} as const;

export const VM_LIMITS = {
  /** Per transaction (and per query). */
  gasPerCall: 2_000_000n,
  /** QuickJS heap per call. */
  memoryBytes: 8 * 1024 * 1024,
  /**
   * QuickJS stack per call. Small on purpose: QuickJS's own check must fire well before V8's
   * native stack (which also carries the WebAssembly frames, and whose use depends on JIT tier and
   * platform) runs out, or deep nesting would fail differently on different nodes. Measured here:
   * JSON.stringify of deep nesting overflowed V8 first at 128 KiB and not at 64 KiB; JS recursion
   * gets ~200 frames.
   */
  stackBytes: 64 * 1024,
  maxKeyLength: 256,
  maxValueBytes: 64 * 1024,
  maxScanEntries: 256,
  maxEvents: 64,
  maxEventBytes: 8 * 1024,
  maxOutputBytes: 64 * 1024,
  // fits in one transaction (LIMITS.maxTxArgsBytes 60 KiB) with the template metadata
  maxCodeBytes: 56 * 1024,
} as const;

/** Keys are printable ASCII, so JS string order is byte order (prefix scans agree everywhere). */
export const KEY_RE = /^[\x20-\x7e]{1,256}$/;
/** The contract's own error codes in `custos.revert(code, message)`. */
export const REVERT_CODE_RE = /^[A-Z][A-Z0-9_]{0,63}$/;
