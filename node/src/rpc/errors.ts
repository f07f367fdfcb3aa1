import { randomUUID } from "node:crypto";
import { CustosError, isCustosError } from "@custos/utils";

/** The RPC's own codes (methods add those of the modules they call). */
export type RpcErrorName =
  | "BLOCK_NOT_FOUND"
  | "BLOCK_PRUNED"
  | "BACKUP_RUNNING"
  | "BACKUP_NOT_FOUND"
  | "FORBIDDEN"
  | "INVALID_PARAMS"
  | "INVALID_REQUEST"
  | "METHOD_NOT_FOUND"
  | "OBSERVER_READ_ONLY"
  | "PARSE_ERROR"
  | "RATE_LIMITED"
  | "REQUEST_TOO_LARGE"
  | "RPC_LISTEN_FAILED"
  | "RPC_PORT_IN_USE"
  | "SNAPSHOT_UNAVAILABLE"
  | "SUBSCRIPTIONS_NEED_WEBSOCKET"
  | "TOO_MANY_SUBSCRIPTIONS"
  | "TX_NOT_FOUND"
  | "TX_TOO_LARGE"
  | "UNAUTHORIZED"
  | "INTERNAL";

/** JSON-RPC 2.0 error numbers; `data.code` carries Custos's stable string code. */
export const RpcCode = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internal: -32603,
  /** The request was understood but refused (admission, authorisation, business rule). */
  rejected: -32000,
  notFound: -32004,
  unauthorized: -32001,
  forbidden: -32003,
  rateLimited: -32029,
  tooLarge: -32013,
} as const;

export class RpcError extends CustosError {
  constructor(
    readonly rpcCode: number,
    code: string,
    message: string,
    meta: Record<string, unknown> = {},
  ) {
    super(code, message, meta);
  }
}

export function invalidParams(message: string): RpcError {
  return new RpcError(RpcCode.invalidParams, "INVALID_PARAMS", message);
}

const NOT_FOUND = /(_NOT_FOUND|^NOT_FOUND)$/;

export interface RpcErrorObject {
  code: number;
  message: string;
  data: { code: string; retryable?: boolean; [k: string]: unknown };
}

/**
 * Maps anything thrown by a method to a JSON-RPC error object. A CustosError's message is meant
 * for the client (it says what was wrong and what to do); anything else is a fault of the node:
 * the client gets INTERNAL with an id, and `internal` is told the error with that id (the node
 * logs it), so no stack, path or library message reaches the client.
 */
export function toRpcError(err: unknown, internal?: (id: string, err: unknown) => void): RpcErrorObject {
  if (isCustosError(err) && typeof (err as { rpcCode?: unknown }).rpcCode === "number") {
    const e = err as RpcError;
    return { code: e.rpcCode, message: e.message, data: { code: e.code, ...e.meta } };
  }
  if (isCustosError(err)) {
    const e = err as CustosError;
    const retryable = e.meta.retryable === true;
    const code = NOT_FOUND.test(e.code) ? RpcCode.notFound : RpcCode.rejected;
    return { code, message: e.message, data: { code: e.code, ...(retryable ? { retryable } : {}) } };
  }
  const id = randomUUID();
  internal?.(id, err);
  return {
    code: RpcCode.internal,
    message: `internal error (logged on the node as ${id})`,
    data: { code: "INTERNAL", id },
  };
}
