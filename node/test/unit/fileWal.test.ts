import { appendFile, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { frameRecord } from "@custos/consensus";
import { nullLogger } from "@custos/utils";
import { describe, expect, it } from "vitest";
import { FileWal } from "../../src/consensus/fileWal.js";
import { tempDir } from "../helpers.js";

const te = new TextEncoder();
const text = (rs: Uint8Array[]) => rs.map((r) => new TextDecoder().decode(r));

describe("consensus WAL on disk", () => {
  it("keeps appended records across reopen, cuts a torn tail, compacts atomically", async () => {
    const { dir, cleanup } = await tempDir("custos-wal-");
    try {
      const path = join(dir, "consensus.wal");
      const wal = await FileWal.open(path, nullLogger);
      await wal.append(te.encode("prepare 7/0"));
      await wal.append(te.encode("commit 7/0"));
      await wal.close();
      const whole = (await stat(path)).size;
      // the process died while appending a third record
      await appendFile(path, frameRecord(te.encode("viewchange 7/1")).subarray(0, 9));
      const again = await FileWal.open(path, nullLogger);
      expect(text(again.readAll())).toEqual(["prepare 7/0", "commit 7/0"]);
      expect((await stat(path)).size).toBe(whole); // the torn bytes are gone from the file
      await again.append(te.encode("viewchange 7/1"));
      await again.compact([te.encode("prepare 8/0")]);
      await again.append(te.encode("commit 8/0"));
      await again.close();
      const last = await FileWal.open(path, nullLogger);
      expect(text(last.readAll())).toEqual(["prepare 8/0", "commit 8/0"]);
      await last.close();
      expect((await readFile(path)).length).toBeGreaterThan(0);
    } finally {
      await cleanup();
    }
  });

  it("after a commit, leaves a small log alone and rewrites one over compactBytes", async () => {
    const { dir, cleanup } = await tempDir("custos-wal-");
    try {
      const path = join(dir, "consensus.wal");
      const wal = await FileWal.open(path, nullLogger, 64);
      await wal.append(te.encode("prepare 7/0"));
      await wal.compact([]);
      expect(wal.readAll()).toEqual([]);
      const small = (await stat(path)).size;
      expect(small).toBeGreaterThan(0); // not rewritten: decided heights are ignored on restart
      await wal.append(te.encode("commit 8/0 ".repeat(8)));
      await wal.compact([]);
      expect((await stat(path)).size).toBe(0); // over 64 bytes: rewritten empty
      await wal.append(te.encode("prepare 9/0"));
      await wal.close();
      const again = await FileWal.open(path, nullLogger, 64);
      expect(text(again.readAll())).toEqual(["prepare 9/0"]);
      await again.close();
    } finally {
      await cleanup();
    }
  });
});
