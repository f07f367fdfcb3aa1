/**
 * The template's arithmetic, with no access to the chain: money is bigint fen, time is integer
 * ms, shares are basis points (1/100 of a percent). Every division rounds in the consumer's
 * favour: what is consumed (and so released to the merchant) rounds down, what stays in escrow
 * rounds up, so the escrow never holds less than its share of the unconsumed value.
 */

export const DAY_MS = 86_400_000;
export const HOUR_MS = 3_600_000;
/** China Standard Time: "today" for daily limits is the calendar day in UTC+8. */
export const CST_OFFSET_MS = 8 * HOUR_MS;
export const BPS = 10_000n;

/** The most cards one forceRefund transaction refunds (each stays within the gas limit). */
export const MAX_REFUND_BATCH = 60;

/**
 * The national floor of the escrowed share by issuer class (单用途商业预付卡管理办法: group and
 * brand issuers keep at least 20 % of their outstanding prepaid balance in custody, scale issuers
 * 30 %, other issuers 40 %). A programme's parameters may only be stricter.
 */
export const NATIONAL_ESCROW_FLOOR_BPS = { group: 2000, brand: 2000, scale: 3000, other: 4000 } as const;
export type IssuerClass = keyof typeof NATIONAL_ESCROW_FLOOR_BPS;

/** Period cards: days per period. */
export const PERIOD_DAYS = { week: 7, month: 30, quarter: 91, year: 365 } as const;
export type Period = keyof typeof PERIOD_DAYS;

export function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/** The escrowed part of a price: ceil(price × share / 10,000). */
export function escrowBase(price: bigint, shareBps: number): bigint {
  return ceilDiv(price * BigInt(shareBps), BPS);
}

/**
 * The money a card has delivered once `used` of its `units` are used (face value in fen, uses,
 * or ms of term): floor(paid × used / units), and all of it once every unit is used.
 */
export function consumedMoney(paid: bigint, units: bigint, used: bigint): bigint {
  return used >= units ? paid : (paid * used) / units;
}

/**
 * What must stay in escrow for a card that has delivered `consumed` of `paid`: its escrowed share
 * of the unconsumed part, ceil(base × (paid - consumed) / paid). It never exceeds the unconsumed
 * part (base <= paid) and falls as consumption grows, so every release is >= 0.
 */
export function escrowFor(paid: bigint, base: bigint, consumed: bigint): bigint {
  return ceilDiv(base * (paid - consumed), paid);
}

/** The refund fee on a voluntary refund after cooling-off: floor(escrow × fee / 10,000). */
export function refundFee(escrow: bigint, feeBps: number): bigint {
  return (escrow * BigInt(feeBps)) / BPS;
}

/** Integer basis points of a ratio (0 when the whole is 0). */
export function ratioBps(part: bigint, whole: bigint): number {
  return whole === 0n ? 0 : Number((part * BPS) / whole);
}

export function dayIndex(time: number): number {
  return Math.floor((time + CST_OFFSET_MS) / DAY_MS);
}

export function hourIndex(time: number): number {
  return Math.floor(time / HOUR_MS);
}
