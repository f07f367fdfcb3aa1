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
