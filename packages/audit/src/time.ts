import { auditError } from "./errors.js";

/**
 * Time in audit figures: block timestamps (ms since the epoch); days and months are China
 * Standard Time (UTC+8), as the e-CNY daily limits are. A day is [00:00, 24:00) CST.
 */
export const CST_OFFSET_MS = 8 * 3_600_000;
export const DAY_MS = 86_400_000;

function iso(ms: number): string {
  return new Date(ms + CST_OFFSET_MS).toISOString();
}

/** "2026-05-01" (CST) of a timestamp. */
export function cstDay(ms: number): string {
  return iso(ms).slice(0, 10);
}

/** "2026-05" (CST) of a timestamp. */
export function cstMonth(ms: number): string {
  return iso(ms).slice(0, 7);
}

/** The timestamp as "2026-05-01 14:03:07" CST, for tables. */
export function cstTime(ms: number): string {
  return iso(ms).slice(0, 19).replace("T", " ");
}

/** Midnight CST that starts the day "YYYY-MM-DD". */
export function cstDayStart(day: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) throw auditError("AUDIT_INVALID_QUERY", `${day} is not a date (YYYY-MM-DD)`);
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) - CST_OFFSET_MS;
  if (!Number.isFinite(t) || cstDay(t) !== day)
    throw auditError("AUDIT_INVALID_QUERY", `${day} is not a date`);
  return t;
}

/**
 * A time bound from a command line or a request: ms since the epoch, a date "YYYY-MM-DD" (CST;
 * as an end bound, the end of that day), or "YYYY-MM-DDTHH:MM[:SS]" (CST unless it ends in Z or
 * an offset). Returns ms; `end` bounds are inclusive.
 */
export function parseTimeBound(v: string | number, end: boolean, name = "time"): number {
  if (typeof v === "number" || /^\d{1,16}$/.test(v)) {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0)
      throw auditError("AUDIT_INVALID_QUERY", `${name} ${v} is not a time`);
    return n;
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    let day: number;
    try {
      day = cstDayStart(v);
    } catch {
      throw auditError("AUDIT_INVALID_QUERY", `${name} ${JSON.stringify(v)} is not a date of the calendar`);
    }
    return end ? day + DAY_MS - 1 : day;
  }
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2})?$/.exec(v);
  if (m) {
    const t = Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4] ?? "00"}${m[5] ?? "+08:00"}`);
    if (Number.isFinite(t)) return end && m[4] === undefined ? t + 59_999 : t;
  }
  throw auditError(
    "AUDIT_INVALID_QUERY",
    `${name} ${JSON.stringify(v)}: give a date (2026-05-01), a time (2026-05-01T14:30, CST unless Z or an offset), or ms since the epoch`,
  );
}

/** A range [from, to] (inclusive ms); either end open (null). */
export interface TimeRange {
  from: number | null;
  to: number | null;
}

export function inRange(t: number, r: TimeRange): boolean {
  return (r.from === null || t >= r.from) && (r.to === null || t <= r.to);
}
