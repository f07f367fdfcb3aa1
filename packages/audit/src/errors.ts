import { CustosError } from "@custos/utils";

/** The audit package's own codes (the node's audit index adds AUDIT_INDEX_*). */
export type AuditErrorCode =
  /** A query's parameters are wrong: which one, and why. */
  | "AUDIT_INVALID_QUERY"
  /** A file is not an audit export (its shape, a field, an encoding): which field. */
  | "AUDIT_EXPORT_INVALID"
  /** The genesis given to the verifier is not the chain the export comes from. */
  | "AUDIT_GENESIS_MISMATCH"
  /** An operator's recharge file could not be read as records. */
  | "AUDIT_RECHARGES_INVALID";

export function auditError(code: AuditErrorCode, message: string, meta: Record<string, unknown> = {}) {
  return new CustosError<AuditErrorCode>(code, message, meta);
}
