import { CustosError, errorMessage, isCustosError } from "@custos/utils";

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

/** Maps anything thrown by a method to a JSON-RPC error object (internal details are not leaked). */
export function toRpcError(err: unknown): RpcErrorObject {
  if (err instanceof RpcError)
    return { code: err.rpcCode, message: err.message, data: { code: err.code, ...err.meta } };
  if (isCustosError(err)) {
    const e = err as CustosError;
    const retryable = e.meta.retryable === true;
    const code = NOT_FOUND.test(e.code) ? RpcCode.notFound : RpcCode.rejected;
    return { code, message: e.message, data: { code: e.code, ...(retryable ? { retryable } : {}) } };
  }
  return {
    code: RpcCode.internal,
    message: `internal error: ${errorMessage(err)}`,
    data: { code: "INTERNAL" },
  };
}
