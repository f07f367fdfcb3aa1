import { auditError } from "./errors.js";
import type { AuditEvent } from "./events.js";
import { cstDay } from "./time.js";

/**
 * The e-CNY operator's daily work: issuance matched to recharges, the ledger's money accounted
 * for, and flows between institutions' customers netted (清算).
 */

/** An issuance on chain (ecny Issued). */
export interface Issuance {
  rechargeId: string;
  account: string;
  amount: bigint;
  time: number;
  height: number;
  txHash: string;
}

/** A recharge as the operator's own books record it (the bank side of an issuance). */
export interface RechargeRecord {
  rechargeId: string;
  account: string;
  amount: bigint;
}

export interface RechargeMatch {
  matched: { rechargeId: string; account: string; amount: bigint; txHash: string }[];
  /** In the operator's records, never issued on chain. */
  missingOnChain: RechargeRecord[];
  /** Issued on chain, not in the records. */
  notInRecords: Issuance[];
  /** The same recharge id with another account or amount. */
  mismatched: { rechargeId: string; record: RechargeRecord; onChain: Issuance; fields: string[] }[];
  /** Recharge ids that appear more than once in the records. */
  duplicateRecords: string[];
  ok: boolean;
}

export function issuances(events: readonly AuditEvent[]): Issuance[] {
  return events
    .filter((e) => e.movement.kind === "issue" && e.movement.to)
    .map((e) => ({
      rechargeId: e.movement.rechargeId ?? "",
      account: e.movement.to as string,
      amount: e.movement.amount,
      time: e.time,
      height: e.height,
      txHash: e.txHash,
    }));
}

/** Matches recharges one to one by recharge id (the chain refuses a repeated one). */
export function matchRecharges(
  records: readonly RechargeRecord[],
  onChain: readonly Issuance[],
): RechargeMatch {
  const byId = new Map(onChain.map((i) => [i.rechargeId, i]));
  const seen = new Set<string>();
  const out: RechargeMatch = {
    matched: [],
    missingOnChain: [],
    notInRecords: [],
    mismatched: [],
    duplicateRecords: [],
    ok: true,
  };
  for (const r of records) {
    if (seen.has(r.rechargeId)) {
      if (!out.duplicateRecords.includes(r.rechargeId)) out.duplicateRecords.push(r.rechargeId);
      continue;
    }
    seen.add(r.rechargeId);
    const i = byId.get(r.rechargeId);
    if (!i) {
      out.missingOnChain.push(r);
      continue;
    }
    const fields = [
      ...(i.account !== r.account ? ["account"] : []),
      ...(i.amount !== r.amount ? ["amount"] : []),
    ];
    if (fields.length) out.mismatched.push({ rechargeId: r.rechargeId, record: r, onChain: i, fields });
    else
      out.matched.push({ rechargeId: r.rechargeId, account: r.account, amount: r.amount, txHash: i.txHash });
  }
  for (const i of onChain) if (!seen.has(i.rechargeId)) out.notInRecords.push(i);
  out.ok =
    out.missingOnChain.length === 0 &&
    out.notInRecords.length === 0 &&
    out.mismatched.length === 0 &&
    out.duplicateRecords.length === 0;
  return out;
}

/**
 * Reads an operator's recharge file: CSV with a header naming rechargeId, account and amount
 * (fen, an integer), or a JSON array of such objects.
 */
export function parseRechargeRecords(text: string): RechargeRecord[] {
  const bad = (why: string) => auditError("AUDIT_RECHARGES_INVALID", `recharge records: ${why}`);
  const amount = (v: unknown, where: string): bigint => {
    const s = typeof v === "number" ? String(v) : v;
    if (typeof s !== "string" || !/^(0|[1-9]\d{0,18})$/.test(s.trim()))
      throw bad(`${where}: amount must be fen (an integer)`);
    return BigInt(s.trim());
  };
  const record = (o: Record<string, unknown>, where: string): RechargeRecord => {
    const id = o.rechargeId;
    const account = typeof o.account === "string" ? o.account.trim().toLowerCase() : o.account;
    if (typeof id !== "string" || !/^[A-Za-z0-9._:-]{1,64}$/.test(id.trim()))
      throw bad(`${where}: rechargeId`);
    if (typeof account !== "string" || !/^0x[0-9a-f]{40}$/.test(account))
      throw bad(`${where}: account must be an address`);
    return { rechargeId: id.trim(), account, amount: amount(o.amount, where) };
  };
  const t = text.trim();
  if (t.startsWith("[")) {
    let doc: unknown;
    try {
      doc = JSON.parse(t);
    } catch {
      throw bad("not JSON");
    }
    if (!Array.isArray(doc)) throw bad("expected an array");
    return doc.map((o, i) => record((o ?? {}) as Record<string, unknown>, `[${i}]`));
  }
  const lines = t.split(/\r?\n/).filter((l) => l.trim() !== "");
  const head = (lines[0] ?? "").split(",").map((h) => h.trim());
  const col = (name: string) => {
    const i = head.indexOf(name);
    if (i < 0) throw bad(`the CSV header must name rechargeId, account and amount (got ${head.join(",")})`);
    return i;
  };
  const [ci, ca, cm] = [col("rechargeId"), col("account"), col("amount")];
  return lines.slice(1).map((l, n) => {
    const c = l.split(",");
    return record({ rechargeId: c[ci], account: c[ca], amount: c[cm] }, `line ${n + 2}`);
  });
}

/** A day's issuance and payments. */
export interface DailyEcny {
  day: string;
  issued: bigint;
  issues: number;
  transferred: bigint;
  transfers: number;
}

export function dailyEcny(events: readonly AuditEvent[]): DailyEcny[] {
  const days = new Map<string, DailyEcny>();
  for (const e of events) {
    const m = e.movement;
    if (!m.ecny) continue;
    const day = cstDay(e.time);
    const d = days.get(day) ?? { day, issued: 0n, issues: 0, transferred: 0n, transfers: 0 };
    if (e.name === "Issued") {
      d.issued += m.amount;
      d.issues++;
    } else {
      d.transferred += m.amount;
      d.transfers++;
    }
    days.set(day, d);
  }
  return [...days.values()].sort((a, b) => (a.day < b.day ? -1 : 1));
}

/** Every account's balance against the total issued, at one height. */
export interface BalanceCheck {
  height: number;
  /** Total e-CNY issued (the e-CNY contract's supply). */
  supply: bigint;
  /** Sum of every wallet's and every contract's balance. */
  sum: bigint;
  wallets: bigint;
  contracts: bigint;
  accounts: number;
  /** supply - sum: 0 when every fen is accounted for. */
  difference: bigint;
  ok: boolean;
}

export function balanceCheck(
  height: number,
  supply: bigint,
  balances: readonly { account: string; balance: bigint; contract: boolean }[],
): BalanceCheck {
  const seen = new Set<string>();
  let wallets = 0n;
  let contracts = 0n;
  for (const b of balances) {
    if (seen.has(b.account)) continue;
    seen.add(b.account);
    if (b.contract) contracts += b.balance;
    else wallets += b.balance;
  }
  const sum = wallets + contracts;
  return {
    height,
    supply,
    sum,
    wallets,
    contracts,
    accounts: seen.size,
    difference: supply - sum,
    ok: supply === sum,
  };
}

/** A payment between two institutions' customers. */
export interface InterbankFlow {
  time: number;
  from: string;
  to: string;
  amount: bigint;
}

export interface ClearingDay {
  day: string;
  /** Per institution: paid by its customers to others', received, and net (received - paid). */
  positions: { institution: string; paid: bigint; received: bigint; net: bigint }[];
  /** Per pair (a < b): what a's customers owe b's net of the other way; positive: a pays b. */
  bilateral: { a: string; b: string; net: bigint }[];
  /** Payments where either side has no institution (counted, not netted). */
  unassigned: { count: number; amount: bigint };
  /** Sum of the nets: always 0 for a consistent clearing. */
  total: bigint;
}

/** An account's institution at a height (null: none), from governance's member.institution. */
export type InstitutionOf = (account: string, height: number) => string | null;

/**
 * Nets, per CST day, the e-CNY transfers between customers of different institutions. A
 * payment within one institution's customers is not cleared; a party without an institution is
 * listed as unassigned.
 */
export function clearing(events: readonly AuditEvent[], institutionOf: InstitutionOf): ClearingDay[] {
  const days = new Map<
    string,
    {
      pos: Map<string, { paid: bigint; received: bigint }>;
      pairs: Map<string, bigint>;
      un: { count: number; amount: bigint };
    }
  >();
  for (const e of events) {
    const m = e.movement;
    if (!m.ecny || e.name !== "Transfer" || !m.from || !m.to) continue;
    const day = cstDay(e.time);
    const d = days.get(day) ?? { pos: new Map(), pairs: new Map(), un: { count: 0, amount: 0n } };
    days.set(day, d);
    const a = institutionOf(m.from, e.height);
    const b = institutionOf(m.to, e.height);
    if (a === null || b === null) {
      d.un.count++;
      d.un.amount += m.amount;
      continue;
    }
    if (a === b) continue;
    const pa = d.pos.get(a) ?? { paid: 0n, received: 0n };
    pa.paid += m.amount;
    d.pos.set(a, pa);
    const pb = d.pos.get(b) ?? { paid: 0n, received: 0n };
    pb.received += m.amount;
    d.pos.set(b, pb);
    const [x, y, sign] = a < b ? [a, b, 1n] : [b, a, -1n];
    d.pairs.set(`${x} ${y}`, (d.pairs.get(`${x} ${y}`) ?? 0n) + sign * m.amount);
  }
  return [...days.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([day, d]) => {
      const positions = [...d.pos.entries()]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([institution, p]) => ({ institution, ...p, net: p.received - p.paid }));
      return {
        day,
        positions,
        bilateral: [...d.pairs.entries()]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([k, net]) => {
            const [a, b] = k.split(" ") as [string, string];
            return { a, b, net };
          }),
        unassigned: d.un,
        total: positions.reduce((s, p) => s + p.net, 0n),
      };
    });
}
