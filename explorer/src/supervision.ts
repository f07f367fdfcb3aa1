// The regulator's view (audit_report, audit_trace): every programme's sales, consumption,
// refunds and escrow, each merchant's fulfilment and risk level, and one card's fund flow drawn
// as a picture: purchase -> escrow -> releases to the merchant / refunds to the holder.
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
  const tr = await rpc("audit_trace", { programme });
  const rows: Json[] = tr.rows;
  const cards = [...new Set(rows.filter((r) => r.card).map((r) => r.card as number))].sort((a, b) => a - b);
  const head = ["Time", "Block", "Kind", "Card", "Amount", "Escrow after", "Tx", "Note"];
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
      "Escrow",
      fields([
        ["Now", yuan(tr.closing)],
        ["Movements", String(rows.length)],
      ]),
    ),
    chart({
      label: "Escrow balance (yuan) by block",
      kind: "line",
      unit: "¥",
      points: rows.map((r) => ({ x: r.height, y: Number(BigInt(r.balance)) / 100 })),
    }),
    card(
      `Cards (${cards.length})`,
      h("p", {}, ...cards.flatMap((c) => [link(`#/card/${programme}/${c}`, `card #${c}`), " "])),
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
 * Sums of the card's movements by what they did to its value (each row's delta, in the fen the
 * consumer paid: a consumption of 120 yuan of list price on a discounted card takes less than
 * 120 yuan out of escrow). A refund takes the refund and its fee out of the card and pays the fee
 * to the merchant: drawn with what the merchant received, so that the picture adds up to the
 * purchase.
 */
function flows(rows: Json[]) {
  let bought = 0n;
  let used = 0n;
  let refunded = 0n;
  let fees = 0n;
  for (const r of rows) {
    const amount = BigInt(r.amount ?? 0);
    const out = -BigInt(r.delta ?? 0);
    if (r.kind === "purchase") bought += amount;
    else if (r.kind === "consumption" || r.kind === "release" || r.kind === "claim") used += out;
    else if (r.kind === "refund" || r.kind === "forced-refund") {
      refunded += amount;
      if (out > amount) fees += out - amount;
    }
  }
  return { bought, used, refunded, fees };
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
  const tr = await rpc("audit_trace", { programme, card: id });
  const rows: Json[] = tr.rows;
  const f = flows(rows);
  const toMerchant = f.used + f.fees;
  const max = [f.bought, toMerchant, f.refunded].reduce((a, b) => (a > b ? a : b), 0n);
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
    box(10, 92, "Consumer wallet", "paid", "wallet"),
    box(275, 92, `Escrow · card #${id}`, `open value ${yuan(tr.closing)}`, "escrow"),
    box(
      540,
      20,
      "Merchant",
      f.fees > 0n ? `${yuan(f.used)} + fee ${yuan(f.fees)}` : `used ${yuan(f.used)}`,
      "merchant",
    ),
    box(540, 164, "Refund to holder", yuan(f.refunded), "refund"),
    arrow(160, 120, 272, 120, f.bought, max, "purchase"),
    arrow(425, 110, 537, 48, toMerchant, max, "used"),
    arrow(425, 130, 537, 192, f.refunded, max, "refunded"),
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
    ),
    card(
      "Fund flow",
      picture,
      fields([
        ["Purchased", yuan(f.bought)],
        ["Released to the merchant", yuan(f.used)],
        ...(f.fees > 0n ? [["Refund fees, to the merchant", yuan(f.fees)] as [string, string]] : []),
        ["Refunded", yuan(f.refunded)],
        ["Still in escrow", yuan(tr.closing)],
      ]),
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
