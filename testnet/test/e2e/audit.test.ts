import { execFile, spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type CustosClient, Wallet } from "@custos/client";
import { decode, encode } from "@custos/codec";
import { bundleContract } from "@custos/contract-sdk/harness";
import { loadKeystoreFile, type Sm2KeyPair, sm2Sign, sm3 } from "@custos/crypto";
import {
  commitVoteBytes,
  decodeCertificate,
  decodeHeader,
  decodeReceipt,
  encodeCertificate,
  encodeReceipt,
  quorumSize,
} from "@custos/types";
import { fromHex, toHex } from "@custos/utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as testnet from "../../src/index.js";
import { CLI, type RunningTestnet, startTestnet, until } from "../helpers.js";

/**
 * Issue 15's acceptance, tried as a new user would on a 4-validator testnet with an observer:
 * a prepaid journey driven by transactions; the auditor, with only the observer, traces a card
 * from purchase to refund, a consumer across two merchants and a programme, to the fen of the
 * chain's balances, and reports the day with fulfilment, refunds, complaints and risk levels; the
 * observer survives kill -9 with its audit index consistent; exports verify with every node
 * stopped, and every kind of tampering fails naming the entry and the check.
 */
const CONTRACT = fileURLToPath(new URL("../../../contracts/prepaid-card/src/contract.ts", import.meta.url));
const run = promisify(execFile);
let net: RunningTestnet;
let dir: string;
let t: testnet.TestnetFile;
let clients: CustosClient[];
let keys: Map<string, Sm2KeyPair>;
let observer: string;
let genesisFile: string;
let p1: string;
let p2: string;
const OBS = 4;

const address = (name: string) => (keys.get(name) as Sm2KeyPair).address;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, ...pre] = CLI;
  try {
    const { stdout, stderr } = await run(cmd as string, [...pre, ...args], {
      env: { ...process.env, CUSTOS_PASSWORD: net.password },
      maxBuffer: 256 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? -1, stdout: err.stdout ?? "", stderr: err.stderr ?? "" };
  }
}

/** The auditor's command: the observer's RPC, the testnet's demo members by name. */
async function audit(...args: string[]): Promise<any> {
  const r = await cli("audit", ...args, "--rpc", observer, "--dir", dir, "--json");
  if (r.code !== 0) throw new Error(`custos audit ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function send(from: string, to: string, method: string, args: unknown[] = [], value = 0n) {
  const node = Math.floor(Math.random() * 3);
  const r = await new Wallet(clients[node] as CustosClient, keys.get(from) as Sm2KeyPair).send({
    to,
    method,
    args,
    value,
  });
  if (!r.receipt?.success)
    throw new Error(`${to}.${method}: ${r.receipt?.errorCode} ${r.receipt?.errorMessage}`);
  return r.receipt as NonNullable<typeof r.receipt> & { output: any };
}

/** The observer answers for the validators' head (it syncs). */
async function observerAtHead(): Promise<void> {
  const h = (await (clients[0] as CustosClient).status()).height;
  await until(async () => (await (clients[OBS] as CustosClient).status()).height >= h, 30_000);
}

const call = (to: string, method: string, args: unknown[] = []) =>
  (clients[OBS] as CustosClient).call<any>(to, method, encode(args));

beforeAll(async () => {
  net = await startTestnet("custos-audit-net-");
  ({ dir, t, clients, keys } = net);
  observer = t.nodes[OBS]?.rpc as string;
  genesisFile = join(dir, "genesis.json");
}, 120_000);

afterAll(async () => {
  await net?.stop();
});

describe("the auditor's side on a 4-validator testnet with an observer", () => {
  it("a prepaid journey runs: two programmes, purchases, uses, a card transfer, refunds, complaints, a freeze", async () => {
    const { code, codeHash } = await bundleContract(CONTRACT);
    const sub = await send("bank", "templates", "submit", [
      "prepaid-card",
      "1.0.0",
      "prepaid cards",
      ["prepaid"],
      "finance",
      code,
    ]);
    await send("committee-1", "governance", "vote", [sub.output.proposalId, true]);
    await send("committee-2", "governance", "vote", [sub.output.proposalId, true]);
    const inst = async (by: string, merchant: string, name: string) =>
      (
        await send(by, "templates", "instantiate", [
          codeHash,
          JSON.stringify({ merchant: address(merchant), name }),
        ])
      ).output.address as string;
    p1 = await inst("bank", "merchant-1", "Sunrise Gym");
    p2 = await inst("service-institution", "merchant-2", "Moonlight Spa");
    await send("operator", "ecny", "issue", [address("consumer-1"), 300_000n, "rc-a1"]);
    await send("operator", "ecny", "issue", [address("consumer-2"), 300_000n, "rc-a2"]);
    await send("operator", "ecny", "issue", [address("consumer-3"), 100_000n, "rc-a3"]);
    await send("merchant-1", p1, "addProduct", [
      { name: "500 yuan card", kind: "stored", faceValue: 50_000n },
    ]);
    await send("merchant-2", p2, "addProduct", [
      { name: "200 yuan card", kind: "stored", faceValue: 20_000n },
    ]);
    await send("consumer-1", p1, "buy", [1], 50_000n); // P1 card 1
    await send("consumer-1", p2, "buy", [1], 20_000n); // P2 card 1
    await send("consumer-1", p1, "consume", [1, 12_000n]);
    await send("consumer-1", p1, "transferCard", [1, address("consumer-2")]);
    await send("consumer-2", p1, "consume", [1, 8_000n]);
    await send("merchant-1", p1, "claim", []);
    await send("consumer-1", p2, "refund", [1]); // P2 card 1: purchase -> refund
    await send("consumer-2", p2, "buy", [1], 20_000n); // P2 card 2
    await send("consumer-2", p2, "refund", [2]);
    await send("consumer-3", p2, "buy", [1], 20_000n); // P2 card 3
    // complaints, through the CLI as a consumer and the regulator would
    const details = join(dir, "complaint.txt");
    await writeFile(details, "the spa refused my refund; receipts attached (kept by the regulator)");
    for (const who of ["consumer-1", "consumer-2", "consumer-3"]) {
      const r = await cli(
        "complaint",
        "file",
        "--programme",
        p2,
        "--category",
        "refund-refused",
        "--details",
        details,
        "--dir",
        dir,
        "--key",
        who,
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/complaint \d+ filed/);
    }
    const list = JSON.parse(
      (await cli("complaint", "list", "--programme", p2, "--dir", dir, "--json")).stdout,
    ).complaints;
    expect(list).toHaveLength(3);
    expect(list[0].detailsHash).toBe(`0x${toHex(sm3(new Uint8Array(await readFile(details))))}`);
    const classify = await cli(
      "complaint",
      "classify",
      String(list[0].id),
      "--classification",
      "valid",
      "--severity",
      "serious",
      "--dir",
      dir,
      "--key",
      "regulator",
    );
    expect(classify.code, classify.stderr).toBe(0);
    await send("regulator", p2, "freeze", ["refund complaints"]);
    await send("regulator", p2, "forceRefund", [50]); // P2 card 3: forced refund
    await observerAtHead();
  }, 240_000);

  it("the observer traces a card from purchase to refund, a consumer across two merchants and a programme, to the fen", async () => {
    const card = await audit("trace", "--card", "1", "--programme", p2);
    expect(card.rows.map((r: any) => [r.name, r.delta, r.balance])).toEqual([
      ["CardSold", "20000", "20000"],
      ["CardRefunded", "-20000", "0"],
    ]);
    const onChainCard = await call(p2, "card", [1]);
    expect([String(onChainCard.paid), String(onChainCard.refunded), onChainCard.status]).toEqual([
      "20000",
      "20000",
      "refunded",
    ]);

    const consumer = await audit("trace", "--account", "consumer-1");
    const wallet = await (clients[OBS] as CustosClient).ecnyBalance(address("consumer-1"));
    expect(consumer.closing).toBe(wallet.balance);
    expect(new Set(consumer.rows.filter((r: any) => r.programme).map((r: any) => r.programme))).toEqual(
      new Set([p1, p2]),
    );
    expect(consumer.rows.filter((r: any) => r.delta !== "0").map((r: any) => [r.kind, r.delta])).toEqual([
      ["issue", "300000"],
      ["purchase", "-50000"],
      ["purchase", "-20000"],
      ["refund", "20000"],
    ]);
    const table = await cli("audit", "trace", "--account", "consumer-1", "--rpc", observer, "--dir", dir);
    expect(table.stdout).toMatch(
      /closing 2500\.00 yuan; at height \d+: 2500\.00 yuan \(the chain's balance\)/,
    );
    const csv = await cli(
      "audit",
      "trace",
      "--account",
      "consumer-1",
      "--rpc",
      observer,
      "--dir",
      dir,
      "--format",
      "csv",
    );
    expect(csv.stdout.split("\r\n")[0]).toMatch(
      /^time,height,tx,event_index,tx_hash,sender,emitter,event,kind,amount_fen,delta_fen,balance_fen/,
    );

    const programme = await audit("trace", "--programme", p1);
    expect(programme.closing).toBe((await (clients[OBS] as CustosClient).ecnyBalance(p1)).balance);
    expect(programme.closing).toBe(String((await call(p1, "escrowSummary")).balance));
    const transferred = await audit("trace", "--card", "1", "--programme", p1);
    expect(transferred.closing).toBe(String((await call(p1, "card", [1])).remaining));
  }, 60_000);

  it("the day's report: sales, consumption, refunds, fulfilment per merchant; refunds and complaints raise the risk", async () => {
    const head = (await (clients[OBS] as CustosClient).status()).latestTimestamp;
    const day = new Date(head + 8 * 3_600_000).toISOString().slice(0, 10);
    const r = await audit("report", "--date", day);
    const m1 = r.merchants.find((m: any) => m.merchant === address("merchant-1"));
    const m2 = r.merchants.find((m: any) => m.merchant === address("merchant-2"));
    expect(m1).toMatchObject({ sold: "50000", consumed: "20000", refunded: "0", fulfilmentRateBps: 10000 });
    expect(m2).toMatchObject({
      sold: "60000",
      consumed: "0",
      refunded: "60000",
      fulfilmentRateBps: 0,
      complaints: { filed: 3, counted: 3, serious: 1 },
    });
    expect(m1.risk.level).toBe("low");
    expect(m2.risk.level).toBe("high");
    expect(m2.risk.score).toBeGreaterThan(m1.risk.score);
    const text = await cli("audit", "report", "--date", day, "--rpc", observer, "--dir", dir);
    expect(text.stdout).toMatch(/merchant-2 .* high +D/);
    const f = await call(p1, "fulfilment");
    expect(String(f.sold)).toBe(m1.sold);
  }, 60_000);

  it("the observer's audit index survives kill -9 and is consistent when it restarts", async () => {
    // blocks keep coming while the observer indexes them, and it is killed in the middle
    const before = (await (clients[OBS] as CustosClient).status()).height;
    const pending = Array.from({ length: 40 }, (_, i) =>
      send("consumer-2", "ecny", "transfer", [address("consumer-1"), BigInt(i + 1)]),
    );
    // killed once the observer has taken some of these blocks, not before any arrived
    await until(async () => (await (clients[OBS] as CustosClient).status()).height > before, 30_000);
    await testnet.kill(dir, OBS);
    await Promise.all(pending);
    await testnet.restart(dir, OBS);
    await observerAtHead();
    await until(async () => {
      const s = await audit("status");
      return s.indexedHeight === s.ledgerHeight;
    }, 30_000);
    const consumer = await audit("trace", "--account", "consumer-1");
    expect(consumer.closing).toBe(
      (await (clients[OBS] as CustosClient).ecnyBalance(address("consumer-1"))).balance,
    );
    expect(consumer.rows.filter((r: any) => r.kind === "transfer")).toHaveLength(40);
    const rec = await audit("reconcile");
    expect(rec.check).toMatchObject({ supply: "700000", sum: "700000", ok: true });
    expect(rec.differences).toEqual([]);
  }, 120_000);

  let files: Record<string, string>;

  it("governance removes a validator; the exports are written by the observer", async () => {
    const p = await send("committee-1", "governance", "propose", [
      "validator.remove",
      JSON.stringify({ name: "validator-3" }),
    ]);
    await send("committee-2", "governance", "vote", [p.output.id, true]);
    await send("consumer-3", "ecny", "transfer", [address("consumer-1"), 777n]);
    await observerAtHead();
    files = {
      consumer: join(dir, "consumer-1.json"),
      card: join(dir, "card.json"),
      programme: join(dir, "programme.json"),
      report: join(dir, "report.json"),
      reconciliation: join(dir, "reconciliation.json"),
    };
    const base = ["--rpc", observer, "--dir", dir];
    for (const [args, file] of [
      [["--account", "consumer-1"], files.consumer],
      [["--card", "1", "--programme", p2], files.card],
      [["--programme", p1], files.programme],
      [["--report"], files.report],
      [["--reconciliation"], files.reconciliation],
    ] as const) {
      const r = await cli("audit", "export", ...args, "--out", file as string, ...base);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^wrote .* entries in \d+ blocks/);
    }
    const doc = JSON.parse(await readFile(files.consumer as string, "utf8"));
    expect(doc.validatorChanges).toHaveLength(1);
  }, 120_000);

  it("with every node stopped, the exports verify offline", async () => {
    await testnet.down(dir);
    const status = await testnet.status(dir);
    expect(status.every((s) => s.state === "stopped")).toBe(true);
    for (const file of Object.values(files)) {
      const r = await cli("audit", "verify", file, "--genesis", genesisFile);
      expect(r.code, `${file}: ${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/\nVERIFIED\n/);
    }
    const j = JSON.parse(
      (await cli("audit", "verify", files.consumer as string, "--genesis", genesisFile, "--json")).stdout,
    );
    expect(j).toMatchObject({ ok: true, failures: [] });
    expect(j.checked.validatorChanges).toBe(1);
  }, 120_000);

  async function tampered(name: string, change: (d: any) => void | Promise<void>) {
    const d = JSON.parse(await readFile(files.consumer as string, "utf8"));
    await change(d);
    const file = join(dir, `tampered-${name}.json`);
    await writeFile(file, JSON.stringify(d));
    const r = await cli("audit", "verify", file, "--genesis", genesisFile);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/AUDIT_VERIFY_FAILED/);
    return r.stdout;
  }

  it("tampering fails, naming the entry and the check", async () => {
    // one changed amount in a receipt
    let entry = -1;
    let out = await tampered("amount", (d) => {
      const e = d.entries.find((x: any) =>
        decodeReceipt(fromHex(x.receipt)).events.some((ev) => ev.name === "Transfer"),
      );
      entry = e.id;
      const rc = decodeReceipt(fromHex(e.receipt));
      const ev = rc.events.find((x) => x.name === "Transfer") as (typeof rc.events)[number];
      const data = decode(ev.data, "d", 1024) as unknown[];
      ev.data = encode([data[0], data[1], (data[2] as bigint) - 1n]);
      e.receipt = `0x${toHex(encodeReceipt(rc))}`;
    });
    expect(out).toContain(`entry.receiptProof [entry ${entry}]`);

    // a dropped entry in the middle of the trace
    out = await tampered("middle", (d) => {
      const links = d.chains[0].links;
      const k = Math.floor(links.length / 2);
      entry = links[k + 1].entry;
      links.splice(k, 1);
    });
    expect(out).toContain(`chain.link [entry ${entry}]`);

    // the dropped last entry
    out = await tampered("last", (d) => {
      const links = d.chains[0].links;
      links.pop();
      entry = links[links.length - 1].entry;
    });
    expect(out).toContain(`chain.head [entry ${entry}]`);

    // a changed proof node
    out = await tampered("proof", (d) => {
      const e = d.entries.find((x: any) => x.receiptProof.length > 0);
      entry = e.id;
      e.receiptProof[0] = `0x${"ab".repeat(32)}`;
    });
    expect(out).toContain(`entry.receiptProof [entry ${entry}]`);

    // a changed certificate signature
    let block = -1;
    let signer = -1; // whichever validator's signature comes first (any three of four sign)
    out = await tampered("signature", (d) => {
      const b = d.blocks.find((x: any) => d.entries.some((e: any) => e.height === x.height));
      block = b.height;
      const c = decodeCertificate(fromHex(b.certificate));
      signer = c.signatures[0]?.validator as number;
      const s = c.signatures[0]?.signature as Uint8Array;
      s[5] = (s[5] as number) ^ 1;
      b.certificate = `0x${toHex(encodeCertificate(c))}`;
    });
    expect(out).toMatch(
      new RegExp(
        `block\\.certificate \\[block ${block}\\]: block ${block} \\(holds entries [\\d, ]+\\): commit certificate: bad signature from validator ${signer} \\(validator-${signer}\\)`,
      ),
    );

    // a certificate signed by the validator governance removed
    const removed = await loadKeystoreFile(join(dir, "validator-3", "keys", "node.json"), net.password);
    out = await tampered("removed", async (d) => {
      const b = d.blocks[d.blocks.length - 1]; // after the removal: the set is validator-0..2
      block = b.height;
      const c = decodeCertificate(fromHex(b.certificate));
      const header = decodeHeader(fromHex(b.header));
      const sig = sm2Sign(removed.privateKey, commitVoteBytes(c.chainId, header.height, c.view, c.blockHash));
      c.signatures = [...c.signatures.filter((s) => s.validator < 2), { validator: 3, signature: sig }];
      expect(c.signatures.length).toBe(quorumSize(3));
      b.certificate = `0x${toHex(encodeCertificate(c))}`;
    });
    expect(out).toMatch(
      new RegExp(`block\\.certificate \\[block ${block}\\]: .*validator 3 is not in a set of 3`),
    );
  }, 120_000);

  it("an entry from another chain fails, naming it", async () => {
    const home = join(dir, "other-chain");
    expect((await cli("init", "--home", home, "--dev")).code).toBe(0);
    const cfg = JSON.parse(await readFile(join(home, "config.json"), "utf8"));
    cfg.rpc.listen = "127.0.0.1:0";
    await writeFile(join(home, "config.json"), JSON.stringify(cfg));
    const [cmd, ...pre] = CLI;
    const child = spawn(cmd as string, [...pre, "node", "start", "--home", home], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      let out = "";
      child.stdout.on("data", (b) => {
        out += String(b);
      });
      await until(() => /rpc: http/.test(out), 30_000);
      const other = ["--home", home];
      expect(
        (
          await cli(
            "ecny",
            "issue",
            "--to",
            "consumer-1",
            "--amount",
            "1",
            "--recharge-id",
            "x",
            "--key",
            "operator",
            ...other,
            "--password-file",
            join(home, "dev-password"),
          )
        ).code,
      ).toBe(0);
      expect(
        (await cli("audit", "export", "--account", "consumer-1", "--out", join(dir, "other.json"), ...other))
          .code,
      ).toBe(0);
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }
    const foreign = JSON.parse(await readFile(join(dir, "other.json"), "utf8"));
    let id = -1;
    const out = await tampered("foreign", (d) => {
      const fe = foreign.entries[0];
      id = d.entries.length;
      d.entries.push({ ...fe, id });
      d.chains[0].links.push({ entry: id, event: 0 });
    });
    expect(out).toMatch(new RegExp(`(entry\\.tx|entry\\.txProof|entry\\.block) \\[entry ${id}\\]`));
  }, 120_000);
});
