import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CustosClient, openProgramme, type PrepaidActor, PrepaidProgramme, Wallet } from "@custos/client";
import { encode } from "@custos/codec";
import { loadKeystoreFile } from "@custos/crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as testnet from "../../src/index.js";
import { CLI, until } from "../helpers.js";

/**
 * Issue 13 on a real testnet (4 validator processes and an observer, started by `custos testnet
 * up` with its prepaid-card demo): the journey of the README's "Prepaid-card supervision" through
 * the CLI — a merchant onboarded by proposal, a programme opened, a product of each kind,
 * e-CNY issued, every card kind bought and used, a period card's accrual claimed after the
 * testnet clock moves on, a transfer, a loss report and a reissue, a cooling-off refund, a
 * freeze, forced refunds in batches and a closure — with the wrong actors and wrong moves refused
 * by their stable codes and changing nothing (some through the CLI, the rest through the client
 * SDK as a till or a wallet app sends them, which is quicker). Then the escrow invariant from the chain (`custos
 * prepaid check`), e-CNY conserved, and every node's receipt of every journey transaction (the
 * observer's included) the same.
 */
const run = promisify(execFile);

let dir: string;
let t: testnet.TestnetFile;
let env: Record<string, string>;
let clients: CustosClient[];
/** Every transaction of the journey: hash -> block height. */
const txs = new Map<string, number>();
/** e-CNY issued on this chain (fen): the demo's, then the journey's. */
let issued = 0n;

interface Ran {
  status: number;
  json: any;
  error: { code: string; message: string } | undefined;
  stdout: string;
}

async function custos(args: string[], json = true): Promise<Ran> {
  const [cmd, ...pre] = CLI as [string, ...string[]];
  try {
    const { stdout } = await run(cmd, [...pre, ...args, ...(json ? ["--json"] : [])], {
      env,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { status: 0, json: json ? JSON.parse(stdout) : undefined, error: undefined, stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== "number") throw err;
    const error = json && e.stderr ? JSON.parse(e.stderr).error : undefined;
    let doc: any;
    try {
      doc = e.stdout ? JSON.parse(e.stdout) : undefined;
    } catch {
      doc = undefined;
    }
    return { status: e.code, json: doc, error, stdout: e.stdout ?? "" };
  }
}

/** --dir of the testnet: its first validator, its demo members' names. */
const inDir = () => ["--dir", dir];
const programme = (name: string) => ["--programme", name, ...inDir()];
const yogaKey = () => join(dir, "accounts", "lotus-yoga.json");

/** A transaction that must succeed; its hash joins the journey. */
async function ok(args: string[]): Promise<any> {
  const r = await custos([...args]);
  expect(r.error, `custos ${args.join(" ")}`).toBeUndefined();
  expect(r.status).toBe(0);
  if (typeof r.json?.hash === "string") txs.set(r.json.hash, r.json.blockHeight);
  return r.json;
}

/**
 * What a wrong move must leave as it was: the e-CNY balances of the demo members and the
 * programmes, and each programme's accounts (which do not move with time, unlike a period
 * card's view).
 */
async function snapshot(): Promise<unknown> {
  const c = clients[0] as CustosClient;
  const balances = await Promise.all(
    [...t.accounts.map((a) => a.address), ...(await programmes())].map(
      async (a) => (await c.ecnyBalance(a)).balance,
    ),
  );
  const accounts = await Promise.all(
    (await programmes()).map(async (p) => {
      const s = await new PrepaidProgramme(c, p).escrow();
      return { ...s, balance: s.balance.toString() };
    }),
  );
  return JSON.parse(JSON.stringify({ balances, accounts }, (_k, v) => (typeof v === "bigint" ? `${v}` : v)));
}

async function programmes(): Promise<string[]> {
  const list = await (clients[0] as CustosClient).call<{ address: string }[]>(
    "templates",
    "instances",
    encode([JSON.stringify({ template: "prepaid-card" })]),
  );
  return list.map((p) => p.address).sort();
}

/** A wrong move: refused with `code` (exit 1), its failed receipt committed, nothing changed. */
async function refused(args: string[], code: string): Promise<void> {
  const before = await snapshot();
  const r = await custos(args);
  expect(r.error?.code, `custos ${args.join(" ")}: ${JSON.stringify(r.error)}`).toBe(code);
  expect(r.status).toBe(1);
  expect(r.json).toMatchObject({ success: false, errorCode: code });
  txs.set(r.json.hash, r.json.blockHeight);
  expect(await snapshot()).toEqual(before);
}

const fen = (v: unknown) => BigInt(String(v));

const wallets = new Map<string, Promise<Wallet>>();
/** A member's wallet (a demo member, or lotus-yoga with the key it made), on validator 1. */
function walletOf(name: string): Promise<Wallet> {
  let w = wallets.get(name);
  if (!w) {
    const keyFile = name === "lotus-yoga" ? yogaKey() : t.accounts.find((a) => a.name === name)?.keyFile;
    w = loadKeystoreFile(keyFile as string, env.CUSTOS_PASSWORD as string).then(
      (k) => new Wallet(clients[1] as CustosClient, k),
    );
    wallets.set(name, w);
  }
  return w;
}

const addressOf = (name: string) => t.accounts.find((a) => a.name === name)?.address as string;
/** Programmes by slug, as the CLI names them. */
const programmeAt = new Map<string, string>();

async function as(name: string, slug: string): Promise<PrepaidActor> {
  return new PrepaidProgramme(clients[1] as CustosClient, programmeAt.get(slug) as string).as(
    await walletOf(name),
  );
}

const balanceOf = async (name: string) =>
  BigInt((await (clients[0] as CustosClient).ecnyBalance(addressOf(name))).balance);

/** A wrong move sent through the client SDK: refused with `code`, its receipt committed, nothing changed. */
async function refusedSdk(send: () => Promise<unknown>, code: string): Promise<void> {
  const before = await snapshot();
  const err = (await send().then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: string; hash?: string; blockHeight?: number } | undefined;
  expect(err?.code).toBe(code);
  expect(err?.hash).toMatch(/^0x[0-9a-f]{64}$/);
  txs.set(err?.hash as string, err?.blockHeight as number);
  expect(await snapshot()).toEqual(before);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "custos-prepaid-"));
  env = { PATH: process.env.PATH ?? "", HOME: dir, NO_COLOR: "1" };
  if (process.env.CUSTOS_SM2_BACKEND) env.CUSTOS_SM2_BACKEND = process.env.CUSTOS_SM2_BACKEND;
  // the CLI's own `testnet up`, demo included, on ports the kernel says are free (again if taken meanwhile)
  let up: Ran | undefined;
  for (let attempt = 0; attempt < 4; attempt++) {
    const base = await testnet.freeBasePort(5);
    up = await custos([
      "testnet",
      "up",
      "--dir",
      dir,
      "--nodes",
      "4",
      "--observers",
      "1",
      "--base-port",
      `${base}`,
      "--block-interval",
      "50",
    ]);
    if (up.error?.code !== "TESTNET_PORT_BUSY") break;
    await rm(dir, { recursive: true, force: true });
  }
  expect(up?.error).toBeUndefined();
  t = await testnet.readTestnet(dir);
  env.CUSTOS_PASSWORD = readFileSync(t.passwordFile, "utf8").trim();
  clients = t.nodes.map((n) => new CustosClient(n.rpc));
  const demo = up?.json.demo;
  for (const p of demo.programmes) programmeAt.set(p.slug, p.address);
  expect(demo.template).toMatchObject({ id: "prepaid-card@1.0.0", proposalId: 1 });
  expect(demo.programmes.map((p: { slug: string }) => p.slug)).toEqual([
    "sunrise-gym",
    "bright-future-school",
  ]);
  for (const [, amount] of testnet.DEMO_ECNY) issued += amount;
}, 120_000);

afterAll(async () => {
  if (dir) {
    await testnet.down(dir).catch(() => {});
    if (!process.env.KEEP_TMP) await rm(dir, { recursive: true, force: true });
  }
});

describe("the prepaid-card journey through the CLI on 4 validators and an observer", () => {
  it("npm start's demo: the template approved, two programmes with their products; started again, nothing twice", async () => {
    // a node down and testnet.json naming a custos that is gone (the checkout it was made from
    // moved or was upgraded): up --reuse starts it with the custos that runs up, and records it
    await ok(["testnet", "kill", "3", "--dir", dir]);
    const file = join(dir, "testnet.json");
    const before = JSON.parse(readFileSync(file, "utf8"));
    writeFileSync(
      file,
      JSON.stringify({ ...before, command: ["/nonexistent/node", "/nonexistent/custos.js"] }),
    );
    const again = await custos(["testnet", "up", "--dir", dir, "--reuse"]);
    expect(again.error).toBeUndefined();
    expect(JSON.parse(readFileSync(file, "utf8")).command).toEqual(before.command);
    expect(again.json.demo.done).toEqual([]);
    const list = await ok(["prepaid", "programmes", ...inDir()]);
    expect(list.programmes).toHaveLength(2);
    const gym = await ok(["prepaid", "products", ...programme("sunrise-gym")]);
    expect(gym.products.map((p: { kind: string; price: string }) => [p.kind, p.price])).toEqual([
      ["count", "30000"],
      ["period", "19900"],
      ["count", "6000"],
    ]);
    const school = await ok(["prepaid", "products", ...programme("bright-future-school")]);
    expect(school.products.map((p: { kind: string; open: boolean }) => [p.kind, p.open])).toEqual([
      ["stored", false],
      ["stored", true],
    ]);
    for (const [name, amount] of testnet.DEMO_ECNY) expect(await balanceOf(name)).toBe(amount);
  }, 60_000);

  it("a merchant is onboarded by proposal, a programme opened for it, a product of each kind added", async () => {
    const key = await ok(["keygen", "--out", yogaKey(), "--kdf-iterations", "20000"]);
    const proposal = await ok([
      "member",
      "add",
      "--name",
      "lotus-yoga",
      "--public-key",
      key.publicKey,
      "--roles",
      "merchant",
      "--tier",
      "1",
      "--key",
      "committee-1",
      ...inDir(),
    ]);
    // before the committee decides, the institution cannot open a programme for it
    await refused(
      [
        "prepaid",
        "open",
        "--merchant",
        key.address,
        "--name",
        "Lotus Yoga",
        "--key",
        "service-institution",
        ...inDir(),
      ],
      "NOT_MERCHANT",
    );
    await ok(["proposal", "vote", `${proposal.output.id}`, "--approve", "--key", "committee-2", ...inDir()]);
    // a merchant cannot open its own programme; bad rules are refused by the template
    await refusedSdk(
      async () => openProgramme(await walletOf("lotus-yoga"), { merchant: key.address, name: "x" }),
      "NOT_AUTHORIZED",
    );
    await refused(
      [
        "prepaid",
        "open",
        "--merchant",
        key.address,
        "--name",
        "Lotus Yoga",
        "--escrow-share",
        "10",
        "--key",
        "service-institution",
        ...inDir(),
      ],
      "INVALID_PARAMS",
    );
    const opened = await ok([
      "prepaid",
      "open",
      "--merchant",
      key.address,
      "--name",
      "Lotus Yoga",
      "--issuer-class",
      "brand",
      "--escrow-share",
      "80",
      "--card-cap",
      "2000",
      "--cooling-off-days",
      "3",
      "--closure-notice-days",
      "1",
      "--key",
      "service-institution",
      ...inDir(),
    ]);
    programmeAt.set("lotus-yoga", opened.address);
    expect(opened.programme).toMatchObject({
      name: "Lotus Yoga",
      merchant: key.address,
      escrowShareBps: 8000,
      escrowFloorBps: 2000,
      cardCap: "200000",
      status: "active",
    });
    const yoga = programme("lotus-yoga");
    const add = (kind: string, ...rest: string[]) =>
      ok(["prepaid", "product", "add", kind, ...rest, ...yoga, "--key", yogaKey()]);
    expect((await add("stored", "--name", "500-yuan card", "--face-value", "500")).product).toMatchObject({
      id: 1,
      kind: "stored",
      faceValue: "50000",
    });
    expect(
      (await add("count", "--name", "10 classes", "--uses", "10", "--price", "800", "--valid-days", "180"))
        .product,
    ).toMatchObject({ id: 2, uses: 10 });
    expect(
      (await add("period", "--name", "Quarter pass", "--period", "quarter", "--price", "1500")).product,
    ).toMatchObject({ id: 3, termDays: 91 });
    await refusedSdk(
      async () =>
        (await as("merchant-1", "lotus-yoga")).addProduct({ kind: "count", name: "x", uses: 1, price: 100n }),
      "NOT_MERCHANT",
    );
    await refusedSdk(
      async () =>
        (await as("lotus-yoga", "lotus-yoga")).addProduct({
          kind: "period",
          name: "Year",
          period: "year",
          price: 250_000n,
        }),
      "OVER_CARD_CAP",
    );
    await ok([
      "ecny",
      "issue",
      "--to",
      "consumer-2",
      "--amount",
      "2000",
      "--recharge-id",
      "rc-yoga-1",
      "--key",
      "operator",
      ...inDir(),
    ]);
    issued += 200_000n;
  }, 90_000);

  it("consumers buy each card kind and use them; only the holder uses a card, only the merchant claims", async () => {
    const yoga = programme("lotus-yoga");
    const buy = (product: string, key: string, ...rest: string[]) =>
      ok(["prepaid", "buy", "--product", product, ...rest, ...yoga, "--key", key]);
    const stored = await buy("1", "consumer-1");
    expect(stored.card).toMatchObject({
      id: 1,
      kind: "stored",
      paid: "50000",
      escrow: "50000",
      coolingOff: true,
    });
    expect((await buy("2", "consumer-1")).card).toMatchObject({ id: 2, kind: "count", paid: "80000" });
    // a consumer who agreed another price is refused before anything is signed
    const changed = await custos([
      "prepaid",
      "buy",
      "--product",
      "3",
      "--price",
      "1400",
      ...yoga,
      "--key",
      "consumer-2",
    ]);
    expect(changed.error?.code).toBe("PRICE_CHANGED");
    expect((await buy("3", "consumer-2", "--price", "1500")).card).toMatchObject({ id: 3, kind: "period" });

    // a stored-value use: cooling-off ends, the 20 % hold and 80 % of the 120.50 yuan are released
    const used = await ok(["prepaid", "consume", "1", "--amount", "120.50", ...yoga, "--key", "consumer-1"]);
    expect(used.card).toMatchObject({
      remaining: "37950",
      consumed: "12050",
      escrow: "30360",
      released: "19640",
    });
    await ok(["prepaid", "consume", "2", "--uses", "2", ...yoga, "--key", "consumer-1"]);
    await refused(["prepaid", "consume", "2", ...yoga, "--key", yogaKey()], "NOT_HOLDER");
    await refusedSdk(async () => (await as("consumer-1", "lotus-yoga")).claim(), "NOT_MERCHANT");
    await refusedSdk(async () => (await as("consumer-1", "lotus-yoga")).forceRefund(50), "NOT_REGULATOR");
    const claim = await ok(["prepaid", "claim", ...yoga, "--key", yogaKey()]);
    expect(claim.claim.amount).toBe(`${19_640n + 28_800n}`);
    const visit = await ok(["prepaid", "consume", "3", ...yoga, "--key", "consumer-2"]);
    expect(visit.card).toMatchObject({ coolingOff: false, kind: "period" });
  }, 90_000);

  it("a loss report stops a card until it is cancelled or reissued; a transfer moves it", async () => {
    const yoga = programme("lotus-yoga");
    await ok(["prepaid", "report-loss", "1", ...yoga, "--key", "consumer-1"]);
    await refused(["prepaid", "consume", "1", "--amount", "1", ...yoga, "--key", "consumer-1"], "CARD_LOST");
    await refusedSdk(async () => (await as("consumer-1", "lotus-yoga")).refund(1), "CARD_LOST");
    await ok(["prepaid", "cancel-loss", "1", ...yoga, "--key", "consumer-1"]);
    const moved = await ok([
      "prepaid",
      "transfer",
      "2",
      "--to",
      "consumer-3",
      ...yoga,
      "--key",
      "consumer-1",
    ]);
    expect(moved.card.holder).toBe(t.accounts.find((a) => a.name === "consumer-3")?.address);
    await refusedSdk(async () => (await as("consumer-1", "lotus-yoga")).consume(2), "NOT_HOLDER");
    await ok(["prepaid", "report-loss", "2", ...yoga, "--key", "consumer-3"]);
    await refusedSdk(async () => (await as("consumer-3", "lotus-yoga")).consume(2), "CARD_LOST");
    await refusedSdk(async () => (await as("consumer-3", "lotus-yoga")).reissue(2), "NOT_REGULATOR");
    const reissued = await ok(["prepaid", "reissue", "2", ...yoga, "--key", "regulator"]);
    expect(reissued.card).toMatchObject({ id: 4, reissuedFrom: 2, remaining: "8", escrow: "51200" });
    await refusedSdk(async () => (await as("consumer-3", "lotus-yoga")).consume(2), "CARD_REISSUED");
    expect((await ok(["prepaid", "consume", "4", ...yoga, "--key", "consumer-3"])).card.remaining).toBe("7");
    const cards = await ok(["prepaid", "cards", "consumer-3", ...yoga]);
    expect(cards.cards.map((c: { id: number; status: string }) => [c.id, c.status])).toEqual([
      [2, "reissued"],
      [4, "active"],
    ]);
  }, 90_000);

  it("refunds in cooling-off once; the card cap, the wallet's limits and balance refuse a purchase", async () => {
    const school = programme("bright-future-school");
    const before = await balanceOf("consumer-2");
    expect(
      (await ok(["prepaid", "buy", "--product", "1", ...school, "--key", "consumer-2"])).card,
    ).toMatchObject({
      id: 1,
      paid: "95000",
      units: "100000",
    });
    const refund = await ok(["prepaid", "refund", "1", ...school, "--key", "consumer-2"]);
    expect(refund.refund).toMatchObject({ amount: "95000", fee: "0", reason: "cooling-off" });
    expect(await balanceOf("consumer-2")).toBe(before);
    await refused(["prepaid", "refund", "1", ...school, "--key", "consumer-2"], "ALREADY_REFUNDED");
    await refusedSdk(
      async () => (await as("consumer-2", "bright-future-school")).consume(1, 1000n),
      "CARD_REFUNDED",
    );
    await refused(
      ["prepaid", "buy", "--product", "2", "--amount", "6000", ...school, "--key", "consumer-1"],
      "OVER_CARD_CAP",
    );
    await refused(
      ["prepaid", "buy", "--product", "2", "--amount", "2500", ...school, "--key", "consumer-3"],
      "ECNY_SINGLE_LIMIT_EXCEEDED",
    );
    await ok(["prepaid", "buy", "--product", "1", ...school, "--key", "consumer-3"]);
    await refusedSdk(
      async () => (await as("consumer-3", "bright-future-school")).buy(2, { amount: 10_000n }),
      "ECNY_INSUFFICIENT_BALANCE",
    );
    // consumer-2 (tier 3: 10,000 yuan a day) has paid 1,500 + 950 today
    await ok([
      "ecny",
      "issue",
      "--to",
      "consumer-2",
      "--amount",
      "9000",
      "--recharge-id",
      "rc-day",
      "--key",
      "operator",
      ...inDir(),
    ]);
    issued += 900_000n;
    await ok(["prepaid", "buy", "--product", "2", "--amount", "5000", ...school, "--key", "consumer-2"]);
    await refusedSdk(
      async () => (await as("consumer-2", "bright-future-school")).buy(2, { amount: 300_000n }),
      "ECNY_DAILY_LIMIT_EXCEEDED",
    );
  }, 90_000);

  it("time passes: a trial card expires (refunded, not forfeited), a period card accrues and is claimed", async () => {
    const gym = programme("sunrise-gym");
    const buy = (product: string, key: string) =>
      ok(["prepaid", "buy", "--product", product, ...gym, "--key", key]);
    expect((await buy("3", "consumer-2")).card.id).toBe(1);
    expect((await buy("2", "consumer-1")).card.id).toBe(2);
    await ok(["prepaid", "consume", "2", ...gym, "--key", "consumer-1"]);
    await refusedSdk(async () => (await as("consumer-1", "sunrise-gym")).consume(2), "DAILY_LIMIT_REACHED");
    await buy("1", "consumer-1");
    await buy("1", "consumer-2");
    const clock = await custos(["testnet", "clock", "--advance", "8d", "--dir", dir]);
    expect(clock.json.offsetMs).toBe(8 * 86_400_000);
    await refused(["prepaid", "consume", "1", ...gym, "--key", "consumer-2"], "CARD_EXPIRED");
    const expired = await ok(["prepaid", "refund", "1", ...gym, "--key", "consumer-2"]);
    expect(expired.refund).toMatchObject({ amount: "6000", reason: "card-expired" });
    const pass = await ok(["prepaid", "card", "2", ...gym]);
    // 8 days and some seconds of a 30-day, 199-yuan pass
    expect(fen(pass.consumed)).toBeGreaterThanOrEqual((19_900n * 8n) / 30n);
    expect(fen(pass.consumed)).toBeLessThan((19_900n * 9n) / 30n);
    const claim = await ok(["prepaid", "claim", ...gym, "--key", "merchant-1"]);
    expect(fen(claim.claim.amount)).toBeGreaterThanOrEqual((19_900n * 8n) / 30n);
    // after cooling-off the school refunds on request, less its 5 % fee on the escrowed 70 %
    const onRequest = await ok([
      "prepaid",
      "refund",
      "2",
      ...programme("bright-future-school"),
      "--key",
      "consumer-3",
    ]);
    expect(onRequest.refund).toMatchObject({ reason: "on-request", fee: "3325", amount: "63175" });
  }, 90_000);

  it("only the regulator freezes; frozen, nothing moves but refunds, forced in batches to every holder", async () => {
    const gym = programme("sunrise-gym");
    await refused(
      ["prepaid", "freeze", "--reason", "complaints", ...gym, "--key", "merchant-1"],
      "NOT_REGULATOR",
    );
    await refusedSdk(
      async () => (await as("consumer-1", "sunrise-gym")).freeze("complaints"),
      "NOT_REGULATOR",
    );
    await refusedSdk(
      async () => (await as("regulator", "sunrise-gym")).forceRefund(50),
      "PROGRAMME_NOT_FROZEN",
    );
    await ok([
      "prepaid",
      "freeze",
      "--reason",
      "complaints: classes cancelled",
      ...gym,
      "--key",
      "regulator",
    ]);
    await refused(["prepaid", "consume", "3", ...gym, "--key", "consumer-1"], "PROGRAMME_FROZEN");
    await refusedSdk(async () => (await as("merchant-1", "sunrise-gym")).claim(), "PROGRAMME_FROZEN");
    await refusedSdk(
      async () => (await as("consumer-1", "sunrise-gym")).buy(1, { price: 30_000n }),
      "PROGRAMME_FROZEN",
    );
    await refusedSdk(
      async () => (await as("consumer-1", "sunrise-gym")).transferCard(3, addressOf("consumer-2")),
      "PROGRAMME_FROZEN",
    );
    const held = await Promise.all(["consumer-1", "consumer-2"].map(async (n) => await balanceOf(n)));
    const forced = await custos(["prepaid", "force-refunds", "--batch", "2", ...gym, "--key", "regulator"]);
    expect(forced.error).toBeUndefined();
    for (const b of forced.json.batches) txs.set(b.hash, b.blockHeight);
    // three live cards (the monthly pass and two 10-visit cards), two to a batch
    expect(forced.json.batches.map((b: { refunded: number; done: boolean }) => [b.refunded, b.done])).toEqual(
      [
        [2, false],
        [1, true],
      ],
    );
    expect(forced.json.batches[1].after).toBe(forced.json.batches[0].next);
    const after = await Promise.all(["consumer-1", "consumer-2"].map(async (n) => await balanceOf(n)));
    expect((after[1] as bigint) - (held[1] as bigint)).toBe(30_000n);
    expect((after[0] as bigint) - (held[0] as bigint) + (after[1] as bigint) - (held[1] as bigint)).toBe(
      fen(forced.json.amount),
    );
    const escrow = await ok(["prepaid", "escrow", ...gym]);
    expect(escrow).toMatchObject({ escrowed: "0", liveCards: 0 });
  }, 90_000);

  it("a closure stops sales at once; once closed the merchant winds the refunds down", async () => {
    const yoga = programme("lotus-yoga");
    await refusedSdk(async () => (await as("consumer-1", "lotus-yoga")).announceClosure("x"), "NOT_MERCHANT");
    await ok([
      "prepaid",
      "announce-closure",
      "--reason",
      "the studio is moving",
      ...yoga,
      "--key",
      yogaKey(),
    ]);
    await refused(["prepaid", "buy", "--product", "1", ...yoga, "--key", "consumer-2"], "PROGRAMME_CLOSING");
    await refusedSdk(
      async () =>
        (await as("lotus-yoga", "lotus-yoga")).addProduct({ kind: "count", name: "x", uses: 1, price: 100n }),
      "PROGRAMME_CLOSING",
    );
    expect((await ok(["prepaid", "refund", "1", ...yoga, "--key", "consumer-1"])).refund).toMatchObject({
      reason: "programme-closing",
      amount: "30360",
    });
    // until the closing date the regulator's batches, not the merchant's
    await refusedSdk(
      async () => (await as("lotus-yoga", "lotus-yoga")).forceRefund(50),
      "PROGRAMME_NOT_CLOSED",
    );
    await custos(["testnet", "clock", "--advance", "1d", "--dir", dir]);
    await refused(["prepaid", "consume", "4", ...yoga, "--key", "consumer-3"], "PROGRAMME_CLOSED");
    const forced = await custos(["prepaid", "force-refunds", "--batch", "1", ...yoga, "--key", yogaKey()]);
    expect(forced.error).toBeUndefined();
    for (const b of forced.json.batches) txs.set(b.hash, b.blockHeight);
    expect(forced.json.refunded).toBe(2);
    expect(forced.json.batches.length).toBe(2);
    await ok(["prepaid", "claim", ...yoga, "--key", yogaKey()]);
    const info = await ok(["prepaid", "programme", ...yoga]);
    expect(info.status).toBe("closed");
  }, 90_000);

  it("the invariant holds from the chain, e-CNY is conserved, and every node has the same receipts", async () => {
    const check = await custos(["prepaid", "check", ...inDir()]);
    expect(check.error).toBeUndefined();
    expect(check.json.ok).toBe(true);
    expect(check.json.programmes).toHaveLength(3);
    for (const p of check.json.programmes)
      expect(p).toMatchObject({ ok: true, contractOk: true, surplus: "0", problems: [] });

    // every fen issued is in a member's wallet or a programme's balance
    const c = clients[0] as CustosClient;
    const members = await c.call<{ address: string }[]>("members", "list", encode([null]));
    const holders = [...members.map((m) => m.address), ...(await programmes())];
    let total = 0n;
    for (const a of holders) total += BigInt((await c.ecnyBalance(a)).balance);
    expect(total).toBe(issued);

    // every node, the observer included, committed each journey transaction with the same receipt
    expect(txs.size).toBeGreaterThan(60);
    const top = Math.max(...txs.values());
    await until(
      async () => (await Promise.all(clients.map((x) => x.status()))).every((s) => s.height >= top),
      30_000,
    );
    for (const [hash, height] of txs) {
      const views = await Promise.all(clients.map((x) => x.getTx(hash)));
      for (const v of views) {
        expect(v.status).toBe("committed");
        expect(v.blockHeight).toBe(height);
        expect(v.blockHash).toBe(views[0]?.blockHash);
        expect(v.receipt).toEqual(views[0]?.receipt);
      }
    }
    expect(t.nodes.map((n) => n.role)).toEqual([
      "validator",
      "validator",
      "validator",
      "validator",
      "observer",
    ]);
  }, 90_000);
});
