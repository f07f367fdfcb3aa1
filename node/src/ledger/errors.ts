/** Why the ledger refused to open, to reset or to take a block. */
export type LedgerErrorCode =
  | "DISK_WRITE_FAILED"
  | "GENESIS_MISMATCH"
  | "LEDGER_CORRUPT"
  | "LEDGER_EXISTS"
  | "LEDGER_MISSING"
  | "LEDGER_NOT_NEXT"
  | "LEDGER_OPEN_FAILED"
  | "LEDGER_ROLLED_BACK"
  | "LEDGER_WRITE_FAILED"
  | "NODE_RUNNING"
  | "SNAPSHOT_INVALID";
