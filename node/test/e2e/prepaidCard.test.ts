import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CustosClient, Wallet } from "@custos/client";
import { encode } from "@custos/codec";
import { bundleContract } from "@custos/contract-sdk/harness";
import type { Sm2KeyPair } from "@custos/crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CustosNode, initHome } from "../../src/index.js";
import { tempDir } from "../helpers.js";

/**
 * The prepaid-card template (contracts/prepaid-card) through governance on a real node: submitted,
 * approved by the committee, instantiated by an institution for a merchant, then a short journey
 * in real transactions — purchase from an e-CNY wallet, use, cooling-off refund, the merchant's
 * claim, the regulator's freeze and forced refund — with the roles read from the member registry.
 */
const CONTRACT = fileURLToPath(new URL("../../../contracts/prepaid-card/src/contract.ts", import.meta.url));

let node: CustosNode;
let client: CustosClient;
let cleanup: () => Promise<void>;
const keys: Record<string, Sm2KeyPair> = {};
const addr = (name: string) => (keys[name] as Sm2KeyPair).address;

async function send(from: string, to: string, method: string, args: unknown[], value = 0n) {
  const r = await new Wallet(client, keys[from] as Sm2KeyPair).send({ to, method, args, value });
  return r.receipt as NonNullable<typeof r.receipt> & { output: any };
}

async function query(to: string, method: string, args: unknown[] = []) {
  return client.call(to, method, encode(args)) as Promise<any>;
}

const balance = async (name: string) => BigInt((await client.ecnyBalance(addr(name))).balance);

beforeAll(async () => {
  const t = await tempDir("custos-prepaid-");
  cleanup = t.cleanup;
  const r = await initHome({ home: t.dir, dev: true, kdfIterations: 1000 });
  const password = (await readFile(join(t.dir, "dev-password"), "utf8")).trim();
  const { loadKeystoreFile } = await import("@custos/crypto");
  for (const a of r.accounts ?? []) keys[a.name] = await loadKeystoreFile(a.keyFile, password);
  node = await CustosNode.start({ home: t.dir, rpcListen: "127.0.0.1:0" });
  client = new CustosClient(node.rpcUrl);
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await cleanup?.();
});

describe("the prepaid-card template on a dev chain", () => {
  let programme: string;

  it("is approved by the committee and instantiated by an institution for a merchant", async () => {
    const { code, codeHash } = await bundleContract(CONTRACT);
    const submitted = await send("bank", "templates", "submit", [
      "prepaid-card",
      "1.0.0",
      "prepaid-card programme (预付资金监管)",
      ["prepaid"],
      "finance",
      code,
    ]);
    expect(submitted.errorMessage).toBeNull();
    expect(submitted.output.codeHash).toBe(codeHash);
    await send("committee-1", "governance", "vote", [submitted.output.proposalId, true]);
    await send("committee-2", "governance", "vote", [submitted.output.proposalId, true]);

    const params = (merchant: string) =>
      JSON.stringify({ merchant, name: "Sunrise Gym", escrowShareBps: 7000, cardCap: { $n: "500000" } });
    // the template itself checks roles in the member registry: a consumer is no merchant
    const wrong = await send("bank", "templates", "instantiate", [codeHash, params(addr("consumer-1"))]);
    expect(wrong.errorCode).toBe("NOT_MERCHANT");
    const bad = await send("bank", "templates", "instantiate", [
      codeHash,
      JSON.stringify({ merchant: addr("merchant-1"), name: "x", escrowShareBps: 1000 }),
    ]);
    expect(bad.errorCode).toBe("INVALID_PARAMS");
    const created = await send("bank", "templates", "instantiate", [codeHash, params(addr("merchant-1"))]);
    expect(created.errorMessage).toBeNull();
    programme = created.output.address;
    const p = await query(programme, "programme");
    expect(p).toMatchObject({
      merchant: addr("merchant-1"),
      institution: addr("bank"),
      escrowShareBps: 7000,
      status: "active",
    });
  });

  it("a consumer buys from its e-CNY wallet, uses the card, and the merchant is paid what was consumed", async () => {
    await send("operator", "ecny", "issue", [addr("consumer-1"), 1_000_000n, "rc-prepaid-1"]);
    await send("operator", "ecny", "issue", [addr("consumer-2"), 300_000n, "rc-prepaid-2"]);
    const added = await send("merchant-1", programme, "addProduct", [
      { name: "1,000 yuan card", kind: "stored", faceValue: 100_000n },
    ]);
    expect(added.errorMessage).toBeNull();
    expect(
      (await send("consumer-1", programme, "addProduct", [{ name: "x", kind: "count", uses: 1, price: 1n }]))
        .errorCode,
    ).toBe("NOT_MERCHANT");
    await send("merchant-1", programme, "addProduct", [
      { name: "10 swims", kind: "count", uses: 10, price: 50_000n },
    ]);

    const wrong = await send("consumer-1", programme, "buy", [1], 90_000n);
    expect(wrong.errorCode).toBe("WRONG_AMOUNT");
    expect(await balance("consumer-1")).toBe(1_000_000n); // the chain returned the attached e-CNY
    const bought = await send("consumer-1", programme, "buy", [1], 100_000n);
    expect(bought.errorMessage).toBeNull();
    expect(bought.output).toMatchObject({
      id: 1,
      holder: addr("consumer-1"),
      status: "active",
      coolingOff: true,
    });
    expect(bought.events.map((e) => e.name)).toContain("CardSold");
    expect(await balance("consumer-1")).toBe(900_000n);
    expect(BigInt((await client.ecnyBalance(programme)).balance)).toBe(100_000n);

    expect((await send("merchant-1", programme, "consume", [1, 30_000n])).errorCode).toBe("NOT_HOLDER");
    const used = await send("consumer-1", programme, "consume", [1, 30_000n]);
    expect(used.errorMessage).toBeNull();
    // the first use ends cooling-off: the 30 % not escrowed goes to the merchant, and the escrow falls
    // to 70 % of the 70,000 fen left
    expect(String(used.output.escrow)).toBe("49000");
    const claimed = await send("merchant-1", programme, "claim", []);
    expect(String(claimed.output.amount)).toBe("51000");
    expect(await balance("merchant-1")).toBe(51_000n);
  });

  it("a cooling-off refund is in full; the regulator freezes the programme and forces the rest back", async () => {
    const bought = await send("consumer-2", programme, "buy", [2], 50_000n);
    expect(bought.errorMessage).toBeNull();
    const refunded = await send("consumer-2", programme, "refund", [2]);
    expect(refunded.output).toMatchObject({ reason: "cooling-off" });
    expect(String(refunded.output.amount)).toBe("50000");
    expect(await balance("consumer-2")).toBe(300_000n);
    expect((await send("consumer-2", programme, "refund", [2])).errorCode).toBe("ALREADY_REFUNDED");

    expect((await send("merchant-1", programme, "freeze", ["complaints"])).errorCode).toBe("NOT_REGULATOR");
    const frozen = await send("regulator", programme, "freeze", ["complaints"]);
    expect(frozen.errorMessage).toBeNull();
    expect((await send("consumer-1", programme, "consume", [1, 100n])).errorCode).toBe("PROGRAMME_FROZEN");
    expect((await send("merchant-1", programme, "claim", [])).errorCode).toBe("PROGRAMME_FROZEN");
    const forced = await send("regulator", programme, "forceRefund", [50]);
    expect(forced.output).toMatchObject({ refunded: 1, done: true });
    expect(String(forced.output.amount)).toBe("49000");
    expect(await balance("consumer-1")).toBe(949_000n);

    const summary = await query(programme, "escrowSummary");
    expect(summary).toMatchObject({ escrowed: "0", liveCards: 0, refundedCards: 2, sold: "150000" });
    const inv = await query(programme, "checkInvariant");
    expect(inv).toMatchObject({ ok: true, balance: "0", due: "0", surplus: "0" });
    // e-CNY conserved: what consumers paid in is with the merchant, back with them, or in the contract
    expect(
      (await balance("consumer-1")) + (await balance("consumer-2")) + (await balance("merchant-1")),
    ).toBe(1_300_000n);
  });
});
