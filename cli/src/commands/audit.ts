import { readFile, writeFile } from "node:fs/promises";
import {
  type AuditExport,
  parseExport,
  parseRechargeRecords,
  parseTimeBound,
  type VerifyReport,
  verifyExport,
} from "@custos/audit";
import { AuditClient, parseYuan } from "@custos/client";
import { VerifierPool } from "@custos/crypto";
import { parseGenesis } from "@custos/types";
import { CustosError } from "@custos/utils";
import type { Command } from "commander";
import {
  clearingCsv,
  clearingText,
  REPORT_SECTIONS,
  type ReportSection,
  reconcileCsv,
  reconcileText,
  reportCsv,
  reportText,
  traceCsv,
  traceText,
  when,
  yuan,
} from "../auditTables.js";
import { output, UsageError } from "../io.js";
import { readJson } from "../target.js";
import { checkNames, type RpcOpts, rpcOption, type Target, target } from "./chain.js";

/**
 * `custos audit`: the auditor's and regulator's side (issue 15). Every query runs on a node's
 * audit index (an observer's, typically); `audit verify` checks an export with no node at all.
 */

interface RangeOpts {
  from?: string;
  to?: string;
  date?: string;
}

interface FormatOpts {
  format?: string;
  out?: string;
}

type AuditOpts = RpcOpts & RangeOpts & FormatOpts;

const rangeOptions = (c: Command) =>
  c
    .option(
      "--from <time>",
      "start: a date (2026-05-01), a time (2026-05-01T09:30, CST) or ms since the epoch",
    )
    .option("--to <time>", "end (inclusive; a date means the end of that day)")
    .option("--date <day>", "one whole day (CST), instead of --from/--to");

const formatOptions = (c: Command) =>
  c
    .option("--format <format>", "table (default), json or csv")
    .option("--out <file>", "write the output to this file instead of stdout");

function range(o: RangeOpts): { from?: number; to?: number; date?: string } {
  if (o.date !== undefined) {
    if (o.from !== undefined || o.to !== undefined)
      throw new UsageError("give --date, or --from/--to, not both");
    if (!/^\d{4}-\d{2}-\d{2}$/.test(o.date)) throw new UsageError("--date takes YYYY-MM-DD");
    return { date: o.date };
  }
  const bound = (v: string | undefined, end: boolean, flag: string) => {
    if (v === undefined) return undefined;
    try {
      return parseTimeBound(v, end, flag);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
  const from = bound(o.from, false, "--from");
  const to = bound(o.to, true, "--to");
  if (from !== undefined && to !== undefined && to < from) throw new UsageError("--to is before --from");
  return { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
}

function format(o: AuditOpts): "table" | "json" | "csv" {
  const f = o.format ?? (o.json ? "json" : "table");
  if (f !== "table" && f !== "json" && f !== "csv") throw new UsageError("--format is table, json or csv");
  if (o.json && f !== "json")
    throw new UsageError("--json prints JSON; leave out --format, or use --format json");
  return f;
}

/** Writes the result in the chosen format, to --out or stdout. */
async function emit(
  o: AuditOpts,
  doc: Record<string, unknown>,
  text: () => string,
  csvOf: () => string,
): Promise<void> {
  const f = format(o);
  const body = f === "json" ? `${JSON.stringify(doc, null, 2)}\n` : f === "csv" ? csvOf() : `${text()}\n`;
  if (o.out !== undefined) {
    await writeFile(o.out, body);
    if (!o.json) process.stderr.write(`written to ${o.out}\n`);
    return;
  }
  process.stdout.write(body);
}

/** Names of the demo members for addresses, when a list is at hand (else the address). */
function namer(t: Target): (a: string | null) => string {
  return (a) => (a === null ? "" : (t.names.nameOf(a) ?? a));
}

function audit(t: Target): AuditClient {
  return new AuditClient(t.client);
}

function thresholdFen(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  try {
    return parseYuan(v).toString();
  } catch {
    throw new UsageError("--threshold takes yuan with at most two decimals");
  }
}

function traceTarget(t: Target, o: { account?: string; programme?: string; card?: string }) {
  if (o.account !== undefined) {
    if (o.programme !== undefined || o.card !== undefined)
      throw new UsageError("give --account, or --programme (with --card for one card)");
    return { account: t.names.address(o.account, "--account") };
  }
  if (o.programme === undefined)
    throw new UsageError("trace what: --account ADDR, --programme ADDR, or --card ID --programme ADDR");
  const programme = t.names.address(o.programme, "--programme");
  if (o.card === undefined) return { programme };
  const card = Number(o.card);
  if (!Number.isSafeInteger(card) || card < 1)
    throw new UsageError("--card takes a card id (an integer >= 1)");
  return { programme, card };
}

function verifyText(r: VerifyReport, file: string): string {
  const c = r.checked;
  const q = r.query;
  const what =
    q.kind === "trace"
      ? `trace of ${"account" in q.target ? `account ${q.target.account}` : "card" in q.target ? `card ${q.target.card} of ${q.target.programme}` : `programme ${q.target.programme}`}`
      : q.kind === "report"
        ? `report of ${q.programmes.length} programme(s)`
        : `balance check of ${q.accounts.length} accounts`;
  const lines = [
    `${file}: ${what} on chain ${r.chainId} at height ${r.height}`,
    `  blocks ${c.blocks}: headers, and certificates ${c.certificates} (${c.commitSignatures} commit signatures) each under the validator set in force (${c.validatorChanges} change(s) from genesis)`,
    `  entries ${c.entries}: ${c.txSignatures} transaction signatures, ${c.txProofs} transaction proofs, ${c.receiptProofs} receipt proofs`,
    `  audit chains ${c.chains}: ${c.links} links, each complete to the head the state proves at height ${r.height}; ${c.stateProofs} state proofs`,
    `  figures: ${c.figures} values recomputed from the entries`,
  ];
  if (r.ok) lines.push("VERIFIED");
  else {
    lines.push(`FAILED: ${r.failures.length} check(s)`);
    for (const f of r.failures)
      lines.push(
        `  ${f.check}${f.entry !== undefined ? ` [entry ${f.entry}]` : ""}${f.block !== undefined ? ` [block ${f.block}]` : ""}: ${f.message}`,
      );
  }
  return lines.join("\n");
}

export function registerAuditCommands(program: Command): void {
  const a = program
    .command("audit")
    .description("fund tracing, supervision reports, reconciliation and clearing, exports verified offline");

  rpcOption(a.command("status").description("the node's audit index: indexed height, catch-up")).action(
    async (o: RpcOpts) => {
      const s = await audit(target(o)).status();
      output(
        !!o.json,
        s,
        `audit index at height ${s.indexedHeight} of ${s.ledgerHeight}${s.building ? " (catching up)" : ""}; ${s.programmes} programme(s)${s.firstHeight > 1 ? `; history from block ${s.firstHeight} only (the ledger started from a snapshot or was pruned)` : ""}`,
      );
    },
  );

  formatOptions(
    rangeOptions(
      rpcOption(
        a
          .command("trace")
          .description(
            "every movement of an account's, a card's or a programme's funds, with running balances",
          )
          .option("--account <address>", "an account (member or contract): its e-CNY wallet")
          .option("--programme <address>", "a programme: its escrow account and everything it recorded")
          .option("--card <id>", "with --programme: one card, from its purchase"),
      ),
    ),
  ).action(async (o: AuditOpts & { account?: string; programme?: string; card?: string }) => {
    format(o);
    const t = target(o);
    const tt = traceTarget(t, o);
    await checkNames(t);
    const r = (await audit(t).trace(tt, range(o))) as Record<string, any>;
    await emit(
      o,
      r,
      () => traceText(r, namer(t)),
      () => traceCsv(r),
    );
  });

  formatOptions(
    rangeOptions(
      rpcOption(
        a
          .command("report")
          .description(
            "sales, consumption, releases, refunds per merchant, kind, day and month; risk levels; large transactions",
          )
          .option("--threshold <yuan>", "large transactions from this amount (default: genesis's)")
          .option("--programme <address...>", "only these programmes")
          .option("--section <name...>", `table/csv sections: ${REPORT_SECTIONS.join(", ")}`),
      ),
    ),
  ).action(async (o: AuditOpts & { threshold?: string; programme?: string[]; section?: string[] }) => {
    format(o);
    const t = target(o);
    const programmes = o.programme?.map((p) => t.names.address(p, "--programme"));
    const sections = (o.section ?? ["merchants", "kinds", "days", "large"]) as ReportSection[];
    for (const s of sections)
      if (!REPORT_SECTIONS.includes(s))
        throw new UsageError(`--section is one of ${REPORT_SECTIONS.join(", ")}`);
    await checkNames(t);
    const th = thresholdFen(o.threshold);
    const r: Record<string, any> = await audit(t).report({
      ...range(o),
      ...(th ? { threshold: th } : {}),
      ...(programmes ? { programmes } : {}),
    });
    await emit(
      o,
      r,
      () => reportText(r, namer(t), sections),
      () => reportCsv(r, sections[0] as ReportSection),
    );
  });

  formatOptions(
    rangeOptions(
      rpcOption(
        a
          .command("reconcile")
          .description(
            "issuance per day, every fen accounted for (wallets + contracts = issued), recharges matched",
          )
          .option(
            "--recharges <file>",
            "the operator's recharge records: CSV (rechargeId,account,amount in fen) or JSON",
          ),
      ),
    ),
  ).action(async (o: AuditOpts & { recharges?: string }) => {
    format(o);
    const t = target(o);
    let recharges: { rechargeId: string; account: string; amount: string }[] | undefined;
    if (o.recharges !== undefined) {
      let text: string;
      try {
        text = await readFile(o.recharges, "utf8");
      } catch (cause) {
        throw new CustosError("FILE_NOT_READABLE", `cannot read ${o.recharges}`, {}, { cause });
      }
      recharges = parseRechargeRecords(text).map((r) => ({ ...r, amount: r.amount.toString() }));
    }
    const r: Record<string, any> = await audit(t).reconcile({
      ...range(o),
      ...(recharges ? { recharges } : {}),
    });
    await emit(
      o,
      r,
      () => reconcileText(r, namer(t)),
      () => reconcileCsv(r),
    );
    if (r.ok !== true || (r.matching && r.matching.ok !== true)) process.exitCode = 1;
  });

  formatOptions(
    rangeOptions(
      rpcOption(
        a
          .command("clearing")
          .description("payments between institutions' customers, netted per institution per day"),
      ),
    ),
  ).action(async (o: AuditOpts) => {
    format(o);
    const t = target(o);
    const r: Record<string, any> = await audit(t).clearing(range(o));
    await emit(
      o,
      r,
      () => clearingText(r, namer(t)),
      () => clearingCsv(r),
    );
  });

  rangeOptions(
    rpcOption(
      a
        .command("events")
        .description("events from the audit index, by account, programme, card, subject, name or time")
        .option("--account <address>")
        .option("--programme <address>")
        .option("--card <id>", "a card (with --programme: of that programme)")
        .option("--subject <subject>", "an audit chain: an address, card:12, proposal:3, complaint:5 ...")
        .option(
          "--name <event>",
          "events of this name (with --emitter: a system contract; default any contract)",
        )
        .option("--emitter <name>", "ecny, members, governance, templates, validators, complaints, or vm")
        .option("--limit <n>", "at most this many (1-1000)", "100")
        .option("--cursor <next>", "continue from the previous page's next"),
    ),
  ).action(
    async (
      o: AuditOpts & {
        account?: string;
        programme?: string;
        card?: string;
        subject?: string;
        name?: string;
        emitter?: string;
        limit: string;
        cursor?: string;
      },
    ) => {
      const t = target(o);
      const r: Record<string, any> = await audit(t).events({
        ...range(o),
        ...(o.subject ? { subject: o.subject } : {}),
        ...(o.account ? { account: t.names.address(o.account, "--account") } : {}),
        ...(o.programme ? { programme: t.names.address(o.programme, "--programme") } : {}),
        ...(o.card ? { card: Number(o.card) } : {}),
        ...(o.name ? { name: o.name } : {}),
        ...(o.emitter ? { emitter: o.emitter } : {}),
        limit: Number(o.limit),
        ...(o.cursor ? { cursor: o.cursor } : {}),
      });
      output(
        !!o.json,
        r,
        [
          ...r.events.map(
            (e: any) =>
              `${when(e.time)}  block ${e.height}  ${e.emitter.length > 20 ? `${e.emitter.slice(0, 10)}…` : e.emitter}.${e.name}  ${e.movement.kind}${e.movement.amount !== "0" ? ` ${yuan(e.movement.amount)}` : ""}  ${JSON.stringify(e.data)}`,
          ),
          r.next ? `more: --cursor ${r.next}` : `(${r.events.length} events)`,
        ].join("\n"),
      );
    },
  );

  rangeOptions(
    rpcOption(
      a
        .command("txs")
        .description("transactions sent by or to an account or contract (failed ones too)")
        .requiredOption("--account <address>")
        .option("--limit <n>", "at most this many", "1000"),
    ),
  ).action(async (o: AuditOpts & { account: string; limit: string }) => {
    const t = target(o);
    const r: Record<string, any> = await audit(t).txs(t.names.address(o.account, "--account"), {
      ...range(o),
      limit: Number(o.limit),
    });
    output(
      !!o.json,
      r,
      r.txs
        .map(
          (x: any) =>
            `${when(x.time)}  block ${x.height}  ${x.txHash}  ${x.to}.${x.method}  ${x.success ? "ok" : `failed ${x.errorCode}`}${x.value !== "0" ? `  ${yuan(x.value)} yuan attached` : ""}`,
        )
        .join("\n") || "(none)",
    );
  });

  rangeOptions(
    rpcOption(
      a
        .command("export")
        .description(
          "an export that carries its own evidence, to check with `custos audit verify` and no node",
        )
        .option("--account <address>", "a trace of an account")
        .option(
          "--programme <address...>",
          "a trace of a programme (with --card: of one card); with --report: its programmes",
        )
        .option("--card <id>", "with --programme: a card's trace")
        .option("--report", "the supervision report (all programmes, or those of --programme)")
        .option("--threshold <yuan>", "with --report: large transactions from this amount")
        .option(
          "--reconciliation",
          "every account's balance against the total issued, at the export's height",
        )
        .requiredOption("--out <file>", "where to write it (JSON)"),
    ),
  ).action(
    async (
      o: AuditOpts & {
        account?: string;
        programme?: string[];
        card?: string;
        report?: boolean;
        threshold?: string;
        reconciliation?: boolean;
        out: string;
      },
    ) => {
      // an export of many entries takes its time: requests may take 10 minutes, not the usual 30 s
      const t = target(o, 600_000);
      const client = new AuditClient(t.client);
      let q: Parameters<AuditClient["export"]>[0];
      const r = range(o);
      if (o.report) {
        if (o.account || o.card || o.reconciliation)
          throw new UsageError("--report exports a report; no --account or --card");
        const th = thresholdFen(o.threshold);
        q = {
          kind: "report",
          ...r,
          ...(o.programme ? { programmes: o.programme.map((p) => t.names.address(p, "--programme")) } : {}),
          ...(th ? { threshold: th } : {}),
        };
      } else if (o.reconciliation) {
        if (o.account || o.programme || o.card)
          throw new UsageError("--reconciliation takes no --account, --programme or --card");
        q = { kind: "reconciliation" };
      } else {
        if ((o.programme?.length ?? 0) > 1) throw new UsageError("a trace is of one programme");
        const one = {
          ...(o.account !== undefined ? { account: o.account } : {}),
          ...(o.programme ? { programme: o.programme[0] as string } : {}),
          ...(o.card !== undefined ? { card: o.card } : {}),
        };
        q = { kind: "trace", ...r, ...traceTarget(t, one) };
      }
      await checkNames(t);
      const doc = await client.export(q);
      await writeFile(o.out, JSON.stringify(doc));
      const x = doc as { height: number; entries: unknown[]; blocks: unknown[]; chains: unknown[] };
      output(
        !!o.json,
        {
          out: o.out,
          height: x.height,
          entries: x.entries.length,
          blocks: x.blocks.length,
          chains: x.chains.length,
        },
        `wrote ${o.out}: ${x.entries.length} entries in ${x.blocks.length} blocks, ${x.chains.length} audit chain(s), complete to height ${x.height}\ncheck it anywhere with: custos audit verify ${o.out} --genesis genesis.json`,
      );
    },
  );

  a.command("verify")
    .description("check an export with no node: signatures, proofs, certificates, completeness, every figure")
    .argument("<file>", "the export (from custos audit export)")
    .requiredOption("--genesis <file>", "the chain's genesis.json: the only thing trusted")
    .option("--json", "print the verification report as one JSON document")
    .action(async (file: string, o: { genesis: string; json?: boolean }) => {
      const genesis = parseGenesis(readJson(o.genesis, "the genesis"));
      const x: AuditExport = parseExport(readJson(file, "an audit export"));
      const pool = new VerifierPool();
      let r: VerifyReport;
      const started = Date.now();
      try {
        r = await verifyExport(x, { genesis, verifier: pool });
      } finally {
        await pool.close();
      }
      const ms = Date.now() - started;
      output(!!o.json, { ...r, ms }, `${verifyText(r, file)}\n(${ms} ms)`);
      if (!r.ok)
        throw new CustosError(
          "AUDIT_VERIFY_FAILED",
          `the export did not verify: ${r.failures.length} check(s) failed; first: ${r.failures[0]?.check}${r.failures[0]?.entry !== undefined ? ` of entry ${r.failures[0]?.entry}` : ""}`,
        );
    });
}
