import {
  type CardKind,
  formatFen,
  type InvariantReport,
  ISSUER_CLASSES,
  type IssuerClass,
  listProgrammes,
  openProgramme,
  PERIODS,
  type Period,
  PREPAID_TEMPLATE,
  type PrepaidCall,
  type PrepaidCard,
  type PrepaidEvent,
  type PrepaidProduct,
  PrepaidProgramme,
  type PrepaidReceipt,
  PrepaidTxError,
  type ProductSpec,
  type ProgrammeInfo,
  type ProgrammeParams,
  parseYuan,
  sendPrepaid,
  type Wallet,
} from "@custos/client";
import { encode } from "@custos/codec";
import { MAX_REFUND_BATCH } from "@custos/prepaid-card";
import { CustosError } from "@custos/utils";
import type { Command } from "commander";
import { output, UsageError } from "../io.js";
import {
  amount,
  checkNames,
  type RpcOpts,
  rpcOption,
  type SignOpts,
  signOption,
  type Target,
  target,
  wallet,
} from "./chain.js";

/**
 * `custos prepaid ...`: the prepaid-card programmes (预付资金监管) in the words of the business —
 * open a programme, add products, buy, use, claim, transfer, report a loss, reissue, refund,
 * freeze, force refunds, announce closure, and the views and the invariant check. Every command
 * is one call of the client SDK's PrepaidProgramme (packages/client/src/prepaid.ts); a refusal
 * exits 1 with the template's stable code, like `contract call`.
 */

// ---------------------------------------------------------------------------------------------
// Words and numbers
// ---------------------------------------------------------------------------------------------

const yuan = (fen: bigint) => `${formatFen(fen)} yuan`;

/** "1 card", "2 cards". */
const count = (n: number | bigint, word: string, many = `${word}s`) =>
  `${n} ${n === 1 || n === 1n ? word : many}`;

/** Basis points as a percentage: 7000 -> "70%", 7050 -> "70.5%". */
function pct(bps: number): string {
  const whole = Math.trunc(bps / 100);
  const rest = bps % 100;
  return `${whole}${rest === 0 ? "" : `.${String(rest).padStart(2, "0").replace(/0$/, "")}`}%`;
}

/** A percentage on the command line (at most two decimals, "70", "70.5", "70%") in basis points. */
function percentOption(v: string, flag: string): number {
  const m = /^(\d{1,3})(?:\.(\d{1,2}))?%?$/.exec(v.trim());
  if (!m) throw new UsageError(`${flag} takes a percentage with at most two decimals, e.g. 70 or 12.5`);
  const bps = Number(m[1]) * 100 + Number((m[2] ?? "").padEnd(2, "0"));
  if (bps > 10_000) throw new UsageError(`${flag} is at most 100%`);
  return bps;
}

function intOption(v: string, flag: string, min: number, max: number): number {
  if (!/^\d{1,9}$/.test(v) || Number(v) < min || Number(v) > max)
    throw new UsageError(`${flag} takes a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`);
  return Number(v);
}

/** A yuan amount that may be zero (reminder thresholds). */
function yuanOrZero(v: string, flag: string): bigint {
  try {
    return parseYuan(v);
  } catch {
    throw new UsageError(`${flag} ${JSON.stringify(v)}: give yuan with at most two decimals, e.g. 12.34`);
  }
}

function cardId(v: string): number {
  if (!/^[1-9]\d{0,9}$/.test(v))
    throw new UsageError(`a card is its number (1, 2, ...), not ${JSON.stringify(v)}`);
  return Number(v);
}

function productId(v: string, flag = "--product"): number {
  if (!/^[1-9]\d{0,9}$/.test(v)) throw new UsageError(`${flag} takes a product number (1, 2, ...)`);
  return Number(v);
}

/** Block time in China Standard Time (the template's days are UTC+8 days). */
function when(ms: number): string {
  return `${new Date(ms + 8 * 3_600_000).toISOString().slice(0, 16).replace("T", " ")} UTC+8`;
}

function duration(ms: number): string {
  const h = Math.floor(ms / 3_600_000);
  const d = Math.floor(h / 24);
  if (d === 0) return `${h} h`;
  return h % 24 === 0 ? `${d} days` : `${d} days ${h % 24} h`;
}

const KIND_NAMES: Record<CardKind, string> = {
  stored: "stored-value",
  count: "count",
  period: "period",
};

/** What is left on a card, in its kind's unit. */
function remaining(c: PrepaidCard): string {
  if (c.kind === "stored") return `${formatFen(c.remaining)} of ${yuan(c.units)} left`;
  if (c.kind === "count") return `${c.remaining} of ${count(c.units, "use")} left`;
  return `${duration(Number(c.remaining))} of ${duration(Number(c.units))} left`;
}

function productLine(p: PrepaidProduct): string {
  const what =
    p.kind === "stored"
      ? p.open
        ? "open amount"
        : `${yuan(p.faceValue)} of value`
      : p.kind === "count"
        ? `${p.uses} uses`
        : `${count(p.periods, p.period ?? "period")}${p.usesPerDay ? `, ${count(p.usesPerDay, "visit")} a day` : ""}`;
  const term = p.kind === "period" ? `${p.termDays} days` : `valid ${p.termDays} days`;
  const price = p.open ? `${formatFen(p.minAmount)} to ${yuan(p.maxAmount)}` : yuan(p.price);
  return `${String(p.id).padStart(3)}  ${p.name.padEnd(24)} ${KIND_NAMES[p.kind].padEnd(13)} ${`${what}, ${term}`.padEnd(40)} ${price}${p.retired ? "  (retired)" : ""}`;
}

// ---------------------------------------------------------------------------------------------
// Names, programmes, signing
// ---------------------------------------------------------------------------------------------

/** Members' names by address from chain state, for human output. */
class MemberNames {
  private names: Promise<Map<string, string>> | undefined;
  constructor(private readonly t: Target) {}
  private load(): Promise<Map<string, string>> {
    this.names ??= this.t.client
      .call<{ address: string; name: string }[]>("members", "list", encode([null]))
      .then((l) => new Map(l.map((m) => [m.address, m.name])))
      .catch(() => new Map());
    return this.names;
  }
  async of(address: string): Promise<string> {
    const name = (await this.load()).get(address);
    return name === undefined ? address : `${name} (${address})`;
  }
  async short(address: string): Promise<string> {
    return (await this.load()).get(address) ?? address;
  }
}

const slug = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");

/** The template's programmes by name (the registry lists them newest first: two opened in one block come in either order). */
async function programmesByName(t: Target) {
  return (await listProgrammes(t.client)).sort(
    (a, b) => slug(a.name).localeCompare(slug(b.name)) || a.createdHeight - b.createdHeight,
  );
}

/**
 * A programme on the command line: its address, or its name as opened (case and punctuation
 * aside: "Sunrise Gym" or sunrise-gym), looked up among the template's instances on chain.
 */
async function programmeOf(t: Target, v: string): Promise<PrepaidProgramme> {
  if (/^0x/i.test(v)) {
    const address = t.names.address(v, "--programme");
    let template: unknown;
    try {
      template = (await t.client.call<{ template?: unknown }>("templates", "instance", encode([address])))
        .template;
    } catch (err) {
      if ((err as { code?: string }).code !== "CONTRACT_NOT_FOUND") throw err;
    }
    if (template !== PREPAID_TEMPLATE)
      throw new CustosError(
        "PROGRAMME_NOT_FOUND",
        `${address} is not a prepaid-card programme${template === undefined ? "" : ` (it runs ${String(template)})`}`,
      );
    return new PrepaidProgramme(t.client, address);
  }
  const all = await listProgrammes(t.client);
  const matches = all.filter((p) => slug(p.name) === slug(v));
  if (matches.length === 1)
    return new PrepaidProgramme(t.client, (matches[0] as { address: string }).address);
  if (matches.length > 1)
    throw new CustosError(
      "PROGRAMME_AMBIGUOUS",
      `${matches.length} programmes are called ${JSON.stringify(v)} (${matches.map((m) => m.address).join(", ")}): give the address`,
    );
  throw new CustosError(
    "PROGRAMME_NOT_FOUND",
    `no prepaid-card programme called ${JSON.stringify(v)}${all.length ? ` (there are: ${all.map((p) => slug(p.name)).join(", ")})` : " (none opened on this chain yet)"}`,
  );
}

interface ProgrammeOpts extends RpcOpts {
  programme: string;
}

const programmeOption = (c: Command) =>
  c.requiredOption("--programme <programme>", "the programme: its address or its name (sunrise-gym)");

const rpcCommand = (c: Command) => programmeOption(rpcOption(c));
const signCommand = (c: Command) => programmeOption(signOption(c));

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError("--timeout takes a positive number of seconds");
  return n * 1000;
}

/** The reminders and risk flags a transaction raised, as lines for people. */
function notices(evs: PrepaidEvent[]): string[] {
  const out: string[] = [];
  for (const e of evs) {
    const d = e.data;
    if (e.name === "LowBalance")
      out.push(`reminder: low balance on card ${d.card}, ${yuan(BigInt(String(d.balance)))} left`);
    else if (e.name === "FewUsesLeft")
      out.push(`reminder: card ${d.card} has ${count(Number(d.usesLeft), "use")} left`);
    else if (e.name === "CardExpiring")
      out.push(`reminder: card ${d.card} expires ${when(Number(d.expiresAt))}`);
    else if (e.name === "RiskFlagged")
      out.push(
        d.scope === "card"
          ? `risk flag: card ${d.card} used ${d.uses} times today (threshold ${d.threshold})`
          : `risk flag: ${d.uses} uses in the programme this hour (threshold ${d.threshold})`,
      );
  }
  return out;
}

/**
 * Signs and sends one programme call, waits for its receipt and prints it: the result in the
 * business's words (or JSON), or, when the programme refused it, the failed receipt on stdout
 * and the template's code as the error (exit 1). `--no-wait` returns once the pool accepted it.
 */
async function transact<T>(
  o: SignOpts,
  t: Target,
  make: (w: Wallet) => Promise<PrepaidCall<T>> | PrepaidCall<T>,
  what: string,
  human: (r: PrepaidReceipt<T>) => Promise<string> | string,
  json: (r: PrepaidReceipt<T>) => Record<string, unknown> = (r) => ({ output: r.output }),
): Promise<void> {
  const w = await wallet(o, t);
  await checkNames(t);
  const call = await make(w);
  if (!o.wait) {
    const { decode: _decode, emitterOf: _emitterOf, ...tx } = call;
    const sent = await w.send(tx, { wait: false });
    output(!!o.json, { hash: sent.hash, status: "pending" }, `accepted: ${sent.hash}`);
    return;
  }
  let r: PrepaidReceipt<T>;
  try {
    r = await sendPrepaid(w, call, { timeoutMs: seconds(o.timeout) });
  } catch (err) {
    if (!(err instanceof PrepaidTxError)) throw err;
    output(
      !!o.json,
      {
        hash: err.hash,
        blockHeight: err.blockHeight,
        success: false,
        errorCode: err.code,
        errorMessage: err.receipt.errorMessage,
        gasUsed: err.receipt.gasUsed,
      },
      `tx ${err.hash} failed in block ${err.blockHeight}`,
    );
    throw new CustosError(err.code, `${what} refused: ${err.message}`);
  }
  output(
    !!o.json,
    {
      hash: r.hash,
      blockHeight: r.blockHeight,
      success: true,
      gasUsed: r.gasUsed,
      ...json(r),
      events: r.events,
    },
    [await human(r), ...notices(r.events), `tx ${r.hash} in block ${r.blockHeight}`].join("\n"),
  );
}

// ---------------------------------------------------------------------------------------------
// Views for people
// ---------------------------------------------------------------------------------------------

async function cardText(
  c: PrepaidCard,
  names: MemberNames,
  product?: PrepaidProduct,
  indent = "  ",
): Promise<string> {
  const lines = [
    `card ${c.id}: ${product ? `${product.name} (${KIND_NAMES[c.kind]})` : `${KIND_NAMES[c.kind]} card of product ${c.product}`}, held by ${await names.of(c.holder)}: ${c.status}`,
    `${indent}${remaining(c)}; paid ${yuan(c.paid)} (${c.basis === "list" ? "list price" : c.basis}), in escrow ${formatFen(c.escrow)}, consumed ${formatFen(c.consumed)}, released ${formatFen(c.released)}, refunded ${formatFen(c.refunded)}`,
  ];
  const terms: string[] = [];
  if (c.coolingOff && c.coolingOffUntil !== null)
    terms.push(`cooling off until ${when(c.coolingOffUntil)} (a full refund while unused)`);
  if (c.expiresAt !== null)
    terms.push(`${c.kind === "period" ? "term ends" : "valid until"} ${when(c.expiresAt)}`);
  else if (c.status === "active" || c.status === "lost") terms.push("term paused");
  if (!c.transferable) terms.push("not transferable (a per-person price)");
  if (c.reissuedFrom !== null) terms.push(`reissued from card ${c.reissuedFrom}`);
  if (c.reissuedTo !== null) terms.push(`reissued as card ${c.reissuedTo}`);
  if (terms.length) lines.push(`${indent}${terms.join("; ")}`);
  return lines.join("\n");
}

async function programmeText(p: ProgrammeInfo, names: MemberNames): Promise<string> {
  const status =
    p.status === "frozen"
      ? `frozen by the regulator since ${when(p.frozenAt ?? 0)}: ${p.frozenReason}`
      : p.status === "closing" || p.status === "closed"
        ? `${p.status} (announced ${when(p.closing?.at ?? 0)}, closing date ${when(p.closing?.closesAt ?? 0)}: ${p.closing?.reason})`
        : "active";
  return [
    `${p.name} ${p.address}: ${status}`,
    `  merchant ${await names.of(p.merchant)}, opened by ${await names.short(p.institution)} at height ${p.createdHeight} (${when(p.createdAt)})`,
    `  escrow ${pct(p.escrowShareBps)} of every price (floor ${pct(p.escrowFloorBps)}, issuer class ${p.issuerClass}); card cap ${yuan(p.cardCap)}; terms up to ${p.maxTermDays} days`,
    `  cooling-off ${count(p.coolingOffDays, "day")}; refunds after cooling-off: ${p.refund.afterCoolingOff ? `yes, fee ${pct(p.refund.feeBps)}` : "no"}; closure notice ${count(p.closureNoticeDays, "day")}`,
    `  reminders: balance at ${yuan(p.reminders.lowBalance)}, ${count(p.reminders.usesLeft, "use")} left, ${count(p.reminders.expiryDays, "day")} before expiry; risk flags over ${count(p.risk.cardUsesPerDay, "use")} of a card a day, ${count(p.risk.programmeUsesPerHour, "use")} an hour`,
    `  ${count(p.products, "product")}`,
  ].join("\n");
}

function checkText(name: string, r: InvariantReport): string {
  const head = `${name} ${r.address} at height ${r.height}: ${r.ok ? "ok" : "BROKEN"}`;
  const lines = [
    head,
    `  e-CNY balance ${yuan(r.balance)} ${r.surplus === 0n ? "=" : "!="} escrow ${formatFen(r.escrowed)} + due to the merchant ${formatFen(r.due)}`,
    `  ${count(r.cards, "card")} in ${count(r.pages, "page")}: their escrow adds up to ${yuan(r.cardEscrow)}${r.cardEscrow === r.escrowed ? ", the programme's total" : `, the programme's total is ${yuan(r.escrowed)}`}`,
    `  the template's checkInvariant: ${r.contractOk ? "ok" : "problems"}`,
  ];
  for (const p of r.problems) lines.push(`  problem: ${p}`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

interface OpenOpts extends SignOpts {
  merchant: string;
  name: string;
  template?: string;
  issuerClass?: string;
  escrowFloor?: string;
  escrowShare?: string;
  cardCap?: string;
  maxTermDays?: string;
  coolingOffDays?: string;
  closureNoticeDays?: string;
  refundAfterCoolingOff?: boolean;
  refundFee?: string;
  lowBalance?: string;
  fewUses?: string;
  expiryReminderDays?: string;
  riskUsesPerDay?: string;
  riskUsesPerHour?: string;
}

function programmeParams(o: OpenOpts, merchant: string): ProgrammeParams {
  const p: ProgrammeParams = { merchant, name: o.name };
  if (o.issuerClass !== undefined) {
    if (!(ISSUER_CLASSES as readonly string[]).includes(o.issuerClass))
      throw new UsageError(`--issuer-class is one of ${ISSUER_CLASSES.join(", ")}`);
    p.issuerClass = o.issuerClass as IssuerClass;
  }
  if (o.escrowFloor !== undefined) p.escrowFloorBps = percentOption(o.escrowFloor, "--escrow-floor");
  if (o.escrowShare !== undefined) p.escrowShareBps = percentOption(o.escrowShare, "--escrow-share");
  if (o.cardCap !== undefined) p.cardCap = amount(o.cardCap, "--card-cap");
  if (o.maxTermDays !== undefined) p.maxTermDays = intOption(o.maxTermDays, "--max-term-days", 1, 3650);
  if (o.coolingOffDays !== undefined)
    p.coolingOffDays = intOption(o.coolingOffDays, "--cooling-off-days", 0, 90);
  if (o.closureNoticeDays !== undefined)
    p.closureNoticeDays = intOption(o.closureNoticeDays, "--closure-notice-days", 0, 365);
  if (o.refundAfterCoolingOff || o.refundFee !== undefined)
    p.refund = {
      afterCoolingOff: !!o.refundAfterCoolingOff,
      ...(o.refundFee === undefined ? {} : { feeBps: percentOption(o.refundFee, "--refund-fee") }),
    };
  if (o.lowBalance !== undefined || o.fewUses !== undefined || o.expiryReminderDays !== undefined)
    p.reminders = {
      ...(o.lowBalance === undefined ? {} : { lowBalance: yuanOrZero(o.lowBalance, "--low-balance") }),
      ...(o.fewUses === undefined ? {} : { usesLeft: intOption(o.fewUses, "--few-uses", 0, 1000) }),
      ...(o.expiryReminderDays === undefined
        ? {}
        : { expiryDays: intOption(o.expiryReminderDays, "--expiry-reminder-days", 0, 365) }),
    };
  if (o.riskUsesPerDay !== undefined || o.riskUsesPerHour !== undefined)
    p.risk = {
      ...(o.riskUsesPerDay === undefined
        ? {}
        : { cardUsesPerDay: intOption(o.riskUsesPerDay, "--risk-uses-per-day", 1, 100_000) }),
      ...(o.riskUsesPerHour === undefined
        ? {}
        : { programmeUsesPerHour: intOption(o.riskUsesPerHour, "--risk-uses-per-hour", 1, 10_000_000) }),
    };
  return p;
}

interface ProductOpts extends SignOpts, Omit<ProgrammeOpts, "key" | "passwordFile"> {
  name: string;
  price?: string;
  faceValue?: string;
  open?: boolean;
  min?: string;
  max?: string;
  uses?: string;
  period?: string;
  periods?: string;
  usesPerDay?: string;
  validDays?: string;
}

function productSpec(kind: string, o: ProductOpts): ProductSpec {
  const validDays =
    o.validDays === undefined ? {} : { validDays: intOption(o.validDays, "--valid-days", 1, 3650) };
  const refuse = (flags: (keyof ProductOpts)[], why: string) => {
    for (const f of flags)
      if (o[f] !== undefined)
        throw new UsageError(`--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${why}`);
  };
  const price = () => {
    if (o.price === undefined) throw new UsageError(`a ${kind} product needs --price`);
    return amount(o.price, "--price");
  };
  if (kind === "stored") {
    refuse(["uses", "period", "periods", "usesPerDay"], "not for a stored-value product");
    if (o.open) {
      refuse(["price", "faceValue"], "an open-amount card is paid 1:1: give --min and --max instead");
      return {
        kind,
        name: o.name,
        open: true,
        ...(o.min === undefined ? {} : { minAmount: amount(o.min, "--min") }),
        ...(o.max === undefined ? {} : { maxAmount: amount(o.max, "--max") }),
        ...validDays,
      };
    }
    refuse(["min", "max"], "only with --open");
    if (o.faceValue === undefined)
      throw new UsageError("a stored-value product needs --face-value (or --open)");
    return {
      kind,
      name: o.name,
      faceValue: amount(o.faceValue, "--face-value"),
      ...(o.price === undefined ? {} : { price: amount(o.price, "--price") }),
      ...validDays,
    };
  }
  refuse(["faceValue", "min", "max"], `not for a ${kind} product`);
  if (o.open) throw new UsageError("--open: only stored-value products have open amounts");
  if (kind === "count") {
    refuse(["period", "periods", "usesPerDay"], "not for a count product");
    if (o.uses === undefined) throw new UsageError("a count product needs --uses");
    return { kind, name: o.name, uses: intOption(o.uses, "--uses", 1, 10_000), price: price(), ...validDays };
  }
  if (kind === "period") {
    refuse(["uses", "validDays"], "a period product's term is its periods");
    if (o.period === undefined || !(PERIODS as readonly string[]).includes(o.period))
      throw new UsageError(`a period product needs --period ${PERIODS.join("|")}`);
    return {
      kind,
      name: o.name,
      period: o.period as Period,
      price: price(),
      ...(o.periods === undefined ? {} : { periods: intOption(o.periods, "--periods", 1, 520) }),
      ...(o.usesPerDay === undefined
        ? {}
        : { usesPerDay: intOption(o.usesPerDay, "--uses-per-day", 0, 100) }),
    };
  }
  throw new UsageError(`a product is stored, count or period, not ${JSON.stringify(kind)}`);
}

function priceTarget(t: Target, o: { consumer?: string; category?: string }) {
  if ((o.consumer === undefined) === (o.category === undefined))
    throw new UsageError("give exactly one of --consumer (a consumer's own price) and --category");
  return o.consumer !== undefined
    ? { consumer: t.names.address(o.consumer, "--consumer") }
    : { category: o.category as string };
}

export function registerPrepaidCommands(program: Command): void {
  const prepaid = program
    .command("prepaid")
    .description(
      "prepaid-card programmes (预付资金监管): products, cards bought into escrow, use, refunds, the regulator; amounts in yuan",
    );

  // --- programmes -------------------------------------------------------------------------

  rpcOption(prepaid.command("programmes").description("every prepaid-card programme on the chain")).action(
    async (o: RpcOpts) => {
      const t = target(o);
      const all = await programmesByName(t);
      const names = new MemberNames(t);
      const rows = await Promise.all(
        all.map(async (l) => {
          const info = await new PrepaidProgramme(t.client, l.address).info();
          return { ...l, slug: slug(l.name), status: info.status, products: info.products };
        }),
      );
      const lines: string[] = [];
      for (const r of rows)
        lines.push(
          `${r.slug.padEnd(22)} ${r.address}  ${r.status.padEnd(7)} merchant ${(await names.short(r.merchant)).padEnd(11)} ${count(r.products, "product").padEnd(11)} ${r.name}${r.instanceStatus === "frozen" ? "  (instance frozen by governance)" : ""}`,
        );
      output(!!o.json, { programmes: rows }, lines.join("\n") || "no prepaid-card programmes on this chain");
    },
  );

  signOption(
    prepaid
      .command("open")
      .description(
        "open a programme for an onboarded merchant: instantiate the prepaid-card template with its rules (institutions)",
      ),
  )
    .requiredOption("--merchant <address>", "the merchant (a member with the merchant role; or a demo name)")
    .requiredOption("--name <text>", "the programme's name (1-64 characters)")
    .option(
      "--template <id>",
      `the template: NAME@VERSION or code hash (default: the newest approved ${PREPAID_TEMPLATE})`,
    )
    .option(
      "--issuer-class <class>",
      `${ISSUER_CLASSES.join("|")}: sets the national escrow floor (20/20/30/40%)`,
    )
    .option("--escrow-floor <percent>", "a local floor stricter than the national one")
    .option("--escrow-share <percent>", "share of every price held in escrow (default 100)")
    .option("--card-cap <yuan>", "per-card value cap (default 5000)")
    .option("--max-term-days <days>", "longest validity or term (default 730)")
    .option("--cooling-off-days <days>", "full refund while unused (default 7)")
    .option("--closure-notice-days <days>", "from a closure announcement to the closing date (default 30)")
    .option("--refund-after-cooling-off", "refunds on request after cooling-off")
    .option("--refund-fee <percent>", "fee on such a refund, to the merchant (at most 20)")
    .option("--low-balance <yuan>", "LowBalance reminder threshold (default 50)")
    .option("--few-uses <n>", "FewUsesLeft reminder threshold (default 2)")
    .option("--expiry-reminder-days <days>", "CardExpiring reminder, days before (default 7)")
    .option("--risk-uses-per-day <n>", "risk flag on a card's next use in a day (default 10)")
    .option("--risk-uses-per-hour <n>", "risk flag on the programme's next use in an hour (default 1000)")
    .action(async (o: OpenOpts) => {
      if (!o.wait)
        throw new UsageError("--no-wait: opening a programme waits for the new programme's address");
      const t = target(o);
      const params = programmeParams(o, t.names.address(o.merchant, "--merchant"));
      const w = await wallet(o, t);
      await checkNames(t);
      let r: PrepaidReceipt<PrepaidProgramme>;
      try {
        r = await openProgramme(w, params, {
          timeoutMs: seconds(o.timeout),
          ...(o.template ? { template: o.template } : {}),
        });
      } catch (err) {
        if (!(err instanceof PrepaidTxError)) throw err;
        output(
          !!o.json,
          {
            hash: err.hash,
            blockHeight: err.blockHeight,
            success: false,
            errorCode: err.code,
            errorMessage: err.message,
          },
          `tx ${err.hash} failed in block ${err.blockHeight}`,
        );
        throw new CustosError(err.code, `opening the programme refused: ${err.message}`);
      }
      const info = await r.output.info();
      output(
        !!o.json,
        {
          hash: r.hash,
          blockHeight: r.blockHeight,
          success: true,
          address: r.output.address,
          programme: info,
        },
        `programme ${slug(info.name)} opened: ${r.output.address}\n${await programmeText(info, new MemberNames(t))}\ntx ${r.hash} in block ${r.blockHeight}`,
      );
    });

  rpcCommand(prepaid.command("programme").description("a programme's rules and status")).action(
    async (o: ProgrammeOpts) => {
      const t = target(o);
      const info = await (await programmeOf(t, o.programme)).info();
      output(
        !!o.json,
        info as unknown as Record<string, unknown>,
        await programmeText(info, new MemberNames(t)),
      );
    },
  );

  rpcCommand(
    prepaid.command("escrow").description("a programme's money: balance = escrow + due to the merchant"),
  ).action(async (o: ProgrammeOpts) => {
    const t = target(o);
    const p = await programmeOf(t, o.programme);
    const [info, s] = await Promise.all([p.info(), p.escrow()]);
    output(
      !!o.json,
      { address: p.address, ...s },
      [
        `${info.name}: balance ${yuan(s.balance)} = escrow ${formatFen(s.escrowed)} + due to the merchant ${formatFen(s.due)}`,
        `  sold ${formatFen(s.sold)}, consumed ${formatFen(s.consumed)}, released ${formatFen(s.released)}, refunded ${formatFen(s.refunded)}, claimed ${yuan(s.claimed)}`,
        `  cards: ${s.cards} sold, ${s.liveCards} live, ${s.refundedCards} refunded`,
      ].join("\n"),
    );
  });

  rpcCommand(
    prepaid
      .command("fulfilment")
      .description("a programme's fulfilment statistics: consumed and refunded shares"),
  ).action(async (o: ProgrammeOpts) => {
    const t = target(o);
    const p = await programmeOf(t, o.programme);
    const [info, f] = await Promise.all([p.info(), p.fulfilment()]);
    output(
      !!o.json,
      { address: p.address, ...f },
      [
        `${info.name}: sold ${yuan(f.sold)}, ${pct(f.consumedBps)} consumed (${formatFen(f.consumed)}), ${pct(f.refundRateBps)} refunded (${formatFen(f.refunded)})`,
        `  cards: ${f.cards} sold, ${f.liveCards} live, ${f.refundedCards} refunded (${pct(f.cardRefundRateBps)})`,
      ].join("\n"),
    );
  });

  // --- products and prices (the merchant) ---------------------------------------------------

  const product = prepaid.command("product").description("a programme's products (the merchant)");
  signCommand(
    product
      .command("add")
      .description("add a product: stored (value), count (uses) or period (weeks, months, ...)")
      .argument("<kind>", "stored | count | period"),
  )
    .requiredOption("--name <text>", "the product's name")
    .option("--price <yuan>", "price (stored: default the face value, at most it)")
    .option("--face-value <yuan>", "stored: the value a card carries")
    .option("--open", "stored: the consumer chooses the amount, paid 1:1")
    .option("--min <yuan>", "stored --open: smallest amount")
    .option("--max <yuan>", "stored --open: largest amount (default the card cap)")
    .option("--uses <n>", "count: uses per card")
    .option("--period <unit>", `period: ${PERIODS.join("|")}`)
    .option("--periods <n>", "period: how many (default 1)")
    .option("--uses-per-day <n>", "period: visits a day (default no limit)")
    .option("--valid-days <days>", "stored and count: validity (default the programme's longest term)")
    .action(async (kind: string, o: ProductOpts) => {
      const spec = productSpec(kind, o);
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      await transact(
        o,
        t,
        () => p.calls.addProduct(spec),
        "adding the product",
        (r) => `product ${r.output.id} added:\n${productLine(r.output)}`,
        (r) => ({ product: r.output }),
      );
    });
  signCommand(product.command("retire").description("stop selling a product").argument("<product>")).action(
    async (id: string, o: SignOpts & ProgrammeOpts) => {
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      await transact(
        o,
        t,
        () => p.calls.retireProduct(productId(id, "PRODUCT")),
        "retiring the product",
        (r) => `product ${r.output.id} (${r.output.name}) retired: no more sales; its cards stay as they are`,
        (r) => ({ product: r.output }),
      );
    },
  );

  rpcCommand(prepaid.command("products").description("the products on sale"))
    .option("--all", "retired products too")
    .action(async (o: ProgrammeOpts & { all?: boolean }) => {
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      const list = await p.products({ includeRetired: !!o.all });
      output(
        !!o.json,
        { address: p.address, products: list },
        list.map(productLine).join("\n") || "no products",
      );
    });

  rpcCommand(
    prepaid
      .command("quote")
      .description(
        "what buying a product costs a consumer now (its own price, its category's, or the list price)",
      )
      .argument("<product>"),
  )
    .requiredOption("--for <consumer>", "the consumer (address or demo name)")
    .action(async (id: string, o: ProgrammeOpts & { for: string }) => {
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      const consumer = t.names.address(o.for, "--for");
      await checkNames(t);
      const q = await p.quote(productId(id, "PRODUCT"), consumer);
      output(
        !!o.json,
        { ...q },
        q.price === null
          ? `product ${id}: any amount from ${formatFen(q.minAmount ?? 0n)} to ${yuan(q.maxAmount ?? 0n)}, paid 1:1`
          : `product ${id}: ${yuan(q.price)} (${q.basis === "list" ? "list price" : q.basis}${q.transferable ? "" : ", not transferable"})`,
      );
    });

  const price = prepaid.command("price").description("per-person prices (一人一价), set by the merchant");
  signCommand(
    price
      .command("set")
      .description("a price for one consumer or a category, fixed before a purchase")
      .argument("<product>"),
  )
    .option("--consumer <address>", "the consumer (or a demo name)")
    .option("--category <name>", "a category of consumers (student, senior, ...)")
    .requiredOption("--price <yuan>", "the price")
    .action(
      async (
        id: string,
        o: SignOpts & ProgrammeOpts & { consumer?: string; category?: string; price: string },
      ) => {
        const t = target(o);
        const p = await programmeOf(t, o.programme);
        const who = priceTarget(t, o);
        const fen = amount(o.price, "--price");
        await transact(
          o,
          t,
          () => p.calls.setPrice(productId(id, "PRODUCT"), who, fen),
          "setting the price",
          (r) => `price record ${r.output.id}: product ${id} costs ${yuan(fen)} for ${r.output.target}`,
        );
      },
    );
  signCommand(price.command("clear").description("back to the list price").argument("<product>"))
    .option("--consumer <address>", "the consumer (or a demo name)")
    .option("--category <name>", "the category")
    .action(async (id: string, o: SignOpts & ProgrammeOpts & { consumer?: string; category?: string }) => {
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      const who = priceTarget(t, o);
      await transact(
        o,
        t,
        () => p.calls.clearPrice(productId(id, "PRODUCT"), who),
        "clearing the price",
        () => `product ${id}: the list price applies again`,
      );
    });
  signCommand(
    prepaid
      .command("category")
      .description("record a consumer's category for category prices (the merchant)")
      .argument("<consumer>", "address or demo name")
      .argument("<category>", "a-z, 0-9, -; or - to clear it"),
  ).action(async (who: string, category: string, o: SignOpts & ProgrammeOpts) => {
    const t = target(o);
    const p = await programmeOf(t, o.programme);
    const consumer = t.names.address(who, "CONSUMER");
    await transact(
      o,
      t,
      () => p.calls.setCategory(consumer, category === "-" ? null : category),
      "setting the category",
      () => `${who}: ${category === "-" ? "no category" : `category ${category}`}`,
    );
  });

  // --- the consumer -----------------------------------------------------------------------

  signCommand(
    prepaid.command("buy").description("buy a card with e-CNY: the price goes into escrow (consumers)"),
  )
    .requiredOption("--product <n>", "the product's number (custos prepaid products)")
    .option("--amount <yuan>", "open-amount products: the amount to put on the card")
    .option("--price <yuan>", "the price you agree to pay: refused before signing if the quote differs")
    .action(async (o: SignOpts & ProgrammeOpts & { product: string; amount?: string; price?: string }) => {
      const id = productId(o.product);
      const chosen = o.amount === undefined ? undefined : amount(o.amount, "--amount");
      const agreed = o.price === undefined ? undefined : amount(o.price, "--price");
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      const prod = await p.product(id);
      const names = new MemberNames(t);
      await transact(
        o,
        t,
        async (w) => {
          let value: bigint;
          if (prod.open) {
            if (chosen === undefined)
              throw new UsageError(
                `product ${id} is an open-amount card: give --amount (${formatFen(prod.minAmount)} to ${yuan(prod.maxAmount)})`,
              );
            value = chosen;
          } else {
            if (chosen !== undefined) throw new UsageError(`--amount: product ${id} has a fixed price`);
            const q = await p.quote(id, w.address);
            value = q.price as bigint;
          }
          if (agreed !== undefined && agreed !== value)
            throw new CustosError(
              "PRICE_CHANGED",
              `product ${id} costs ${yuan(value)} for you, not the ${yuan(agreed)} agreed (nothing was signed)`,
            );
          return p.calls.buy(id, value, prod.open ? chosen : undefined);
        },
        "the purchase",
        async (r) => {
          const c = r.output;
          const [, ...rest] = (await cardText(c, names, prod)).split("\n");
          return [
            `bought card ${c.id}: ${prod.name} (${KIND_NAMES[c.kind]}) for ${yuan(c.paid)}, held by ${await names.short(c.holder)}`,
            ...rest,
          ].join("\n");
        },
        (r) => ({ card: r.output }),
      );
    });

  signCommand(
    prepaid
      .command("consume")
      .description("use a card (核销), signed by its holder: what is consumed is released to the merchant")
      .argument("<card>"),
  )
    .option("--amount <yuan>", "stored-value cards: the amount to pay")
    .option("--uses <n>", "count cards: uses (default 1)")
    .action(async (id: string, o: SignOpts & ProgrammeOpts & { amount?: string; uses?: string }) => {
      const n = cardId(id);
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      const before = await p.card(n);
      let quantity: bigint | number | undefined;
      if (before.kind === "stored") {
        if (o.uses !== undefined)
          throw new UsageError(`card ${n} is a stored-value card: give --amount, not --uses`);
        if (o.amount === undefined)
          throw new UsageError(`card ${n} is a stored-value card: give --amount in yuan`);
        quantity = amount(o.amount);
      } else {
        if (o.amount !== undefined)
          throw new UsageError(`card ${n} is a ${before.kind} card: --amount is for stored-value cards`);
        if (o.uses !== undefined) {
          if (before.kind === "period")
            throw new UsageError(`card ${n} is a period card: one visit at a time`);
          quantity = intOption(o.uses, "--uses", 1, 10_000);
        }
      }
      await transact(
        o,
        t,
        () => p.calls.consume(n, quantity),
        `using card ${n}`,
        (r) => {
          const used = r.events.find((e) => e.name === "CardConsumed")?.data;
          const released = BigInt(String(used?.released ?? "0"));
          const c = r.output;
          const what =
            c.kind === "stored"
              ? `${yuan(quantity as bigint)} spent`
              : c.kind === "count"
                ? count(quantity ?? 1, "use")
                : "a visit";
          return `card ${c.id}: ${what}; ${remaining(c)}; ${yuan(released)} released to the merchant${c.status === "finished" ? " (the card is used up)" : ""}`;
        },
        (r) => ({ card: r.output }),
      );
    });

  signCommand(
    prepaid
      .command("refund")
      .description(
        "take back a card's unconsumed escrow (holder): in full in cooling-off; always when frozen, closing, closed or expired",
      )
      .argument("<card>"),
  ).action(async (id: string, o: SignOpts & ProgrammeOpts) => {
    const t = target(o);
    const p = await programmeOf(t, o.programme);
    const names = new MemberNames(t);
    await transact(
      o,
      t,
      () => p.calls.refund(cardId(id)),
      `refunding card ${id}`,
      async (r) => {
        const holder = (await p.card(r.output.card)).holder;
        return `card ${r.output.card} refunded: ${yuan(r.output.amount)} to ${await names.short(holder)} (${r.output.reason}${r.output.fee > 0n ? `, fee ${yuan(r.output.fee)} to the merchant` : ""})`;
      },
      (r) => ({ refund: r.output }),
    );
  });

  signCommand(
    prepaid.command("transfer").description("give a card to another consumer (holder)").argument("<card>"),
  )
    .requiredOption("--to <consumer>", "the new holder (address or demo name)")
    .action(async (id: string, o: SignOpts & ProgrammeOpts & { to: string }) => {
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      const to = t.names.address(o.to, "--to");
      const names = new MemberNames(t);
      await transact(
        o,
        t,
        () => p.calls.transferCard(cardId(id), to),
        `transferring card ${id}`,
        async (r) => `card ${r.output.id} transferred to ${await names.of(to)}; ${remaining(r.output)}`,
        (r) => ({ card: r.output }),
      );
    });

  signCommand(
    prepaid
      .command("report-loss")
      .description("report a card lost (挂失), by its holder or the regulator: no use, transfer or refund")
      .argument("<card>"),
  ).action(async (id: string, o: SignOpts & ProgrammeOpts) => {
    const t = target(o);
    const p = await programmeOf(t, o.programme);
    await transact(
      o,
      t,
      () => p.calls.reportLost(cardId(id)),
      `reporting card ${id} lost`,
      (r) =>
        `card ${r.output.id} reported lost: no use, transfer or refund until the loss is cancelled or the card reissued; its term is paused`,
      (r) => ({ card: r.output }),
    );
  });

  signCommand(
    prepaid
      .command("cancel-loss")
      .description("cancel a loss report (holder or regulator)")
      .argument("<card>"),
  ).action(async (id: string, o: SignOpts & ProgrammeOpts) => {
    const t = target(o);
    const p = await programmeOf(t, o.programme);
    await transact(
      o,
      t,
      () => p.calls.cancelLoss(cardId(id)),
      `cancelling the loss of card ${id}`,
      (r) => `card ${r.output.id}: loss report cancelled, the card works again; ${remaining(r.output)}`,
      (r) => ({ card: r.output }),
    );
  });

  // --- the regulator ----------------------------------------------------------------------

  signCommand(
    prepaid
      .command("reissue")
      .description("reissue a lost card (补办) as a new card, to the same or another consumer (regulator)")
      .argument("<card>"),
  )
    .option("--to <consumer>", "the new card's holder (default the lost card's)")
    .action(async (id: string, o: SignOpts & ProgrammeOpts & { to?: string }) => {
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      const to = o.to === undefined ? undefined : t.names.address(o.to, "--to");
      const names = new MemberNames(t);
      await transact(
        o,
        t,
        () => p.calls.reissue(cardId(id), to),
        `reissuing card ${id}`,
        async (r) =>
          `card ${id} reissued as card ${r.output.id} to ${await names.of(r.output.holder)}: ${yuan(r.output.escrow)} of escrow moved to it; card ${id} is void`,
        (r) => ({ card: r.output }),
      );
    });

  signCommand(
    prepaid
      .command("freeze")
      .description("freeze a programme (regulator): no sales, use, transfers or claims; refunds stay open"),
  )
    .requiredOption("--reason <text>", "why (recorded on chain)")
    .action(async (o: SignOpts & ProgrammeOpts & { reason: string }) => {
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      await transact(
        o,
        t,
        () => p.calls.freeze(o.reason),
        "the freeze",
        () =>
          "programme frozen: no sales, use, transfers or claims; every card can be refunded; terms are paused",
      );
    });

  signCommand(prepaid.command("unfreeze").description("lift the regulator's freeze")).action(
    async (o: SignOpts & ProgrammeOpts) => {
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      await transact(
        o,
        t,
        () => p.calls.unfreeze(),
        "unfreezing",
        () => "programme unfrozen: business as usual",
      );
    },
  );

  signCommand(
    prepaid
      .command("force-refunds")
      .description(
        "refund every live card to its holder, in batches (regulator once frozen or closing; merchant or institution once closed)",
      ),
  )
    .option("--batch <n>", `cards per transaction, 1-${MAX_REFUND_BATCH}`, "50")
    .option("--after <card>", "start after this card (to continue a run that stopped)", "0")
    .action(async (o: SignOpts & ProgrammeOpts & { batch: string; after: string }) => {
      if (!o.wait)
        throw new UsageError("--no-wait: each batch of forced refunds starts where the last one ended");
      const batch = intOption(o.batch, "--batch", 1, MAX_REFUND_BATCH);
      const after = intOption(o.after, "--after", 0, 1e10);
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      const w = await wallet(o, t);
      await checkNames(t);
      const done: Record<string, unknown>[] = [];
      try {
        const all = await p.as(w).forceRefunds({
          batch,
          after,
          timeoutMs: seconds(o.timeout),
          onBatch: (r, from) => {
            done.push({
              hash: r.hash,
              blockHeight: r.blockHeight,
              after: from,
              ...r.output,
            });
            if (!o.json)
              process.stdout.write(
                `batch ${done.length}: ${count(r.output.refunded, "card")} refunded, ${yuan(r.output.amount)}${r.output.skipped.length ? `; lost ${count(r.output.skipped.length, "card")} skipped (${r.output.skipped.join(", ")})` : ""}${r.output.done ? "" : `; next after card ${r.output.next}`} (tx ${r.hash} in block ${r.blockHeight})\n`,
              );
          },
        });
        output(
          !!o.json,
          { batches: done, refunded: all.refunded, amount: all.amount, skipped: all.skipped, done: true },
          `forced refunds done: ${count(all.refunded, "card")}, ${yuan(all.amount)} in ${count(done.length, "batch", "batches")}${all.skipped.length ? `; lost ${count(all.skipped.length, "card")} skipped (${all.skipped.join(", ")}): reissue, then refund` : ""}`,
        );
      } catch (err) {
        if (!(err instanceof PrepaidTxError)) throw err;
        output(
          !!o.json,
          {
            hash: err.hash,
            blockHeight: err.blockHeight,
            success: false,
            errorCode: err.code,
            errorMessage: err.receipt.errorMessage,
            after: err.meta.after,
            batches: done,
            done: false,
          },
          `batch ${done.length + 1} (after card ${String(err.meta.after)}) failed: tx ${err.hash} in block ${err.blockHeight}; continue with --after ${String(err.meta.after)}`,
        );
        throw new CustosError(err.code, `forced refunds stopped: ${err.message}`);
      }
    });

  // --- the merchant's money and closure -----------------------------------------------------

  signCommand(
    prepaid
      .command("claim")
      .description(
        "pay the merchant what was released to it (consumed value, accrued periods, ended cooling-off)",
      ),
  ).action(async (o: SignOpts & ProgrammeOpts) => {
    const t = target(o);
    const p = await programmeOf(t, o.programme);
    await transact(
      o,
      t,
      () => p.calls.claim(),
      "the claim",
      (r) => `claimed ${yuan(r.output.amount)} (${yuan(r.output.claimed)} claimed so far)`,
      (r) => ({ claim: r.output }),
    );
  });

  signCommand(
    prepaid
      .command("announce-closure")
      .description("announce the programme's closure (merchant): sales stop now, use until the closing date"),
  )
    .requiredOption("--reason <text>", "why (recorded on chain)")
    .action(async (o: SignOpts & ProgrammeOpts & { reason: string }) => {
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      await transact(
        o,
        t,
        () => p.calls.announceClosure(o.reason),
        "the closure",
        (r) =>
          `closure announced: no more sales; cards can be used until ${when(r.output.closesAt)}, and every balance can be refunded`,
        (r) => ({ closesAt: r.output.closesAt }),
      );
    });

  signCommand(
    prepaid.command("settle").description("bring accruals and ended cooling-off periods up to date (anyone)"),
  )
    .option("--limit <n>", "cards, 1-100", "50")
    .action(async (o: SignOpts & ProgrammeOpts & { limit: string }) => {
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      const limit = intOption(o.limit, "--limit", 1, 100);
      await transact(
        o,
        t,
        () => p.calls.settle(limit),
        "settling",
        (r) =>
          `settled: ${count(r.output.cooled, "cooling-off period")} ended, ${count(r.output.accrued, "period card")} accrued, ${yuan(r.output.released)} released`,
        (r) => ({ settled: r.output }),
      );
    });

  signCommand(
    prepaid.command("remind").description("send the card-expiry reminders that are due (anyone)"),
  ).action(async (o: SignOpts & ProgrammeOpts) => {
    const t = target(o);
    const p = await programmeOf(t, o.programme);
    await transact(
      o,
      t,
      () => p.calls.remind(),
      "the reminders",
      (r) => `${count(r.output.reminded, "reminder")} sent`,
      (r) => ({ reminded: r.output.reminded }),
    );
  });

  // --- cards --------------------------------------------------------------------------------

  rpcCommand(prepaid.command("card").description("a card as of the latest block").argument("<card>")).action(
    async (id: string, o: ProgrammeOpts) => {
      const t = target(o);
      const p = await programmeOf(t, o.programme);
      const c = await p.card(cardId(id));
      output(
        !!o.json,
        c as unknown as Record<string, unknown>,
        await cardText(c, new MemberNames(t), await p.product(c.product)),
      );
    },
  );

  rpcCommand(
    prepaid
      .command("cards")
      .description("a consumer's cards in a programme, every status")
      .argument("<holder>", "address or demo name"),
  ).action(async (who: string, o: ProgrammeOpts) => {
    const t = target(o);
    const p = await programmeOf(t, o.programme);
    const holder = t.names.address(who, "HOLDER");
    await checkNames(t);
    const cards = await p.cardsOf(holder);
    const names = new MemberNames(t);
    const products = new Map((await p.products({ includeRetired: true })).map((x) => [x.id, x]));
    const text = await Promise.all(cards.map((c) => cardText(c, names, products.get(c.product))));
    output(!!o.json, { holder, cards }, text.join("\n") || `${who} has no cards in this programme`);
  });

  // --- the invariant ------------------------------------------------------------------------

  rpcOption(
    prepaid
      .command("check")
      .description(
        "check the escrow invariant from the chain: e-CNY balance = escrow + due, every card's escrow, the template's checkInvariant",
      ),
  )
    .option("--programme <programme>", "one programme (default: every prepaid-card programme)")
    .action(async (o: RpcOpts & { programme?: string }) => {
      const t = target(o);
      const programmes =
        o.programme === undefined
          ? (await programmesByName(t)).map((l) => ({
              p: new PrepaidProgramme(t.client, l.address),
              name: l.name,
            }))
          : await (async () => {
              const p = await programmeOf(t, o.programme as string);
              return [{ p, name: (await p.info()).name }];
            })();
      const reports: (InvariantReport & { name: string })[] = [];
      for (const { p, name } of programmes) reports.push({ name, ...(await p.check()) });
      const ok = reports.every((r) => r.ok);
      output(
        !!o.json,
        { ok, programmes: reports },
        reports.map((r) => checkText(r.name, r)).join("\n") || "no prepaid-card programmes on this chain",
      );
      if (!ok)
        throw new CustosError(
          "PREPAID_INVARIANT_BROKEN",
          `the escrow invariant does not hold for ${reports
            .filter((r) => !r.ok)
            .map((r) => r.name)
            .join(", ")}`,
        );
    });
}
