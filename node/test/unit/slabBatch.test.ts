import { Level } from "level";
import { afterEach, describe, expect, it } from "vitest";
import { SlabBatch } from "../../src/ledger/repository.js";
import { tempDir } from "../helpers.js";

describe("SlabBatch", () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  it("writes exactly the keys and values it was given across many slabs, and its deletes", async () => {
    const t = await tempDir("slab-batch");
    cleanup = t.cleanup;
    const db = new Level<Uint8Array, Uint8Array>(t.dir, { keyEncoding: "view", valueEncoding: "view" });
    await db.open();
    try {
      await db.put(Uint8Array.of(9, 9), Uint8Array.of(1));
      const batch = new SlabBatch(db.batch());
      const want = new Map<string, Uint8Array>();
      // ~5,000 small entries (several 64 KiB slabs, entries that straddle a slab's end), some
      // values above the copy threshold, and a delete
      for (let i = 0; i < 5000; i++) {
        const key = new Uint8Array(8 + (i % 57));
        new DataView(key.buffer).setUint32(0, i);
        key.fill(i & 0xff, 4);
        const value = new Uint8Array(i % 10 === 0 ? 200 + (i % 7) : i % 65);
        value.fill((i * 7) & 0xff);
        batch.put(key, value);
        want.set(Buffer.from(key).toString("hex"), value.slice());
        key.fill(0); // the caller reuses its arrays: the batch holds its own copy
        value.fill(0xee);
      }
      batch.del(Uint8Array.of(9, 9));
      await batch.write({ sync: true });
      for (const [k, v] of want)
        expect(new Uint8Array((await db.get(Buffer.from(k, "hex"))) ?? [])).toEqual(v);
      expect(await db.get(Uint8Array.of(9, 9))).toBeUndefined();
      let n = 0;
      for await (const _ of db.keys()) n++;
      expect(n).toBe(want.size);
    } finally {
      await db.close();
    }
  });
});
