import { readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generateKeyPair } from "@custos/crypto";
import { nullLogger } from "@custos/utils";
import { describe, expect, it } from "vitest";
import { openChainLedger } from "../../src/chain/openLedger.js";
import { loadConfig } from "../../src/config.js";
import { spreadWriteBuffers, writeBufferFor } from "../../src/ledger/writeBuffer.js";
import { commitBlock } from "../chain.js";
import { tempDir, testChain, tx } from "../helpers.js";

const MIB = 1024 * 1024;

describe("LevelDB memtable sizes (validators that write the same blocks do not compact in step)", () => {
  it("takes 3-5 MiB in 64 KiB steps from a node's key, the same every time, spread over keys", () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const { publicKey } = generateKeyPair();
      const size = writeBufferFor(publicKey);
      expect(size).toBe(writeBufferFor(publicKey));
      expect(size).toBeGreaterThanOrEqual(3 * MIB);
      expect(size).toBeLessThanOrEqual(5 * MIB);
      expect(size % (64 * 1024)).toBe(0);
      seen.add(size);
    }
    // 33 possible sizes; 200 keys that landed on a handful would not spread anything
    expect(seen.size).toBeGreaterThan(20);
  });

  it("spreads a testnet's nodes evenly from 3 to 5 MiB, no two alike", () => {
    expect(spreadWriteBuffers(4)).toEqual([3 * MIB, 3 * MIB + 11 * 65536, 3 * MIB + 21 * 65536, 5 * MIB]);
    for (const n of [2, 5, 7, 16]) {
      const sizes = spreadWriteBuffers(n);
      expect(new Set(sizes).size).toBe(n);
      expect(sizes[0]).toBe(3 * MIB);
      expect(sizes[n - 1]).toBe(5 * MIB);
    }
    expect(spreadWriteBuffers(1)).toEqual([4 * MIB]);
  });

  it("reads ledger.writeBufferBytes from config.json and refuses a size out of range", async () => {
    const t = await tempDir("custos-wbuf-");
    try {
      await writeFile(join(t.dir, "config.json"), JSON.stringify({ ledger: { writeBufferBytes: 2 * MIB } }));
      expect((await loadConfig(t.dir)).ledger).toEqual({ keepBlocks: 0, writeBufferBytes: 2 * MIB });
      await writeFile(join(t.dir, "config.json"), JSON.stringify({ ledger: { keepBlocks: 5 } }));
      expect((await loadConfig(t.dir)).ledger.writeBufferBytes).toBeUndefined();
      for (const bad of [0, 512 * 1024, 1.5 * MIB + 0.5, "4MiB", 300 * MIB, null]) {
        await writeFile(join(t.dir, "config.json"), JSON.stringify({ ledger: { writeBufferBytes: bad } }));
        await expect(loadConfig(t.dir)).rejects.toMatchObject({
          code: "CONFIG_INVALID",
          message: expect.stringMatching(/config\.json ledger\.writeBufferBytes/),
        });
      }
    } finally {
      await t.cleanup();
    }
  });

  it("a ledger opened with a 1 MiB memtable flushes it to a table after about 1 MiB of log, and reopens whole", async () => {
    const t = await tempDir("custos-wbuf-");
    try {
      const chain = testChain();
      const ledger = await openChainLedger(t.dir, chain.genesis, nullLogger, { writeBufferBytes: MIB });
      const tables = async () => (await readdir(t.dir)).filter((f) => f.endsWith(".ldb"));
      const logBytes = async () => {
        let n = 0;
        // a flush replaces the log: one listed a moment ago may be gone
        for (const f of await readdir(t.dir))
          if (f.endsWith(".log"))
            n += await stat(join(t.dir, f)).then(
              (s) => s.size,
              () => 0,
            );
        return n;
      };
      let blocks = 0;
      let largestLog = 0;
      // LevelDB's default memtable (4 MiB) would not flush within the ~2.2 MiB this writes at most
      while ((await tables()).length === 0 && blocks < 150) {
        const txs = Array.from({ length: 25 }, (_, i) =>
          tx(chain, "operator", "issue", [chain.keys["consumer-1"]?.address, 1n, `wb-${blocks}-${i}`]),
        );
        await commitBlock(ledger, chain, txs);
        blocks++;
        largestLog = Math.max(largestLog, await logBytes());
      }
      expect(await tables()).not.toHaveLength(0);
      expect(largestLog).toBeGreaterThan(0.75 * MIB);
      expect(largestLog).toBeLessThan(2 * MIB);
      const head = ledger.head;
      await ledger.close();
      const again = await openChainLedger(t.dir, chain.genesis, nullLogger, { writeBufferBytes: 2 * MIB });
      expect(again.head.height).toBe(head.height);
      expect(Buffer.from(again.head.hash).equals(Buffer.from(head.hash))).toBe(true);
      await again.close();
    } finally {
      await t.cleanup();
    }
  });
});
