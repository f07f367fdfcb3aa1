/**
 * Hard limits of the wire format: anything larger is refused before it is decoded. A node may
 * configure lower limits (pool admission); it can never accept more than these.
 */
export const LIMITS = {
  maxTxBytes: 64 * 1024,
  maxTxArgsBytes: 60 * 1024,
  maxChainIdLength: 64,
  maxMethodLength: 64,
  maxMemoLength: 256,
  maxHeaderBytes: 1024,
  maxBlockBytes: 32 * 1024 * 1024,
  maxTxsPerBlock: 50_000,
  maxValidators: 256,
  maxReceiptBytes: 1024 * 1024,
  maxEventsPerReceipt: 256,
  maxEventDataBytes: 16 * 1024,
  maxErrorMessageLength: 1024,
} as const;

export const CHAIN_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** A contract address (0x + 40 hex) or a system contract name. */
export const TARGET_RE = /^(0x[0-9a-f]{40}|[a-z][a-z0-9_.]{0,31})$/;
export const METHOD_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
export const EVENT_NAME_RE = /^[A-Za-z_][A-Za-z0-9_:.]{0,63}$/;
export const ERROR_CODE_RE = /^[A-Z][A-Z0-9_]{0,63}$/;
