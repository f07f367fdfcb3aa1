import { CustosError } from "@custos/utils";

export type DecodeErrorCode =
  | "DECODE_MALFORMED"
  | "DECODE_TOO_LARGE"
  | "DECODE_WRONG_TYPE"
  | "DECODE_WRONG_LENGTH"
  | "DECODE_OUT_OF_RANGE"
  | "DECODE_UNKNOWN_VERSION"
  | "DECODE_NON_CANONICAL";

/**
 * Why untrusted bytes were refused. `meta.structure` and `meta.field` name what was wrong
 * (e.g. `Tx.value`), so a peer's or client's mistake can be reported precisely.
 */
export class DecodeError extends CustosError<DecodeErrorCode> {
  constructor(code: DecodeErrorCode, structure: string, field: string, detail: string) {
    super(code, `${structure}${field ? `.${field}` : ""}: ${detail}`, { structure, field });
    this.name = "DecodeError";
  }
}
