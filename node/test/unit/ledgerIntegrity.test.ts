import { existsSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { crc32c } from "@custos/utils";
import { afterEach, describe, expect, it } from "vitest";
import { logDamage } from "../../src/ledger/levelLog.js";
import { resetLedger } from "../../src/ledger/resetLedger.js";
import { commitBlock, openLedger as open } from "../chain.js";
import { type TestChain, tempDir, testChain, tx } from "../helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A ledger in `home/data/ledger` with `blocks` blocks of one issue each, closed. */
async function ledgerWithBlocks(
  blocks: number,
  chain: TestChain = testChain(),
): Promise<{ home: string; dir: string; chain: TestChain }> {
  const t = await tempDir("custos-integrity-");
  cleanups.push(t.cleanup);
  const dir = join(t.dir, "data", "ledger");
  const ledger = await open(dir, chain);
  for (let i = 0; i < blocks; i++) {
    await commitBlock(ledger, chain, [
      tx(chain, "operator", "issue", [chain.keys["consumer-1"]?.address, 100n, `rc-${i}`]),
    ]);
  }
  expect(ledger.head.height).toBe(blocks);
  await ledger.close();
  return { home: t.dir, dir, chain };
}

async function logFile(dir: string): Promise<string> {
  const logs = (await readdir(dir)).filter((f) => f.endsWith(".log")).sort();
  return join(dir, logs[logs.length - 1] as string);
}

describe("the ledger never opens below what it committed", () => {
  it("CRC-32C matches the standard check value", () => {
    expect(crc32c(new TextEncoder().encode("123456789")).toString(16)).toBe("e3069283");
  });

  it("refuses a LevelDB log with damaged records, and leaves the files as they were", async () => {
    const { dir, chain } = await ledgerWithBlocks(20);
    const path = await logFile(dir);
    const bytes = await readFile(path);
    for (let i = 2000; i < bytes.length; i += 997) bytes[i] = (bytes[i] as number) ^ 0xff;
    await writeFile(path, bytes);
    await expect(open(dir, chain)).rejects.toMatchObject({
      code: "LEDGER_CORRUPT",
      message: expect.stringMatching(/checksum mismatch.*refuses to start.*reset-ledger/s),
    });
    // nothing recovered, rewritten or deleted: the evidence is still there
    expect(Buffer.compare(await readFile(path), bytes)).toBe(0);
  });

  it("refuses a ledger that lost its last blocks where LevelDB itself sees nothing wrong", async () => {
    const { dir, chain } = await ledgerWithBlocks(20);
    const path = await logFile(dir);
    const bytes = await readFile(path);
    // cut the log in the middle of the last record: LevelDB takes it for a torn tail and drops it
    await writeFile(path, bytes.subarray(0, bytes.length - 200));
    expect(logDamage("x.log", new Uint8Array(await readFile(path)), true)).toEqual([]);
    await expect(open(dir, chain)).rejects.toMatchObject({
      code: "LEDGER_ROLLED_BACK",
      message: expect.stringMatching(/opened at height 19, but this node had committed height 20/),
    });
  });

  it("refuses a missing ledger directory, and opens again after reset-ledger from genesis", async () => {
    const { home, dir, chain } = await ledgerWithBlocks(3);
    const mark = await readFile(`${dir}.head`);
    await rm(dir, { recursive: true });
    await expect(open(dir, chain)).rejects.toMatchObject({ code: "LEDGER_ROLLED_BACK" });
    expect(existsSync(dir)).toBe(false); // the refusal created nothing
    await writeFile(`${dir}.head`, mark);
    const reset = await resetLedger(home);
    expect(existsSync(join(reset.movedTo, "ledger.head"))).toBe(true);
    const fresh = await open(dir, chain);
    expect(fresh.head.height).toBe(0);
    await fresh.close();
  });

  it("refuses a ledger whose block at the recorded height has another hash, and a damaged head record", async () => {
    const { dir, chain } = await ledgerWithBlocks(2);
    const other = await ledgerWithBlocks(2, chain); // same genesis, other blocks (other recharge ids)
    const mark = await readFile(`${dir}.head`);
    await writeFile(`${other.dir}.head`, mark);
    await expect(open(other.dir, chain)).rejects.toMatchObject({
      code: "LEDGER_CORRUPT",
      message: /holds another block .* at height 2, where this node committed 0x/,
    });
    const damaged = Buffer.from(mark);
    for (const slot of [0, 64]) damaged[slot + 30] = (damaged[slot + 30] as number) ^ 1;
    await writeFile(`${dir}.head`, damaged);
    await expect(open(dir, chain)).rejects.toMatchObject({ code: "LEDGER_CORRUPT", message: /damaged/ });
    await writeFile(`${dir}.head`, mark);
    const again = await open(dir, chain);
    expect(again.head.height).toBe(2);
    await again.close();
  });

  it("opens after a clean close and after every commit keeps the head record in step", async () => {
    const { dir, chain } = await ledgerWithBlocks(5);
    const ledger = await open(dir, chain);
    await commitBlock(ledger, chain, [
      tx(chain, "operator", "issue", [chain.keys.merchant?.address, 1n, "rc-z"]),
    ]);
    await ledger.close();
    const again = await open(dir, chain);
    expect(again.head.height).toBe(6);
    await again.close();
  });
});
