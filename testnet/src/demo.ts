import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  CustosClient,
  formatFen,
  listProgrammes,
  openProgramme,
  PREPAID_TEMPLATE,
  PrepaidProgramme,
  type ProductSpec,
  type ProgrammeParams,
  Wallet,
} from "@custos/client";
import { encode } from "@custos/codec";
import { loadKeystoreFile } from "@custos/crypto";
import { CustosError } from "@custos/utils";
import { readTestnet } from "./testnet.js";

/**
 * The prepaid-card demo that `custos testnet up` (and so `npm start`) sets up on a fresh testnet:
 * the prepaid-card template submitted and approved by the committee, two merchants onboarded with
 * a programme each (a gym selling count and period cards, a training school selling stored-value
 * cards) opened by the service institution, and e-CNY issued to the demo consumers. Every step
 * looks at the chain first, so running it again (a restarted testnet) does nothing twice.
 */

export const DEMO_TEMPLATE_VERSION = "1.0.0";

export interface DemoProgrammeSpec {
  slug: string;
  merchant: string;
  params: Omit<ProgrammeParams, "merchant">;
  products: ProductSpec[];
}

export const DEMO_PROGRAMMES: readonly DemoProgrammeSpec[] = [
  {
    slug: "sunrise-gym",
    merchant: "merchant-1",
    params: { name: "Sunrise Gym", coolingOffDays: 7, closureNoticeDays: 30 },
    products: [
      { kind: "count", name: "10 visits", uses: 10, price: 300_00n, validDays: 90 },
      { kind: "period", name: "Monthly pass", period: "month", price: 199_00n, usesPerDay: 1 },
      { kind: "count", name: "Trial week", uses: 3, price: 60_00n, validDays: 7 },
    ],
  },
  {
    slug: "bright-future-school",
    merchant: "merchant-2",
    params: {
      name: "Bright Future School",
      issuerClass: "scale",
      escrowShareBps: 7000,
      refund: { afterCoolingOff: true, feeBps: 500 },
    },
    products: [
      { kind: "stored", name: "1,000-yuan card", faceValue: 1000_00n, price: 950_00n, validDays: 365 },
      {
        kind: "stored",
        name: "Top-up card",
        open: true,
        minAmount: 100_00n,
        maxAmount: 5000_00n,
        validDays: 365,
      },
    ],
  },
];

/** e-CNY the operator issues to the demo consumers (fen), each within its wallet tier. */
export const DEMO_ECNY: readonly (readonly [string, bigint])[] = [
  ["consumer-1", 10_000_00n],
  ["consumer-2", 3_000_00n],
  ["consumer-3", 1_000_00n],
];

export interface DemoAccount {
  name: string;
  address: string;
  keyFile: string;
}

export interface PrepaidDemoOptions {
  /** A validator's RPC URL. */
  rpc: string;
  /** The demo members (testnet.json's accounts), with their key files. */
  accounts: readonly DemoAccount[];
  password: string;
  log?: (line: string) => void;
}

export interface DemoProgramme {
  slug: string;
  name: string;
  address: string;
  merchant: string;
  products: { id: number; name: string; kind: string; price: bigint; open: boolean; maxAmount: bigint }[];
}

export interface PrepaidDemo {
  template: { id: string; codeHash: string; proposalId: number };
  programmes: DemoProgramme[];
  issued: { to: string; amount: bigint }[];
  /** What this run did (empty when everything was there already). */
  done: string[];
}

/** Sets up (or finds) the demo on the chain at `o.rpc`. */
export async function setUpPrepaidDemo(o: PrepaidDemoOptions): Promise<PrepaidDemo> {
  const client = new CustosClient(o.rpc);
  const log = o.log ?? (() => {});
  const done: string[] = [];
  const note = (s: string) => {
    done.push(s);
    log(s);
  };
  const account = (name: string) => {
    const a = o.accounts.find((x) => x.name === name);
    if (!a) throw new CustosError("DEMO_ACCOUNT_MISSING", `no demo member ${name} among the accounts`);
    return a;
  };
  const wallets = new Map<string, Promise<Wallet>>();
  const walletOf = (name: string) => {
    let w = wallets.get(name);
    if (!w) {
      w = loadKeystoreFile(account(name).keyFile, o.password).then((k) => new Wallet(client, k));
      wallets.set(name, w);
    }
    return w;
  };
  const send = async (from: string, to: string, method: string, args: unknown[]) => {
    const r = await (await walletOf(from)).send({ to, method, args });
    return r.receipt as NonNullable<typeof r.receipt>;
  };
  const must = <T extends { success: boolean; errorCode: string | null; errorMessage: string | null }>(
    r: T,
    what: string,
  ): T => {
    if (!r.success)
      throw new CustosError(r.errorCode ?? "DEMO_FAILED", `prepaid demo: ${what} failed: ${r.errorMessage}`);
    return r;
  };

  // 1. the template, approved by the committee
  const id = `${PREPAID_TEMPLATE}@${DEMO_TEMPLATE_VERSION}`;
  const [issued, template] = await Promise.all([
    issueEcny(send, account, note),
    (async () => {
      let t = await templateOf(client, id);
      if (t === undefined || t.status === "rejected" || t.status === "vetoed" || t.status === "expired") {
        const { bundleContract } = await import("@custos/contract-sdk/harness");
        const { CONTRACT_SOURCE } = await import("@custos/prepaid-card");
        const { code } = await bundleContract(CONTRACT_SOURCE);
        const r = must(
          await send("bank", "templates", "submit", [
            PREPAID_TEMPLATE,
            DEMO_TEMPLATE_VERSION,
            "prepaid-card programme (预付资金监管)",
            ["prepaid"],
            "finance",
            code,
          ]),
          "submitting the template",
        );
        note(`submitted ${id} (approval proposal ${(r.output as { proposalId: number }).proposalId})`);
        t = (await templateOf(client, id)) as TemplateView;
      }
      if (t.status === "pending") {
        const voted = new Set(t.votes);
        const voters = ["committee-1", "committee-2", "committee-3"].filter(
          (n) => !voted.has(account(n).address),
        );
        for (const v of voters) {
          must(await send(v, "governance", "vote", [t.proposalId, true]), `${v}'s vote`);
          note(`${v} approved ${id}`);
          t = (await templateOf(client, id)) as TemplateView;
          if (t.status !== "pending") break;
        }
      }
      if (t.status !== "approved")
        throw new CustosError("DEMO_FAILED", `prepaid demo: ${id} is ${t.status}, not approved`);
      return t;
    })(),
  ]);

  // 2. a programme per merchant, opened by the service institution, with its products
  const existing = await listProgrammes(client);
  const institution = account("service-institution").address;
  const programmes = await Promise.all(
    DEMO_PROGRAMMES.map(async (spec) => {
      const merchant = account(spec.merchant).address;
      let address = existing.find(
        (p) => p.name === spec.params.name && p.merchant === merchant && p.institution === institution,
      )?.address;
      if (address === undefined) {
        const r = await openProgramme(
          await walletOf("service-institution"),
          { merchant, ...spec.params },
          { template: template.codeHash },
        );
        address = r.output.address;
        note(`opened ${spec.slug} (${spec.params.name}) for ${spec.merchant}: ${address}`);
      }
      const programme = new PrepaidProgramme(client, address);
      const added = (await programme.info()).products;
      const till = programme.as(await walletOf(spec.merchant));
      // one at a time: product numbers follow the list, as the README and the journey name them
      for (const p of spec.products.slice(added)) {
        const r = await till.addProduct(p);
        note(`${spec.slug}: product ${r.output.id} ${p.name}`);
      }
      const products = (await programme.products({ includeRetired: true })).map((p) => ({
        id: p.id,
        name: p.name,
        kind: p.kind,
        price: p.price,
        open: p.open,
        maxAmount: p.maxAmount,
      }));
      return { slug: spec.slug, name: spec.params.name, address, merchant: spec.merchant, products };
    }),
  );
  return {
    template: { id, codeHash: template.codeHash, proposalId: template.proposalId },
    programmes,
    issued,
    done,
  };
}

interface TemplateView {
  codeHash: string;
  status: string;
  proposalId: number;
  votes: string[];
}

async function templateOf(client: CustosClient, id: string): Promise<TemplateView | undefined> {
  try {
    const t = await client.call<{
      codeHash: string;
      status: string;
      proposal: { id: number; status: string; votes: { voter: string }[] };
    }>("templates", "get", encode([id]));
    // a pending approval that expired can be submitted again
    const status = t.status === "pending" && t.proposal.status === "expired" ? "expired" : t.status;
    return {
      codeHash: t.codeHash,
      status,
      proposalId: t.proposal.id,
      votes: t.proposal.votes.map((v) => v.voter),
    };
  } catch (err) {
    if ((err as { code?: string }).code === "TEMPLATE_NOT_FOUND") return undefined;
    throw err;
  }
}

/** The demo consumers' e-CNY: a repeated recharge id is refused by the chain, so each is issued once. */
async function issueEcny(
  send: (
    from: string,
    to: string,
    method: string,
    args: unknown[],
  ) => Promise<{
    success: boolean;
    errorCode: string | null;
    errorMessage: string | null;
  }>,
  account: (name: string) => DemoAccount,
  note: (s: string) => void,
): Promise<{ to: string; amount: bigint }[]> {
  return Promise.all(
    DEMO_ECNY.map(async ([name, amount]) => {
      const r = await send("operator", "ecny", "issue", [account(name).address, amount, `demo-${name}`]);
      if (r.success) note(`issued ${formatFen(amount)} yuan to ${name}`);
      else if (r.errorCode !== "ECNY_DUPLICATE_RECHARGE")
        throw new CustosError(
          r.errorCode ?? "DEMO_FAILED",
          `prepaid demo: issuing to ${name}: ${r.errorMessage}`,
        );
      return { to: name, amount };
    }),
  );
}

/** The demo on the testnet in `dir` (its first validator, its accounts and password). */
export async function prepaidDemo(
  dir: string,
  o: { log?: (line: string) => void } = {},
): Promise<PrepaidDemo> {
  const t = await readTestnet(resolve(dir));
  const validator = t.nodes.find((n) => n.role === "validator");
  if (!validator) throw new CustosError("TESTNET_INVALID", `${join(dir, "testnet.json")} lists no validator`);
  const password = (await readFile(t.passwordFile, "utf8")).trim();
  return setUpPrepaidDemo({
    rpc: validator.rpc,
    accounts: t.accounts,
    password,
    ...(o.log ? { log: o.log } : {}),
  });
}

/** What the demo holds, and the commands of the journey to try next, as lines for a terminal. */
export function demoSummary(d: PrepaidDemo, dir: string): string[] {
  const target = `--dir ${dir}`;
  const product = (p: DemoProgramme["products"][number]) =>
    `${p.id} ${p.name} (${p.kind}, ${p.open ? `up to ${formatFen(p.maxAmount)} yuan` : `${formatFen(p.price)} yuan`})`;
  const gym = d.programmes[0]?.slug ?? "sunrise-gym";
  const school = d.programmes[1]?.slug ?? "bright-future-school";
  const cmd = (s: string) => `  npx custos ${s} ${target}`;
  return [
    `prepaid-card demo: ${d.template.id} approved by the committee (proposal ${d.template.proposalId})`,
    ...d.programmes.map(
      (p) => `  ${p.slug.padEnd(22)} ${p.address}  ${p.merchant}: ${p.products.map(product).join(", ")}`,
    ),
    `  e-CNY issued: ${d.issued.map((i) => `${i.to} ${formatFen(i.amount)}`).join(", ")} yuan`,
    `the journey (README, Prepaid-card supervision), from another shell after export CUSTOS_PASSWORD=$(cat ${dir}/password):`,
    cmd(`prepaid products --programme ${gym}`),
    cmd(`prepaid buy --programme ${gym} --product 1 --key consumer-1`),
    cmd(`prepaid consume 1 --programme ${gym} --key consumer-1`),
    cmd(`prepaid claim --programme ${gym} --key merchant-1`),
    cmd(`prepaid buy --programme ${school} --product 1 --key consumer-2`),
    cmd(`prepaid consume 1 --programme ${school} --amount 120 --key consumer-2`),
    cmd(`prepaid freeze --programme ${gym} --reason "complaints" --key regulator`),
    cmd(`prepaid force-refunds --programme ${gym} --batch 10 --key regulator`),
    cmd("prepaid check"),
  ];
}
