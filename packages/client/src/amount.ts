import { CustosError } from "@custos/utils";

/** "12.34" yuan -> 1234n fen. At most two decimals; no floats anywhere. */
export function parseYuan(text: string): bigint {
  const m = /^(0|[1-9][0-9]{0,15})(?:\.([0-9]{1,2}))?$/.exec(text.trim());
  if (!m) {
    throw new CustosError(
      "INVALID_AMOUNT",
      `amount ${JSON.stringify(text)}: give yuan with at most two decimals, e.g. 12.34`,
    );
  }
  return BigInt(m[1] as string) * 100n + BigInt((m[2] ?? "").padEnd(2, "0"));
}

/** 1234n fen -> "12.34". */
export function formatFen(fen: bigint): string {
  const sign = fen < 0n ? "-" : "";
  const abs = fen < 0n ? -fen : fen;
  return `${sign}${abs / 100n}.${(abs % 100n).toString().padStart(2, "0")}`;
}
