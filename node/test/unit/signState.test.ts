import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { nullLogger } from "@custos/utils";
import { afterEach, describe, expect, it } from "vitest";
import { SignState, type SignStateOpenOptions } from "../../src/consensus/signState.js";
import { tempDir } from "../helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const A = new Uint8Array(32).fill(0xaa);
const B = new Uint8Array(32).fill(0xbb);
const fresh: SignStateOpenOptions = {
  ledgerHeight: 0,
  walHasRecords: false,
  allowMissing: false,
  walVotes: [],
};

async function path(): Promise<string> {
  const t = await tempDir("custos-signstate-");
  cleanups.push(t.cleanup);
  return join(t.dir, "sign-state");
}

describe("sign-state: what this validator last signed", () => {
  it("admits votes in signing order only, and never a second block at one place", async () => {
    const p = await path();
    const s = await SignState.open(p, fresh, nullLogger);
    expect(s.admit({ height: 1, view: 0, phase: 2 }, A)).toBe(true);
    expect(s.admit({ height: 1, view: 0, phase: 2 }, A)).toBe(true); // the same vote again
    expect(s.admit({ height: 1, view: 0, phase: 2 }, B)).toBe(false); // another block: equivocation
    expect(s.admit({ height: 1, view: 0, phase: 1 }, A)).toBe(false); // behind
    expect(s.admit({ height: 1, view: 0, phase: 3 }, A)).toBe(true);
    expect(s.admit({ height: 1, view: 1, phase: 0 }, new Uint8Array(32))).toBe(true);
    expect(s.admit({ height: 1, view: 0, phase: 3 }, A)).toBe(false); // an older view
    expect(s.admit({ height: 2, view: 0, phase: 2 }, B)).toBe(true);
    await s.close();
  });

  it("remembers the last vote made durable across a restart, whichever slot holds it", async () => {
    const p = await path();
    const s = await SignState.open(p, fresh, nullLogger);
    for (const [phase, d] of [
      [2, A],
      [3, A],
    ] as const) {
      s.admit({ height: 7, view: 2, phase }, d);
      await s.persist({ height: 7, view: 2, phase, digest: d });
    }
    await s.close();
    const again = await SignState.open(p, { ...fresh, ledgerHeight: 6 }, nullLogger);
    expect(again.lastSigned).toMatchObject({ height: 7, view: 2, phase: 3 });
    expect(again.admit({ height: 7, view: 2, phase: 3 }, B)).toBe(false);
    expect(again.admit({ height: 7, view: 0, phase: 2 }, A)).toBe(false);
    await again.close();
    // a torn write of the newer slot: the older record still stands
    const bytes = await readFile(p);
    const newer = bytes.readUInt32BE(8) > bytes.readUInt32BE(64 + 8) ? 0 : 64;
    bytes[newer + 20] = (bytes[newer + 20] as number) ^ 0xff;
    await writeFile(p, bytes);
    const torn = await SignState.open(p, { ...fresh, ledgerHeight: 6 }, nullLogger);
    expect(torn.lastSigned).toMatchObject({ height: 7, view: 2, phase: 2 });
    await torn.close();
  });

  it("refuses to start without the record once the node has run, unless the operator allows it", async () => {
    const p = await path();
    const ran = { ...fresh, ledgerHeight: 20 };
    await expect(SignState.open(p, ran, nullLogger)).rejects.toMatchObject({ code: "SIGN_STATE_MISSING" });
    await expect(SignState.open(p, { ...fresh, walHasRecords: true }, nullLogger)).rejects.toMatchObject({
      code: "SIGN_STATE_MISSING",
    });
    const allowed = await SignState.open(
      p,
      { ...ran, allowMissing: true, walVotes: [{ height: 21, view: 1, phase: 2, digest: A }] },
      nullLogger,
    );
    expect(allowed.lastSigned).toMatchObject({ height: 21, view: 1, phase: 2 });
    expect(allowed.admit({ height: 21, view: 0, phase: 3 }, A)).toBe(false);
    await allowed.close();
    await writeFile(p, Buffer.alloc(128, 7));
    await expect(SignState.open(p, ran, nullLogger)).rejects.toMatchObject({ code: "SIGN_STATE_DAMAGED" });
  });
});
