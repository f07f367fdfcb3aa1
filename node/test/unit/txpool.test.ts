import { VerifierPool } from "@custos/crypto";
import { nullLogger } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_POOL_OPTIONS, TxPool } from "../../src/txpool/txpool.js";
import { testChain, tx } from "../helpers.js";

const verifier = new VerifierPool();
afterAll(() => verifier.close());

describe("tx pool admission", () => {
  it("does not admit a tx that a block committed while its signature was being checked", async () => {
    const chain = testChain();
    const committed = new Set<string>();
    const pool = new TxPool(
      DEFAULT_POOL_OPTIONS,
      {
        chainId: chain.genesis.chainId,
        blockLimitWindow: 600,
        headHeight: () => 1,
        isCommitted: async (h) => committed.has(Buffer.from(h).toString("hex")),
        isMember: async () => true,
      },
      verifier,
      nullLogger,
    );
    const t = tx(chain, "operator", "issue", [chain.keys.merchant?.address, 1n, "rc"]);
    const adding = pool.add(t.bytes);
    committed.add(Buffer.from(t.hash).toString("hex")); // the block lands during the awaits
    await expect(adding).rejects.toMatchObject({ code: "TX_ALREADY_COMMITTED" });
    expect(pool.size).toBe(0);
    // one that is not committed goes in
    await pool.add(tx(chain, "operator", "issue", [chain.keys.merchant?.address, 1n, "rc-2"]).bytes);
    expect(pool.size).toBe(1);
  });
});

describe("tx pool limits", () => {
  const chain = testChain();
  const poolWith = (opts: Partial<typeof DEFAULT_POOL_OPTIONS>) =>
    new TxPool(
      { ...DEFAULT_POOL_OPTIONS, ...opts },
      {
        chainId: chain.genesis.chainId,
        blockLimitWindow: 600,
        headHeight: () => 1,
        isCommitted: async () => false,
        isMember: async () => true,
      },
      verifier,
      nullLogger,
    );
  const issue = (from: string, id: string) =>
    tx(chain, from, "issue", [chain.keys.merchant?.address, 1n, id]).bytes;

  it("a full pool refuses with a retryable TX_POOL_FULL, by count and by bytes, and takes more once drained", async () => {
    const pool = poolWith({ maxTxs: 3 });
    const refused: string[] = [];
    pool.on("tx:rejected", (e) => refused.push(e.code));
    for (let i = 0; i < 3; i++) await pool.add(issue(i % 2 ? "operator" : "bank", `rc-${i}`));
    await expect(pool.add(issue("operator", "rc-x"))).rejects.toMatchObject({
      code: "TX_POOL_FULL",
      meta: { retryable: true },
    });
    expect(pool.size).toBe(3);
    expect(refused).toEqual(["TX_POOL_FULL"]);
    pool.remove(pool.take(1, 2));
    await pool.add(issue("operator", "rc-x"));
    expect(pool.size).toBe(3);

    const small = poolWith({ maxBytes: 300 });
    const one = issue("operator", "rc-b1");
    expect(one.byteLength).toBeLessThan(300);
    await small.add(one);
    await expect(small.add(issue("operator", "rc-b2"))).rejects.toMatchObject({ code: "TX_POOL_FULL" });
    expect(small.bytes).toBe(one.byteLength);
  });

  it("one sender cannot fill the pool: TX_SENDER_QUOTA, retryable, while others still get in", async () => {
    const pool = poolWith({ maxPerSender: 2 });
    await pool.add(issue("operator", "q-1"));
    await pool.add(issue("operator", "q-2"));
    await expect(pool.add(issue("operator", "q-3"))).rejects.toMatchObject({
      code: "TX_SENDER_QUOTA",
      meta: { retryable: true },
    });
    await pool.add(issue("bank", "q-4"));
    expect(pool.size).toBe(3);
    // the quota frees as the sender's transactions leave the pool
    pool.remove(pool.take(1, 2));
    await pool.add(issue("operator", "q-3"));
    expect(pool.size).toBe(3);
  });
});
