import { cstTime } from "@custos/audit";
import { formatFen } from "@custos/client";

/** Tables for people and CSV for spreadsheets, for `custos audit`. Tables show yuan; CSV keeps fen. */

export function table(headers: string[], rows: string[][], right: number[] = []): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.includes(i) ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** RFC 4180: fields with a comma, quote or newline are quoted, quotes doubled. */
export function csv(headers: string[], rows: (string | number | null)[][]): string {
  const cell = (v: string | number | null) => {
    const s = v === null ? "" : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return `${[headers, ...rows].map((r) => r.map(cell).join(",")).join("\r\n")}\r\n`;
}

export const yuan = (fen: string | bigint | null | undefined) =>
  fen === null || fen === undefined ? "" : formatFen(BigInt(fen));
export const signed = (fen: string) => (BigInt(fen) > 0n ? `+${yuan(fen)}` : yuan(fen));
export const pct = (bps: number | null) => (bps === null ? "-" : `${(bps / 100).toFixed(2)} %`);
export const when = (ms: number | null) => (ms === null ? "-" : cstTime(ms));
export const iso = (ms: number) => new Date(ms).toISOString();
const short = (a: string | null) =>
  a === null ? "" : a.length > 20 ? `${a.slice(0, 10)}…${a.slice(-4)}` : a;

// ---------- traces ----------

const TRACE_CSV = [
  "time",
  "height",
  "tx",
  "event_index",
  "tx_hash",
  "sender",
  "emitter",
  "event",
  "kind",
  "amount_fen",
  "delta_fen",
  "balance_fen",
  "counterparty",
  "programme",
  "card",
  "note",
];

export function traceCsv(t: Record<string, any>): string {
  return csv(
    TRACE_CSV,
    (t.rows as Record<string, any>[]).map((r) => [
      iso(r.time),
      r.height,
      r.tx,
      r.index,
      r.txHash,
      r.sender,
      r.emitter,
      r.name,
      r.kind,
      r.amount,
      r.delta,
      r.balance,
      r.counterparty,
      r.programme,
      r.card,
      r.note,
    ]),
  );
}

export function traceText(t: Record<string, any>, names: (a: string | null) => string): string {
  const target = t.target as Record<string, unknown>;
  const what =
    "account" in target
      ? `account ${names(target.account as string)} (e-CNY wallet)`
      : "card" in target
        ? `card ${target.card} of programme ${names(target.programme as string)} (open value)`
        : `programme ${names(target.programme as string)} (escrow account)`;
  const rows = (t.rows as Record<string, any>[]).map((r) => [
    when(r.time),
    String(r.height),
    r.kind,
    yuan(r.amount),
    signed(r.delta),
    yuan(r.balance),
    short(names(r.counterparty)),
    r.note,
  ]);
  return [
    `trace of ${what}, complete to height ${t.height}; ${t.from === null ? "from the start" : `from ${when(t.from)}`} to ${t.to === null ? "now" : when(t.to)} (CST)`,
    `opening ${yuan(t.opening)} yuan`,
    rows.length
      ? table(
          ["time (CST)", "block", "kind", "amount", "change", "balance", "counterparty", "note"],
          rows,
          [1, 3, 4, 5],
        )
      : "(no movements in the range)",
    `closing ${yuan(t.closing)} yuan; at height ${t.height}: ${yuan(t.atHeight)} yuan${t.balance === "ecny" ? " (the chain's balance)" : ""}`,
  ].join("\n");
}

// ---------- reports ----------

const FIGURES = ["sold", "consumed", "released", "refunded", "claimed"] as const;

export const REPORT_SECTIONS = ["merchants", "programmes", "kinds", "days", "months", "large"] as const;
export type ReportSection = (typeof REPORT_SECTIONS)[number];

interface Section {
  headers: string[];
  rows: (string | number | null)[][];
  money: number[];
  rates: number[];
  time?: number;
}

function sectionRows(
  r: Record<string, any>,
  section: ReportSection,
  names: (a: string | null) => string,
): Section {
  switch (section) {
    case "merchants":
      return {
        headers: [
          "merchant",
          "programmes",
          ...FIGURES,
          "fulfilment",
          "refund rate",
          "complaints",
          "risk",
          "rating",
          "reasons",
        ],
        rows: (r.merchants as Record<string, any>[]).map((m) => [
          names(m.merchant),
          String(m.programmes.length),
          ...FIGURES.map((f) => m[f] as string),
          m.fulfilmentRateBps,
          m.refundRateBps,
          `${m.complaints.counted}/${m.complaints.filed}`,
          m.risk.level,
          m.risk.rating,
          (m.risk.reasons as string[]).join("; "),
        ]),
        money: [2, 3, 4, 5, 6],
        rates: [7, 8],
      };
    case "programmes":
      return {
        headers: ["programme", "name", "merchant", "institution", ...FIGURES, "complaints"],
        rows: (r.programmes as Record<string, any>[]).map((p) => [
          p.programme,
          p.name,
          names(p.merchant),
          names(p.institution),
          ...FIGURES.map((f) => p[f] as string),
          `${p.complaints.counted}/${p.complaints.filed}`,
        ]),
        money: [4, 5, 6, 7, 8],
        rates: [],
      };
    case "kinds":
      return {
        headers: ["kind", "cards sold", ...FIGURES],
        rows: (r.byKind as Record<string, any>[]).map((k) => [
          k.kind,
          String(k.cardsSold),
          ...FIGURES.map((f) => k[f]),
        ]),
        money: [2, 3, 4, 5, 6],
        rates: [],
      };
    case "days":
    case "months": {
      const list = (section === "days" ? r.byDay : r.byMonth) as Record<string, any>[];
      return {
        headers: [section === "days" ? "day" : "month", "merchant", "cards sold", ...FIGURES],
        rows: list.map((d) => [
          d.day ?? d.month,
          names(d.merchant),
          String(d.cardsSold),
          ...FIGURES.map((f) => d[f]),
        ]),
        money: [3, 4, 5, 6, 7],
        rates: [],
      };
    }
    case "large":
      return {
        headers: ["time", "height", "tx", "kind", "amount", "from", "to", "programme", "card"],
        rows: (r.largeTransactions as Record<string, any>[]).map((l) => [
          l.time,
          String(l.height),
          l.txHash,
          l.kind,
          l.amount,
          names(l.from),
          names(l.to),
          l.programme,
          l.card === null ? "" : String(l.card),
        ]),
        money: [4],
        rates: [],
        time: 0,
      };
  }
}

export function reportCsv(r: Record<string, any>, section: ReportSection): string {
  const s = sectionRows(r, section, (a) => a ?? "");
  const headers = s.headers.map((h, i) =>
    s.money.includes(i)
      ? `${h.replace(/ /g, "_")}_fen`
      : s.rates.includes(i)
        ? `${h.replace(/ /g, "_")}_bps`
        : h.replace(/ /g, "_"),
  );
  return csv(
    headers,
    s.rows.map((row) => row.map((c, i) => (i === s.time ? iso(c as number) : c === null ? null : c))),
  );
}

export function reportText(
  r: Record<string, any>,
  names: (a: string | null) => string,
  sections: ReportSection[],
): string {
  const out = [
    `supervision report ${r.from === null ? "from the start" : `from ${when(r.from)}`} to ${r.to === null ? "now" : when(r.to)} (CST), complete to height ${r.height}; large transactions from ${yuan(r.threshold)} yuan`,
  ];
  for (const section of sections) {
    const s = sectionRows(r, section, names);
    const rows = s.rows.map((row) =>
      row.map((c, i) =>
        s.money.includes(i)
          ? yuan(c as string)
          : s.rates.includes(i)
            ? pct(c as number | null)
            : i === s.time
              ? when(c as number)
              : String(c ?? ""),
      ),
    );
    out.push("", `${section}:`, rows.length ? table(s.headers, rows, [...s.money, ...s.rates]) : "(none)");
  }
  return out.join("\n");
}

// ---------- reconciliation and clearing ----------

export function reconcileText(r: Record<string, any>, names: (a: string | null) => string): string {
  const c = r.check as Record<string, any>;
  const out = [
    `e-CNY reconciliation ${r.from === null ? "from the start" : `from ${when(r.from)}`} to ${r.to === null ? "now" : when(r.to)} (CST), at height ${r.height}`,
    table(
      ["day", "issued", "issues", "transferred", "transfers"],
      (r.days as Record<string, any>[]).map((d) => [
        d.day,
        yuan(d.issued),
        String(d.issues),
        yuan(d.transferred),
        String(d.transfers),
      ]),
      [1, 2, 3, 4],
    ),
    "",
    `issued (supply) ${yuan(c.supply)} yuan = wallets ${yuan(c.wallets)} + contracts ${yuan(c.contracts)} = ${yuan(c.sum)} yuan over ${c.accounts} accounts: ${c.ok ? "balanced" : `DIFFERENCE ${yuan(c.difference)} yuan`}`,
    `issued by the events ${yuan(r.issuedByEvents)} yuan${r.issuedByEvents === c.supply ? "" : " (DIFFERS from the supply)"}`,
  ];
  for (const d of r.differences as Record<string, any>[])
    out.push(`  DIFFERENCE ${names(d.account)}: state ${yuan(d.state)} yuan, events ${yuan(d.events)} yuan`);
  const m = r.matching as Record<string, any> | undefined;
  if (m) {
    out.push(
      "",
      `recharges: ${m.matched.length} matched, ${m.missingOnChain.length} missing on chain, ${m.notInRecords.length} not in the records, ${m.mismatched.length} mismatched, ${m.duplicateRecords.length} duplicated in the records`,
    );
    for (const x of m.missingOnChain)
      out.push(`  missing on chain: ${x.rechargeId} ${names(x.account)} ${yuan(x.amount)}`);
    for (const x of m.notInRecords)
      out.push(
        `  not in the records: ${x.rechargeId} ${names(x.account)} ${yuan(x.amount)} (tx ${x.txHash})`,
      );
    for (const x of m.mismatched)
      out.push(
        `  mismatched ${x.rechargeId} (${x.fields.join(", ")}): records ${names(x.record.account)} ${yuan(x.record.amount)}, chain ${names(x.onChain.account)} ${yuan(x.onChain.amount)}`,
      );
    for (const x of m.duplicateRecords) out.push(`  duplicated in the records: ${x}`);
  }
  out.push("", r.ok && (!m || m.ok) ? "OK" : "NOT RECONCILED");
  return out.join("\n");
}

export function reconcileCsv(r: Record<string, any>): string {
  return csv(
    ["day", "issued_fen", "issues", "transferred_fen", "transfers"],
    (r.days as Record<string, any>[]).map((d) => [d.day, d.issued, d.issues, d.transferred, d.transfers]),
  );
}

export function clearingText(r: Record<string, any>, names: (a: string | null) => string): string {
  const out = [`clearing between institutions, at height ${r.height} (days in CST)`];
  for (const d of r.days as Record<string, any>[]) {
    out.push(
      "",
      `${d.day}:`,
      table(
        ["institution", "paid", "received", "net"],
        (d.positions as Record<string, any>[]).map((p) => [
          names(p.institution),
          yuan(p.paid),
          yuan(p.received),
          signed(p.net),
        ]),
        [1, 2, 3],
      ),
    );
    for (const b of d.bilateral as Record<string, any>[])
      out.push(
        BigInt(b.net) >= 0n
          ? `  ${names(b.a)} pays ${names(b.b)} ${yuan(b.net)} yuan`
          : `  ${names(b.b)} pays ${names(b.a)} ${yuan(String(-BigInt(b.net)))} yuan`,
      );
    if (d.unassigned.count)
      out.push(
        `  ${d.unassigned.count} payments (${yuan(d.unassigned.amount)} yuan) with a party of no institution`,
      );
  }
  if ((r.days as unknown[]).length === 0) out.push("(no payments between institutions)");
  return out.join("\n");
}

export function clearingCsv(r: Record<string, any>): string {
  const rows: (string | number)[][] = [];
  for (const d of r.days as Record<string, any>[])
    for (const p of d.positions as Record<string, any>[])
      rows.push([d.day, p.institution, p.paid, p.received, p.net]);
  return csv(["day", "institution", "paid_fen", "received_fen", "net_fen"], rows);
}
