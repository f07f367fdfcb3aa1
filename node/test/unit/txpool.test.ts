import { VerifierPool } from "@custos/crypto";
import { decodeSignedTx } from "@custos/types";
import { nullLogger } from "@custos/utils";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_POOL_OPTIONS, TxPool } from "../../src/txpool/txpool.js";
import { holdVerifications, testChain, tx, until } from "../helpers.js";

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

  it("settled: waits for an admission under way (a tx being verified), and answers at once for one it does not know", async () => {
    const chain = testChain();
    const pool = new TxPool(
      DEFAULT_POOL_OPTIONS,
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
    const held = holdVerifications(verifier);
    try {
      const good = tx(chain, "operator", "issue", [chain.keys.merchant?.address, 1n, "st-1"]);
      // the same body under another's signature: the admission ends without it
      const other = tx(chain, "operator", "issue", [chain.keys.merchant?.address, 1n, "st-2"]);
      const forged = Uint8Array.from(other.bytes);
      forged[forged.length - 5] = (forged[forged.length - 5] as number) ^ 0xff;
      const adding = [pool.add(good.bytes, "gossip"), pool.add(forged, "gossip").catch((e) => e)];
      await until(() => held.calls() === 2, 5_000);
      expect(pool.get(good.hash)).toBeUndefined(); // decoded, being verified
      const waits = [pool.settled(good.hash), pool.settled(decodeSignedTx(forged).hash)];
      let done = false;
      void Promise.all(waits).then(() => {
        done = true;
      });
      expect(await pool.settled(new Uint8Array(32).fill(7))).toBeUndefined(); // nothing by that hash: at once
      expect(done).toBe(false);
      held.release();
      const [got, none] = await Promise.all(waits);
      expect(got?.hash).toEqual(good.hash);
      expect(none).toBeUndefined();
      expect(await adding[1]).toMatchObject({ code: "TX_BAD_SIGNATURE" });
      await adding[0];
      expect(pool.size).toBe(1);
    } finally {
      held.restore();
    }
  });
});

describe("tx pool limits", () => {
  const chain = testChain();
  /** Called by admission's chain lookups (committed? member?). */
  const lookups = vi.fn();
  const poolWith = (opts: Partial<typeof DEFAULT_POOL_OPTIONS>) =>
    new TxPool(
      { ...DEFAULT_POOL_OPTIONS, ...opts },
      {
        chainId: chain.genesis.chainId,
        blockLimitWindow: 600,
        headHeight: () => 1,
        isCommitted: async () => {
          lookups();
          return false;
        },
        isMember: async () => {
          lookups();
          return true;
        },
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
      message: expect.stringMatching(/pool is full/),
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

  describe("admission control (queueSeconds of measured throughput, at least minQueue)", () => {
    afterEach(() => vi.useRealTimers());

    it("refuses a client's tx beyond the queue with a retryable TX_POOL_FULL, still takes gossip, and measures throughput over busy time only", async () => {
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(990_000);
      const pool = poolWith({ minQueue: 3, queueSeconds: 10 });
      expect(pool.clientLimit).toBe(3); // nothing measured yet
      for (let i = 0; i < 3; i++) await pool.add(issue("operator", `ac-${i}`));
      // the oldest has waited queueSeconds: the chain is behind
      vi.setSystemTime(1_000_000);
      expect(pool.oldestWaitMs()).toBe(10_000);
      await expect(pool.add(issue("operator", "ac-x"))).rejects.toMatchObject({
        code: "TX_POOL_FULL",
        meta: { retryable: true },
        message: expect.stringMatching(/chain is busy: 3 transactions are waiting .*the oldest for 10000 ms/),
      });
      // refused before anything is spent on it: not decoded (garbage gets the same answer), not
      // looked up, not verified
      const verify = vi.spyOn(verifier, "verify");
      lookups.mockClear();
      await expect(pool.add(new Uint8Array([0xc1, 0xc1]))).rejects.toMatchObject({ code: "TX_POOL_FULL" });
      await expect(pool.add(issue("operator", "ac-z"))).rejects.toMatchObject({ code: "TX_POOL_FULL" });
      expect(lookups).not.toHaveBeenCalled();
      expect(verify).not.toHaveBeenCalled();
      verify.mockRestore();
      // what could never be admitted is still told as such
      await expect(pool.add(new Uint8Array(DEFAULT_POOL_OPTIONS.maxTxBytes + 1))).rejects.toMatchObject({
        code: "TX_TOO_LARGE",
      });
      // what a peer admitted goes in (every validator must hold what a leader may propose)
      for (let i = 0; i < 47; i++) await pool.add(issue("bank", `ac-g${i}`), "gossip");
      expect(pool.size).toBe(50);
      // 50 committed over the 11 s the pool was busy: an estimate of 50 / 11 * (1 - e^-2.2) per s
      vi.setSystemTime(1_001_000);
      pool.remove(pool.take(50, 1));
      const rate = (50 / 11) * (1 - Math.exp(-2.2));
      expect(pool.throughput).toBeCloseTo(rate, 6);
      const limit = Math.ceil(10 * rate);
      expect(pool.clientLimit).toBe(41);
      expect(pool.clientLimit).toBe(limit);
      // a minute idle changes nothing: an empty pool says nothing about the chain
      vi.setSystemTime(1_061_000);
      expect(pool.clientLimit).toBe(limit);
      await pool.add(issue("operator", "ac-y")); // busy again: the estimate decays from now
      expect(pool.clientLimit).toBe(limit);
      // five seconds of waiting with nothing committed: a stalled chain admits less
      vi.setSystemTime(1_066_000);
      expect(pool.clientLimit).toBe(Math.ceil(10 * rate * Math.exp(-1)));
      vi.setSystemTime(1_200_000);
      expect(pool.clientLimit).toBe(3);
    });

    it("admits a client's tx beyond the queue while the oldest has waited less than queueSeconds (a rise in load the chain keeps up with)", async () => {
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(2_000_000);
      const pool = poolWith({ minQueue: 3, queueSeconds: 1 });
      for (let i = 0; i < 3; i++) await pool.add(issue("operator", `ay-${i}`));
      vi.setSystemTime(2_000_999);
      await pool.add(issue("operator", "ay-3")); // over the count, the oldest 999 ms old
      expect(pool.size).toBe(4);
      vi.setSystemTime(2_001_000);
      await expect(pool.add(issue("operator", "ay-4"))).rejects.toMatchObject({ code: "TX_POOL_FULL" });
      // a block takes the oldest: the next oldest (admitted at 2_000_000 too) is as old
      pool.remove(pool.take(3, 1));
      expect(pool.oldestWaitMs()).toBe(1);
      await pool.add(issue("operator", "ay-4")); // one waits, under the count again
      // over the count again (3 of throughput) but young: admitted
      await pool.add(issue("operator", "ay-5"));
      await pool.add(issue("operator", "ay-6"));
      expect(pool.size).toBe(4);
      // ay-6 came in with 3 waiting, at the limit: refused by the count alone, admitted by the age
      expect(pool.clientLimit).toBe(3);
    });
  });
});
