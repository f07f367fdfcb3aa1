import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Initiator, isSmSecureError, RecordOpener, RecordSealer, Responder } from "../../src/index.js";
import { fixedKeyPair, identityOf, prng } from "../helpers.js";

/**
 * Seeded fuzzing of the pure protocol: handshake messages and record streams that are garbage,
 * truncated, oversized or bit-flipped are always refused with an SM_* code (never another
 * exception, never accepted as something else). FUZZ_SEED=n reruns one seed; FUZZ_CASES scales.
 */
const BASE_SEED = Number(process.env.FUZZ_SEED ?? 20_191_919);
const CASES = Number(process.env.FUZZ_CASES ?? 1);

const I = fixedKeyPair("fuzz initiator");
const R = fixedKeyPair("fuzz responder");
const CHAIN = "custos-fuzz";

type Rng = ReturnType<typeof prng>;

/** One mutation of `m`: what it was, and the result (maybe equal to m by chance). */
function mutate(r: Rng, m: Uint8Array): { kind: string; out: Uint8Array } {
  switch (r.int(8)) {
    case 0:
      return { kind: "garbage", out: r.bytes(r.int(400)) };
    case 1:
      return { kind: "truncated", out: m.slice(0, r.int(m.byteLength)) };
    case 2:
      return { kind: "oversized", out: Uint8Array.from([...m, ...r.bytes(1 + r.int(1200))]) };
    case 3: {
      const out = Uint8Array.from(m);
      const flips = 1 + r.int(3);
      for (let k = 0; k < flips; k++) {
        const i = r.int(out.byteLength);
        out[i] = (out[i] as number) ^ (1 << r.int(8));
      }
      return { kind: "bit-flipped", out };
    }
    case 4: {
      const out = Uint8Array.from(m);
      out[0] = r.int(256);
      return { kind: "retyped", out };
    }
    case 5: {
      const out = Uint8Array.from(m);
      const at = r.int(out.byteLength);
      out.set(r.bytes(Math.min(33, out.byteLength - at)), at);
      return { kind: "overwritten", out };
    }
    case 6: {
      // the MAC at the end of a message
      const out = Uint8Array.from(m);
      const i = Math.max(0, out.byteLength - 1 - r.int(32));
      if (out.byteLength > 0) out[i] = (out[i] as number) ^ (1 << r.int(8));
      return { kind: "tail-flipped", out };
    }
    default:
      return { kind: "empty", out: new Uint8Array(0) };
  }
}

function codeOf(err: unknown, context: string): string {
  if (!isSmSecureError(err))
    throw new Error(`${context}: not a clean refusal: ${String(err)}`, { cause: err });
  return err.code;
}

describe("seeded fuzz", () => {
  it("handshakes with one message mutated in transit are refused cleanly, never half-accepted", () => {
    const seen = new Map<string, number>();
    const n = 300 * CASES;
    for (let c = 0; c < n; c++) {
      const seed = BASE_SEED + c;
      const r = prng(seed);
      const target = r.int(3);
      const initiator = new Initiator({ chainId: CHAIN, identity: identityOf(I), authorize: () => {} });
      const responder = new Responder({ chainId: CHAIN, identity: identityOf(R), authorize: () => {} });
      let changed = false;
      const transit = (k: number, m: Uint8Array) => {
        if (k !== target) return m;
        const { out } = mutate(r, m);
        changed = Buffer.compare(Buffer.from(out), Buffer.from(m)) !== 0;
        return out;
      };
      try {
        const reply = responder.reply(transit(0, initiator.hello()));
        const { message, result: ri } = initiator.finish(transit(1, reply));
        const rr = responder.finish(transit(2, message));
        // only an unchanged message may get here, and then both sides agree
        expect(changed, `seed ${seed}: a changed message was accepted`).toBe(false);
        expect(Buffer.from(ri.sendSecret)).toEqual(Buffer.from(rr.recvSecret));
      } catch (err) {
        const code = codeOf(err, `seed ${seed}`);
        expect(changed, `seed ${seed}: refused (${code}) though nothing changed`).toBe(true);
        seen.set(code, (seen.get(code) ?? 0) + 1);
      }
    }
    // the mutations reach every check
    for (const code of [
      "SM_HANDSHAKE_MALFORMED",
      "SM_BAD_SIGNATURE",
      "SM_BAD_FINISHED",
      "SM_BAD_EPHEMERAL",
      "SM_CHAIN_MISMATCH",
    ])
      expect(seen.has(code), `${code} in ${JSON.stringify([...seen])}`).toBe(true);
  });

  it("record streams that are mutated deliver only a prefix of what was sent, then refuse", () => {
    const seen = new Map<string, number>();
    const n = 400 * CASES;
    for (let c = 0; c < n; c++) {
      const seed = BASE_SEED + 100_000 + c;
      const r = prng(seed);
      const secret = new Uint8Array(randomBytes(32));
      const sealer = new RecordSealer(secret.slice(), {
        records: 1 + r.int(4),
        bytes: 16_384 + r.int(40_000),
      });
      const opener = new RecordOpener(secret.slice());
      const sent: Uint8Array[] = [];
      const wire: Uint8Array[] = [];
      for (let k = 0, count = 1 + r.int(8); k < count; k++) {
        const m = r.bytes(1 + r.int(r.int(4) === 0 ? 20_000 : 300));
        sent.push(m);
        wire.push(sealer.seal(m));
      }
      const plain = Buffer.concat(sent);
      let stream = Buffer.concat(wire);
      const how = r.int(4);
      if (how === 0)
        stream = Buffer.concat([stream, stream.subarray(0, r.int(stream.byteLength))]); // replayed bytes
      else if (how === 1 && wire.length > 1)
        stream = Buffer.concat([...wire.slice(1), wire[0] as Uint8Array]); // reordered
      else stream = Buffer.from(mutate(r, stream).out);
      const got: Uint8Array[] = [];
      let code = "none";
      try {
        for (let at = 0; at < stream.byteLength; ) {
          const step = 1 + r.int(5000);
          got.push(...opener.open(stream.subarray(at, at + step)));
          at += step;
        }
      } catch (err) {
        code = codeOf(err, `seed ${seed}`);
      }
      const out = Buffer.concat(got);
      expect(
        plain.subarray(0, out.byteLength).equals(out),
        `seed ${seed}: delivered bytes that were not sent`,
      ).toBe(true);
      if (code === "none" && !out.equals(plain)) code = opener.pending > 0 ? "waiting" : "short";
      seen.set(code, (seen.get(code) ?? 0) + 1);
    }
    for (const code of ["SM_RECORD_MAC", "SM_RECORD_SEQUENCE", "SM_RECORD_TYPE"])
      expect(seen.has(code), `${code} in ${JSON.stringify([...seen])}`).toBe(true);
  });
});
