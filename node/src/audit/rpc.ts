import {
  checkTarget,
  cstDayStart,
  DAY_MS,
  type ExportQuery,
  exportToJson,
  parseTimeBound,
  type TimeRange,
} from "@custos/audit";
import { ADDRESS_RE, SUBJECT_RE } from "@custos/types";
import { CustosError, isCustosError } from "@custos/utils";
import { invalidParams } from "../rpc/errors.js";
import type { MethodSpec } from "../rpc/methods.js";
import type { AuditIndexErrorCode } from "./auditIndex.js";
import { type AuditService, rechargeRecords } from "./auditService.js";

/**
 * The audit RPC (read scope: observers serve it to auditors, the explorer reads it). Each method
 * takes one object of named parameters; times are ms since the epoch or "YYYY-MM-DD[THH:MM]"
 * (CST), amounts fen as decimal strings. README.md, "Audit", lists them.
 */

function paramsOf(params: unknown[]): Record<string, unknown> {
  const p = params[0] ?? {};
  if (typeof p !== "object" || p === null || Array.isArray(p))
    throw invalidParams("audit methods take one object of named parameters");
  return p as Record<string, unknown>;
}

/** A query's bad parameter is INVALID_PARAMS (the message says which and why). */
function checked<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (isCustosError(err, "AUDIT_INVALID_QUERY") || isCustosError(err, "AUDIT_RECHARGES_INVALID"))
      throw invalidParams((err as Error).message);
    throw err;
  }
}

function range(p: Record<string, unknown>): TimeRange {
  return checked(() => {
    if (p.date !== undefined) {
      if (typeof p.date !== "string") throw invalidParams("date is YYYY-MM-DD (CST)");
      const from = cstDayStart(p.date);
      return { from, to: from + DAY_MS - 1 };
    }
    const bound = (v: unknown, end: boolean, name: string) => {
      if (v === undefined || v === null) return null;
      if (typeof v !== "string" && typeof v !== "number") throw invalidParams(`${name} is a time`);
      return parseTimeBound(v, end, name);
    };
    const r = { from: bound(p.from, false, "from"), to: bound(p.to, true, "to") };
    if (r.from !== null && r.to !== null && r.to < r.from) throw invalidParams("to is before from");
    return r;
  });
}

function fen(v: unknown, name: string): bigint | null {
  if (v === undefined || v === null) return null;
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === "string" && /^(0|[1-9]\d{0,18})$/.test(v)) return BigInt(v);
  throw invalidParams(`${name} is an amount in fen (a decimal string)`);
}

function address(v: unknown, name: string): string {
  if (typeof v !== "string" || !ADDRESS_RE.test(v))
    throw invalidParams(`${name} must be an address (0x + 40 lowercase hex)`);
  return v;
}

function limit(v: unknown, max: number, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1 || v > max)
    throw invalidParams(`limit is an integer from 1 to ${max}`);
  return v;
}

function programmes(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length > 10_000) throw invalidParams("programmes is an array of addresses");
  return v.map((a, i) => address(a, `programmes[${i}]`));
}

function exportQuery(p: Record<string, unknown>): ExportQuery {
  const r = range(p);
  if (p.kind === "trace")
    return {
      kind: "trace",
      target: checked(() => checkTarget({ account: p.account, programme: p.programme, card: p.card })),
      ...r,
    };
  if (p.kind === "report")
    return {
      kind: "report",
      programmes: programmes(p.programmes) ?? [],
      ...r,
      threshold: fen(p.threshold, "threshold") ?? -1n,
    };
  if (p.kind === "reconciliation") return { kind: "reconciliation", accounts: [] };
  throw invalidParams("kind is trace, report or reconciliation");
}

/** The audit_* methods; without an index (config audit.index false), each says so. */
export function auditRpcMethods(
  service: AuditService | undefined,
  defaultThreshold: bigint,
): Record<string, MethodSpec> {
  const m = (fn: (p: Record<string, unknown>) => Promise<unknown>): MethodSpec => ({
    scope: "read",
    fn: async (params) => {
      if (!service)
        throw new CustosError<AuditIndexErrorCode>(
          "AUDIT_INDEX_DISABLED",
          "this node runs without an audit index (config.json audit.index is false); ask an observer",
        );
      return fn(paramsOf(params));
    },
  });
  const s = () => service as AuditService;
  return {
    audit_status: m(async () => s().status()),
    audit_programmes: m(async () => s().programmes()),
    /** {account} | {programme} | {programme, card}, from?, to? */
    audit_trace: m(async (p) =>
      s().trace(
        checked(() => checkTarget({ account: p.account, programme: p.programme, card: p.card })),
        range(p),
      ),
    ),
    /** from?, to? | date?, threshold? (fen), programmes? */
    audit_report: m(async (p) =>
      s().report(range(p), fen(p.threshold, "threshold"), programmes(p.programmes)),
    ),
    /** from?, to? | date?, recharges? [{rechargeId, account, amount}] */
    audit_reconcile: m(async (p) =>
      s().reconcile(
        range(p),
        p.recharges === undefined ? undefined : checked(() => rechargeRecords(p.recharges)),
      ),
    ),
    audit_clearing: m(async (p) => s().clearing(range(p))),
    audit_largeTransactions: m(async (p) => s().largeTransactions(range(p), fen(p.threshold, "threshold"))),
    /** subject? | account? | programme? [card?] | emitter? + name?, from?, to?, limit?, cursor? */
    audit_events: m(async (p) => {
      let subject: string | undefined;
      if (p.subject !== undefined) {
        if (typeof p.subject !== "string" || !SUBJECT_RE.test(p.subject))
          throw invalidParams("subject is an address or kind:id (card:12, proposal:3, complaint:5)");
        subject = p.subject;
      } else if (p.account !== undefined) subject = address(p.account, "account");
      else if (p.card !== undefined) {
        if (typeof p.card !== "number" || !Number.isSafeInteger(p.card) || p.card < 1)
          throw invalidParams("card is a card id");
        subject = `card:${p.card}`;
      } else if (p.programme !== undefined) subject = address(p.programme, "programme");
      let name: { kind: string; name: string } | undefined;
      if (!subject && p.name !== undefined) {
        if (typeof p.name !== "string" || !/^[A-Za-z_][A-Za-z0-9_:.]{0,63}$/.test(p.name))
          throw invalidParams("name is an event name");
        const emitter = p.emitter ?? "vm";
        if (typeof emitter !== "string" || !/^(vm|[a-z][a-z0-9_.]{0,31})$/.test(emitter))
          throw invalidParams('emitter is a system contract (ecny, members, ...) or "vm" for contracts');
        name = { kind: emitter, name: p.name };
      }
      let cursor: { height: number; tx: number; index: number } | undefined;
      if (p.cursor !== undefined && p.cursor !== null) {
        const c = typeof p.cursor === "string" ? /^(\d+):(\d+):(\d+)$/.exec(p.cursor) : null;
        if (!c) throw invalidParams("cursor is the next of the previous page");
        cursor = { height: Number(c[1]), tx: Number(c[2]), index: Number(c[3]) };
      }
      const events = await s().events({
        ...(subject ? { subject } : {}),
        ...(name ? { name } : {}),
        range: range(p),
        limit: limit(p.limit, 1000, 100),
        ...(cursor ? { cursor } : {}),
        ...(subject && p.card !== undefined && p.programme !== undefined
          ? { emitter: address(p.programme, "programme") }
          : {}),
      });
      return events;
    }),
    /** account (or contract), from?, to?, limit? */
    audit_txs: m(async (p) => s().txs(address(p.account, "account"), range(p), limit(p.limit, 10_000, 1000))),
    /** kind: trace ({account} | {programme[, card]}) | report (programmes?, threshold?) | reconciliation; from?, to? */
    audit_export: m(async (p) => {
      const q = exportQuery(p);
      if (q.kind === "report" && q.threshold < 0n) q.threshold = defaultThreshold;
      return exportToJson(await s().export(q));
    }),
  };
}
