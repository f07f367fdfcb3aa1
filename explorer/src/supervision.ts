// The regulator's view (audit_report, audit_trace): every programme's sales, consumption,
// refunds and escrow, each merchant's fulfilment and risk level, and one card's fund flow drawn
// as a picture: purchase -> escrow -> releases to the merchant / refunds to the holder.

import { msgpackArgs } from "./args.js";
import { chart } from "./chart.js";
import { addrLink, card, csvButton, fields, h, link, put, s, table, time, txLink, yuan } from "./dom.js";
import { type Json, rpc } from "./rpc.js";

const pct = (bps: number | null | undefined) =>
  bps === null || bps === undefined ? "-" : `${(bps / 100).toFixed(2)} %`;

export async function supervisionPage(main: HTMLElement): Promise<void> {
  const r = await rpc("audit_report", {});
  const progHead = [
    "Programme",
    "Merchant",
    "Sold",
    "Cards sold",
    "Consumed",
    "Released",
    "Refunded",
    "Forced refunds",
    "Complaints",
  ];
  const progCells = (p: Json) => [
    p.name,
    p.merchant,
    yuan(p.sold),
    p.cardsSold,
    yuan(p.consumed),
    yuan(p.released),
    yuan(p.refunded),
    yuan(p.forcedRefunds),
    p.complaints?.filed ?? 0,
  ];
  const merchHead = ["Merchant", "Sold", "Fulfilment", "Refund rate", "Complaints", "Frozen", "Risk", "Why"];
  const merchCells = (m: Json) => [
    m.merchant,
    yuan(m.sold),
    pct(m.fulfilmentRateBps),
    pct(m.refundRateBps),
    m.complaints?.filed ?? 0,
    m.frozen ? "yes" : "no",
    `${m.risk.level} (${m.risk.rating})`,
    m.risk.reasons.join("; "),
  ];
  put(
    main,
    h("h1", {}, "Supervision"),
    h("p", {}, `Prepaid-fund figures from this node's audit index, up to block #${r.height}.`),
    card(
      `Programmes (${r.programmes.length})`,
      csvButton("programmes.csv", progHead, () => r.programmes.map((p: Json) => progCells(p).map(String))),
      table(
        progHead,
        r.programmes.map((p: Json) => {
          const c = progCells(p);
          return [link(`#/programme/${p.programme}`, p.name), addrLink(p.merchant), ...c.slice(2)];
        }),
        { id: "programmes" },
      ),
    ),
    card(
      "Merchants: fulfilment and risk",
      csvButton("merchants.csv", merchHead, () => r.merchants.map((m: Json) => merchCells(m).map(String))),
      table(
        merchHead,
        r.merchants.map((m: Json) => {
          const c = merchCells(m);
          return [
            addrLink(m.merchant),
            ...c.slice(1, 6),
            h("span", { class: `risk ${m.risk.level}` }, c[6] as string),
            c[7],
          ];
        }),
      ),
    ),
    card(
      `Large movements of escrow (over ${yuan(r.threshold)})`,
      table(
        ["Time", "Kind", "Amount", "Programme", "Card", "Tx"],
        r.largeTransactions.map((t: Json) => [
          time(t.time),
          t.kind,
          yuan(t.amount),
          addrLink(t.programme),
          t.card ?? "-",
          txLink(t.txHash),
        ]),
      ),
    ),
  );
}

export async function programmePage(main: HTMLElement, programme: string): Promise<void> {
  const [tr, money, info, complaints] = await Promise.all([
    rpc("audit_trace", { programme }),
    // the contract's own account of its money, at the latest block
    rpc("custos_call", programme, "escrowSummary", msgpackArgs()).catch(() => undefined),
    rpc("custos_call", programme, "programme", msgpackArgs()).catch(() => undefined),
    rpc("custos_call", "complaints", "list", msgpackArgs({ map: { programme } }, 500)).catch(() => []),
  ]);
  const rows: Json[] = tr.rows;
  const filed: Json[] = complaints;
  const complaintHead = [
    "#",
    "Filed",
    "Category",
    "Consumer",
    "Status",
    "Classification",
    "Severity",
    "Outcome",
    "Details (SM3)",
  ];
  const complaintCells = (c: Json) => [
    c.id,
    time(c.filedAt),
    c.category,
    c.consumer,
    c.status,
    c.classification ?? "-",
    c.severity ?? "-",
    c.outcome ?? "-",
    c.detailsHash,
  ];
  const cards = [...new Set(rows.filter((r) => r.card).map((r) => r.card as number))].sort((a, b) => a - b);
  const head = ["Time", "Block", "Kind", "Card", "Amount", "Account after", "Tx", "Note"];
  const cells = (r: Json) => [
    time(r.time),
    r.height,
    r.kind,
    r.card ?? "",
    yuan(r.delta),
    yuan(r.balance),
    r.txHash,
    r.note,
  ];
  put(
    main,
    h("h1", {}, "Programme"),
    h("p", { class: "mono wrap" }, programme),
    card(
      "Money",
      fields([
        // from the contract when it answered: the same block as the figures below
        ["Programme account (e-CNY)", yuan(money?.balance ?? tr.closing)],
        ...((money
          ? [
              ["In escrow", yuan(money.escrowed)],
              ["Due to the merchant (released, not yet claimed)", yuan(money.due)],
              ["Sold", yuan(money.sold)],
              ["Released to the merchant", yuan(money.released)],
              ["Refunded", yuan(money.refunded)],
              ["Claimed by the merchant", yuan(money.claimed)],
            ]
          : []) as [string, string][]),
        ...((info?.escrowShareBps !== undefined
          ? [["Share of each price escrowed", pct(Number(info.escrowShareBps))]]
          : []) as [string, string][]),
        ["Movements", String(rows.length)],
      ]),
      h(
        "p",
        { class: "muted" },
        "The programme account holds what is in escrow and what was released to the merchant and not yet claimed.",
      ),
    ),
    chart({
      label: "Programme account (escrow + due to the merchant), yuan, by block",
      kind: "line",
      unit: "¥",
      points: rows.map((r) => ({ x: r.height, y: Number(BigInt(r.balance)) / 100 })),
    }),
    card(
      `Cards (${cards.length})`,
      h("p", {}, ...cards.flatMap((c) => [link(`#/card/${programme}/${c}`, `card #${c}`), " "])),
    ),
    card(
      `Complaints (${filed.length})`,
      csvButton(`complaints-${programme}.csv`, complaintHead, () =>
        filed.map((c) => complaintCells(c).map(String)),
      ),
      filed.length === 0
        ? h("p", { class: "muted" }, "No complaint has been filed about this programme.")
        : table(
            complaintHead,
            filed.map((c) => {
              const x = complaintCells(c);
              return [
                ...x.slice(0, 3),
                addrLink(c.consumer),
                ...x.slice(4, 8),
                h("span", { class: "mono small" }, `${String(c.detailsHash).slice(0, 18)}…`),
              ];
            }),
            { id: "complaints" },
          ),
    ),
    card(
      "Movements",
      csvButton(`programme-${programme}.csv`, head, () => rows.map((r) => cells(r).map(String))),
      table(
        head,
        rows.map((r) => [...cells(r).slice(0, 6), txLink(r.txHash), r.note]),
      ),
    ),
  );
}

/**
 * The refund fees a card's refunds paid to the merchant: a refund takes the refund and its fee
 * out of the card (the row's delta), and the holder gets the amount.
 */
function refundFees(rows: Json[]): bigint {
  let fees = 0n;
  for (const r of rows) {
    if (r.kind !== "refund" && r.kind !== "forced-refund") continue;
    const out = -BigInt(r.delta ?? 0);
    const amount = BigInt(r.amount ?? 0);
    if (out > amount) fees += out - amount;
  }
  return fees;
}

function box(x: number, y: number, title: string, value: string, cls: string) {
  return s(
    "g",
    { class: `node ${cls}` },
    s("rect", { x, y, width: 150, height: 56, rx: 8 }),
    s("text", { x: x + 75, y: y + 22, "text-anchor": "middle", class: "t" }, title),
    s("text", { x: x + 75, y: y + 42, "text-anchor": "middle", class: "v" }, value),
  );
}

function arrow(x1: number, y1: number, x2: number, y2: number, amount: bigint, max: bigint, label: string) {
  const w = amount === 0n || max === 0n ? 1 : 2 + Math.round((Number(amount) / Number(max)) * 12);
  const mx = (x1 + x2) / 2;
  return s(
    "g",
    { class: amount === 0n ? "flow none" : "flow" },
    s("path", {
      d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`,
      "stroke-width": w,
      fill: "none",
      "marker-end": "url(#head)",
    }),
    s("text", { x: mx, y: (y1 + y2) / 2 - 8, "text-anchor": "middle" }, `${label} ${yuan(amount)}`),
  );
}

export async function cardPage(main: HTMLElement, programme: string, id: number): Promise<void> {
  const [tr, view, info] = await Promise.all([
    rpc("audit_trace", { programme, card: id }),
    // where the card's money is, as the contract accounts it (paid = in escrow + released + refunded)
    rpc("custos_call", programme, "card", msgpackArgs(id)),
    rpc("custos_call", programme, "programme", msgpackArgs()).catch(() => undefined),
  ]);
  const rows: Json[] = tr.rows;
  const fees = refundFees(rows);
  const paid = BigInt(view.paid);
  const escrow = BigInt(view.escrow);
  const released = BigInt(view.released);
  const refunded = BigInt(view.refunded);
  const max = [paid, released, refunded].reduce((a, b) => (a > b ? a : b), 0n);
  const share = info?.escrowShareBps === undefined ? undefined : Number(info.escrowShareBps);
  const picture = s(
    "svg",
    {
      viewBox: "0 0 700 240",
      class: "flow-picture",
      id: "fund-flow",
      role: "img",
      "aria-label": `Fund flow of card ${id}`,
    },
    s(
      "defs",
      {},
      s(
        "marker",
        // sized in the picture's units, not the stroke's: a thick flow keeps a head of the same size
        {
          id: "head",
          viewBox: "0 0 10 10",
          markerUnits: "userSpaceOnUse",
          markerWidth: 14,
          markerHeight: 14,
          refX: 9,
          refY: 5,
          orient: "auto",
        },
        s("path", { d: "M0,0 L10,5 L0,10 z" }),
      ),
    ),
    box(10, 92, "Consumer wallet", `paid ${yuan(paid)}`, "wallet"),
    box(275, 92, `Card #${id}`, `in escrow ${yuan(escrow)}`, "escrow"),
    box(
      540,
      20,
      "Merchant",
      fees > 0n ? `${yuan(released)} (fee ${yuan(fees)})` : yuan(released),
      "merchant",
    ),
    box(540, 164, "Refund to holder", yuan(refunded), "refund"),
    arrow(160, 120, 272, 120, paid, max, "purchase"),
    arrow(425, 110, 537, 48, released, max, "released"),
    arrow(425, 130, 537, 192, refunded, max, "refunded"),
  );
  const head = ["Time", "Block", "Kind", "Amount", "Open value after", "By", "Tx", "Note"];
  const cells = (r: Json) => [
    time(r.time),
    r.height,
    r.kind,
    yuan(r.amount),
    yuan(r.balance),
    r.sender,
    r.txHash,
    r.note,
  ];
  put(
    main,
    h("h1", {}, `Card #${id}`),
    h(
      "p",
      {},
      "of programme ",
      addrLink(programme),
      " · ",
      link(`#/programme/${programme}`, "programme view"),
      ` · ${view.status}`,
    ),
    card(
      "Fund flow",
      picture,
      fields([
        ["Paid", yuan(paid)],
        ["Released to the merchant", yuan(released)],
        ["Refunded", yuan(refunded)],
        ["In escrow", yuan(escrow)],
      ]),
      h(
        "p",
        { class: "muted", id: "fund-flow-note" },
        [
          "Paid = released + refunded + in escrow, as the contract accounts it at the latest block.",
          share !== undefined && share < 10_000
            ? `This programme escrows ${pct(share)} of each price; the rest reaches the merchant at purchase (or when the cooling-off period ends).`
            : "",
          fees > 0n ? `Released includes ${yuan(fees)} of refund fees.` : "",
          `Service value not yet used or refunded (the card's open value): ${yuan(tr.closing)}.`,
        ]
          .filter(Boolean)
          .join(" "),
      ),
    ),
    card(
      "Movements",
      csvButton(`card-${id}.csv`, head, () => rows.map((r) => cells(r).map(String))),
      table(
        head,
        rows.map((r) => [...cells(r).slice(0, 5), addrLink(r.sender), txLink(r.txHash), r.note]),
      ),
    ),
  );
}
