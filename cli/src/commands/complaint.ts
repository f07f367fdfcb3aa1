import { readFile } from "node:fs/promises";
import { encode } from "@custos/codec";
import { sm3 } from "@custos/crypto";
import { CustosError, toHex } from "@custos/utils";
import type { Command } from "commander";
import { when } from "../auditTables.js";
import { output, UsageError } from "../io.js";
import {
  type RpcOpts,
  rpcOption,
  type SignOpts,
  sendAndReport,
  signOption,
  type Target,
  target,
} from "./chain.js";

/**
 * `custos complaint` (行业举报): consumers report programmes; the regulator classifies each
 * complaint and records its handling (system contract `complaints`, node/src/system/complaints.ts).
 * Details stay off the chain: the chain keeps the SM3 hash of the document (`--details FILE`
 * hashes it here; nothing of it is sent).
 */
const CATEGORIES =
  "refund-refused, service-not-delivered, closure-absconding, misleading-sales, price-dispute, card-terms, other";

async function documentHash(
  file: string | undefined,
  hash: string | undefined,
  what: string,
): Promise<string> {
  if ((file === undefined) === (hash === undefined))
    throw new UsageError(
      `give the ${what} with exactly one of --${what} FILE (hashed here, never sent) or --${what}-hash 0xSM3`,
    );
  if (hash !== undefined) {
    if (!/^0x[0-9a-fA-F]{64}$/.test(hash))
      throw new UsageError(`--${what}-hash is an SM3 hash (0x + 64 hex)`);
    return hash.toLowerCase();
  }
  try {
    return `0x${toHex(sm3(new Uint8Array(await readFile(file as string))))}`;
  } catch (cause) {
    throw new CustosError("FILE_NOT_READABLE", `cannot read ${file}`, {}, { cause });
  }
}

function complaintId(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError("a complaint id is an integer >= 1");
  return n;
}

function line(c: Record<string, any>, name: (a: string) => string): string {
  return `#${c.id} ${String(c.status).padEnd(10)} ${c.category.padEnd(22)} ${name(c.programme)} by ${name(c.consumer)} at ${when(c.filedAt)}${c.classification ? `  ${c.classification}/${c.severity}` : ""}${c.outcome ? `  ${c.outcome}` : ""}`;
}

const namer = (t: Target) => (a: string) => t.names.nameOf(a) ?? a;

export function registerComplaintCommands(program: Command): void {
  const c = program
    .command("complaint")
    .description("consumers' complaints about programmes (行业举报), and their handling");
  signOption(c.command("file").description("file a complaint about a programme (consumers)"))
    .requiredOption("--programme <address>", "the programme (contract instance) complained about")
    .requiredOption("--category <name>", CATEGORIES)
    .option("--details <file>", "the complaint's details, kept off the chain: its SM3 hash goes on chain")
    .option("--details-hash <hash>", "the SM3 hash of the details instead")
    .action(
      async (
        o: SignOpts & { programme: string; category: string; details?: string; detailsHash?: string },
      ) => {
        const t = target(o);
        const programme = t.names.address(o.programme, "--programme");
        const hash = await documentHash(o.details, o.detailsHash, "details");
        await sendAndReport(
          o,
          t,
          { to: "complaints", method: "file", args: [programme, o.category, hash] },
          (r) => `complaint ${(r.output as { id: number }).id} filed (details ${hash})`,
        );
      },
    );
  signOption(c.command("classify").description("classify a complaint (regulator)").argument("<id>"))
    .requiredOption("--classification <c>", "valid, partly-valid, invalid or duplicate")
    .requiredOption("--severity <s>", "minor, serious or major")
    .action(async (id: string, o: SignOpts & { classification: string; severity: string }) => {
      await sendAndReport(
        o,
        target(o),
        { to: "complaints", method: "classify", args: [complaintId(id), o.classification, o.severity] },
        () => `complaint ${id} classified ${o.classification}, ${o.severity}`,
      );
    });
  signOption(
    c
      .command("handle")
      .description("record how a classified complaint was handled; closes it (regulator)")
      .argument("<id>"),
  )
    .requiredOption("--outcome <o>", "mediated, refund-ordered, penalised, referred or dismissed")
    .option("--note <file>", "the handling record, kept off the chain: its SM3 hash goes on chain")
    .option("--note-hash <hash>", "the SM3 hash of the handling record instead")
    .action(async (id: string, o: SignOpts & { outcome: string; note?: string; noteHash?: string }) => {
      const hash = await documentHash(o.note, o.noteHash, "note");
      await sendAndReport(
        o,
        target(o),
        { to: "complaints", method: "handle", args: [complaintId(id), o.outcome, hash] },
        () => `complaint ${id} handled: ${o.outcome}`,
      );
    });
  rpcOption(c.command("list").description("complaints, newest first"))
    .option("--programme <address>")
    .option("--consumer <address>")
    .option("--status <s>", "filed, classified or handled")
    .option("--limit <n>", "at most this many (1-500)", "100")
    .action(
      async (o: RpcOpts & { programme?: string; consumer?: string; status?: string; limit: string }) => {
        const t = target(o);
        const filter: Record<string, string> = {};
        if (o.programme) filter.programme = t.names.address(o.programme, "--programme");
        if (o.consumer) filter.consumer = t.names.address(o.consumer, "--consumer");
        if (o.status) filter.status = o.status;
        const limit = Number(o.limit);
        if (!Number.isSafeInteger(limit) || limit < 1 || limit > 500)
          throw new UsageError("--limit takes 1 to 500");
        const list = await t.client.call<Record<string, any>[]>(
          "complaints",
          "list",
          encode([filter, limit]),
        );
        output(
          !!o.json,
          { complaints: list },
          list.length ? list.map((x) => line(x, namer(t))).join("\n") : "no complaints",
        );
      },
    );
  rpcOption(
    c.command("show").description("one complaint with its classification and handling").argument("<id>"),
  ).action(async (id: string, o: RpcOpts) => {
    const t = target(o);
    const x = await t.client.call<Record<string, any>>("complaints", "get", encode([complaintId(id)]));
    output(
      !!o.json,
      x,
      [
        line(x, namer(t)),
        `  details hash ${x.detailsHash}`,
        ...(x.classifiedBy ? [`  classified by ${namer(t)(x.classifiedBy)} at ${when(x.classifiedAt)}`] : []),
        ...(x.handledBy
          ? [
              `  handled by ${namer(t)(x.handledBy)} at ${when(x.handledAt)}: ${x.outcome} (note ${x.noteHash})`,
            ]
          : []),
      ].join("\n"),
    );
  });
}
