import { readFileSync } from "node:fs";
import { sm2Verify } from "@custos/crypto";
import { bytesEqual, toHex } from "@custos/utils";
import { describe, expect, it } from "vitest";
import {
  FINISH_LEN,
  type HandshakeOptions,
  HELLO_LEN,
  Initiator,
  REPLY_LEN,
  RecordOpener,
  RecordSealer,
  RecordType,
  Responder,
} from "../../src/index.js";
import { deterministicSign, fixedKeyPair, fixedPrivateKey, identityOf } from "../helpers.js";
import { referenceHandshake, referenceRecord } from "../reference.js";

const CHAIN = "custos-vector";
const I = fixedKeyPair("initiator");
const R = fixedKeyPair("responder");
const EI = fixedPrivateKey("initiator ephemeral");
const ER = fixedPrivateKey("responder ephemeral");

const allowAll = () => {};

function pair(over: { i?: Partial<HandshakeOptions>; r?: Partial<HandshakeOptions> } = {}) {
  const initiator = new Initiator({
    chainId: CHAIN,
    identity: identityOf(I, true),
    authorize: allowAll,
    ephemeralPrivateKey: EI,
    ...over.i,
  });
  const responder = new Responder({
    chainId: CHAIN,
    identity: identityOf(R, true),
    authorize: allowAll,
    ephemeralPrivateKey: ER,
    ...over.r,
  });
  return { initiator, responder };
}

function run(over: Parameters<typeof pair>[0] = {}) {
  const { initiator, responder } = pair(over);
  const hello = initiator.hello();
  const reply = responder.reply(hello);
  const { message: finish, result: ri } = initiator.finish(reply);
  const rr = responder.finish(finish);
  return { hello, reply, finish, ri, rr };
}

/**
 * Fixed vectors (test/vectors.json): deterministic static keys, ephemerals and signature nonces
 * (see helpers.ts). The file is frozen: a change to any byte on the wire fails here. Its values
 * are also checked on every run against test/reference.ts, a second implementation of README.md's
 * specification over other primitives (pure-JS SM3, HMAC-SM3, SM4 and ECDH).
 */
const VECTOR = JSON.parse(readFileSync(new URL("../vectors.json", import.meta.url), "utf8"));

describe("handshake", () => {
  it("matches the fixed vectors and the reference implementation of the README's specification", () => {
    const { hello, reply, finish, ri, rr } = run();
    const ref = referenceHandshake({
      chainId: CHAIN,
      initiatorStatic: I.publicKey,
      responderStatic: R.publicKey,
      initiatorEphemeral: EI,
      responderEphemeral: ER,
      signInitiator: (m) => deterministicSign(I.privateKey, m),
      signResponder: (m) => deterministicSign(R.privateKey, m),
    });
    expect(hello.byteLength).toBe(HELLO_LEN);
    expect(reply.byteLength).toBe(REPLY_LEN);
    expect(finish.byteLength).toBe(FINISH_LEN);
    expect(toHex(hello)).toBe(toHex(ref.hello));
    expect(toHex(reply)).toBe(toHex(ref.reply));
    expect(toHex(finish)).toBe(toHex(ref.finish));
    expect(toHex(ri.transcriptHash)).toBe(toHex(ref.thf));
    expect(toHex(rr.transcriptHash)).toBe(toHex(ref.thf));
    expect(toHex(ri.sendSecret)).toBe(toHex(ref.i2r));
    expect(toHex(rr.recvSecret)).toBe(toHex(ref.i2r));
    expect(toHex(ri.recvSecret)).toBe(toHex(ref.r2i));
    expect(toHex(rr.sendSecret)).toBe(toHex(ref.r2i));
    expect(toHex(ri.remoteStatic)).toBe(toHex(R.publicKey));
    expect(toHex(rr.remoteStatic)).toBe(toHex(I.publicKey));
    // the signatures are real SM2 signatures of the transcript by each static key
    const ctxR = new TextEncoder().encode("custos-sm-secure/1 responder signature\0");
    const ctxI = new TextEncoder().encode("custos-sm-secure/1 initiator signature\0");
    expect(sm2Verify(R.publicKey, new Uint8Array([...ctxR, ...ref.th2]), reply.subarray(99, 163))).toBe(true);
    expect(sm2Verify(I.publicKey, new Uint8Array([...ctxI, ...ref.th3]), finish.subarray(1, 65))).toBe(true);

    const first = new TextEncoder().encode("hello, responder");
    const back = new TextEncoder().encode("hello, initiator");
    const recI = new RecordSealer(ri.sendSecret).seal(first);
    const recR = new RecordSealer(rr.sendSecret).seal(back);
    expect(toHex(recI)).toBe(toHex(referenceRecord(ref.i2r, 0, 0, RecordType.data, first)));
    expect(toHex(recR)).toBe(toHex(referenceRecord(ref.r2i, 0, 0, RecordType.data, back)));

    // the frozen file: inputs, intermediate values, wire bytes, traffic secrets, records
    expect(VECTOR.inputs).toEqual({
      chainId: CHAIN,
      initiatorStaticPrivate: toHex(I.privateKey),
      initiatorStaticPublic: toHex(I.publicKey),
      responderStaticPrivate: toHex(R.privateKey),
      responderStaticPublic: toHex(R.publicKey),
      initiatorEphemeralPrivate: toHex(EI),
      responderEphemeralPrivate: toHex(ER),
    });
    expect(VECTOR.intermediate).toEqual({
      prologue: toHex(ref.P),
      z: toHex(ref.z),
      handshakeSecret: toHex(ref.hs),
      th2: toHex(ref.th2),
      th3: toHex(ref.th3),
    });
    expect(VECTOR.wire).toEqual({ hello: toHex(hello), reply: toHex(reply), finish: toHex(finish) });
    expect(VECTOR.thf).toBe(toHex(ri.transcriptHash));
    expect(VECTOR.i2rTrafficSecret).toBe(toHex(ri.sendSecret));
    expect(VECTOR.r2iTrafficSecret).toBe(toHex(rr.sendSecret));
    const [v0, v1, v2, v3] = VECTOR.records;
    expect(v0.record).toBe(toHex(recI));
    expect(v1.record).toBe(toHex(recR));
    // a sealer that updates its key after every data record: data, key update, data (epoch 1)
    const rekeying = new RecordSealer(ri.sendSecret, { records: 1 });
    const twoRecords = Buffer.concat([
      rekeying.seal(Buffer.from(v0.plaintext, "hex")),
      rekeying.seal(Buffer.from(v3.plaintext, "hex")),
    ]);
    expect(twoRecords.toString("hex")).toBe(v0.record + v2.record + v3.record);
    const opener = new RecordOpener(rr.recvSecret);
    expect(opener.open(twoRecords).map((p) => toHex(p))).toEqual([v0.plaintext, v3.plaintext]);
    expect(opener.updates).toBe(1);
  });

  it("with fresh ephemerals and real signatures both sides agree and every run differs", () => {
    const live = () =>
      run({
        i: { identity: identityOf(I), ephemeralPrivateKey: undefined },
        r: { identity: identityOf(R), ephemeralPrivateKey: undefined },
      });
    const a = live();
    const b = live();
    expect(bytesEqual(a.ri.sendSecret, a.rr.recvSecret)).toBe(true);
    expect(bytesEqual(a.ri.recvSecret, a.rr.sendSecret)).toBe(true);
    expect(bytesEqual(a.ri.sendSecret, a.ri.recvSecret)).toBe(false); // one key per direction
    expect(bytesEqual(a.ri.sendSecret, b.ri.sendSecret)).toBe(false); // fresh per connection
    const opener = new RecordOpener(a.rr.recvSecret);
    const msg = new Uint8Array(40_000).map((_, i) => i * 7);
    expect(Buffer.concat(opener.open(new RecordSealer(a.ri.sendSecret).seal(msg)))).toEqual(Buffer.from(msg));
  });

  it("a peer on another chain is refused at the first message", () => {
    const i = new Initiator({ chainId: "another-chain", identity: identityOf(I), authorize: allowAll });
    const r = new Responder({ chainId: CHAIN, identity: identityOf(R), authorize: allowAll });
    expect(() => r.reply(i.hello())).toThrow(expect.objectContaining({ code: "SM_CHAIN_MISMATCH" }));
  });

  it("each side's authorize decides on the other's static key before any costly work", () => {
    const refuse = (key: Uint8Array) => {
      throw Object.assign(new Error(`no ${toHex(key).slice(0, 8)}`), { code: "SM_PEER_NOT_ALLOWED" });
    };
    const a = pair({ r: { authorize: refuse } });
    expect(() => a.responder.reply(a.initiator.hello())).toThrow(
      expect.objectContaining({ code: "SM_PEER_NOT_ALLOWED" }),
    );
    const b = pair({ i: { authorize: refuse } });
    expect(() => b.initiator.finish(b.responder.reply(b.initiator.hello()))).toThrow(
      expect.objectContaining({ code: "SM_PEER_NOT_ALLOWED" }),
    );
  });

  it("a peer that presents this node's own key is refused", () => {
    const { initiator, responder } = pair({ r: { identity: identityOf(I) } });
    expect(() => responder.reply(initiator.hello())).toThrow(expect.objectContaining({ code: "SM_SELF" }));
  });

  it("a key it does not hold: a responder claiming another key fails its signature", () => {
    // the responder signs with R's private key but presents another validator's public key
    const other = fixedKeyPair("someone else");
    const { initiator, responder } = pair({
      r: { identity: { publicKey: other.publicKey, sign: (m) => deterministicSign(R.privateKey, m) } },
    });
    expect(() => initiator.finish(responder.reply(initiator.hello()))).toThrow(
      expect.objectContaining({ code: "SM_BAD_SIGNATURE" }),
    );
    // and an initiator that does so fails at the responder
    const b = pair({
      i: { identity: { publicKey: other.publicKey, sign: (m) => deterministicSign(I.privateKey, m) } },
    });
    const { message } = b.initiator.finish(b.responder.reply(b.initiator.hello()));
    expect(() => b.responder.finish(message)).toThrow(expect.objectContaining({ code: "SM_BAD_SIGNATURE" }));
  });

  it("a man in the middle who swaps an ephemeral key is caught by the signature", () => {
    const { initiator, responder } = pair();
    const hello = initiator.hello();
    const swapped = Uint8Array.from(hello);
    swapped.set(
      new Initiator({ chainId: CHAIN, identity: identityOf(I), authorize: allowAll }).hello().subarray(68),
      68,
    );
    const reply = responder.reply(swapped);
    expect(() => initiator.finish(reply)).toThrow(expect.objectContaining({ code: "SM_BAD_SIGNATURE" }));
  });

  it("a reply or finish whose Finished MAC is wrong is refused", () => {
    const { initiator, responder } = pair();
    const reply = responder.reply(initiator.hello());
    const bad = Uint8Array.from(reply);
    bad[REPLY_LEN - 1] = (bad[REPLY_LEN - 1] as number) ^ 1;
    expect(() => initiator.finish(bad)).toThrow(expect.objectContaining({ code: "SM_BAD_FINISHED" }));
    const b = pair();
    const { message } = b.initiator.finish(b.responder.reply(b.initiator.hello()));
    message[FINISH_LEN - 1] = (message[FINISH_LEN - 1] as number) ^ 0x80;
    expect(() => b.responder.finish(message)).toThrow(expect.objectContaining({ code: "SM_BAD_FINISHED" }));
  });

  it("another version or suite is refused by name; wrong types and lengths as malformed", () => {
    const { initiator, responder } = pair();
    const hello = initiator.hello();
    const v2 = Uint8Array.from(hello);
    v2[1] = 2;
    expect(() => responder.reply(v2)).toThrow(expect.objectContaining({ code: "SM_HANDSHAKE_VERSION" }));
    const s2 = Uint8Array.from(hello);
    s2[2] = 9;
    expect(() => pair().responder.reply(s2)).toThrow(
      expect.objectContaining({ code: "SM_HANDSHAKE_VERSION" }),
    );
    expect(() => pair().responder.reply(hello.subarray(0, 100))).toThrow(
      expect.objectContaining({ code: "SM_HANDSHAKE_MALFORMED" }),
    );
    const t = Uint8Array.from(hello);
    t[0] = 2;
    expect(() => pair().responder.reply(t)).toThrow(
      expect.objectContaining({ code: "SM_HANDSHAKE_MALFORMED" }),
    );
    const p = pair();
    p.initiator.hello();
    expect(() => p.initiator.finish(hello)).toThrow(
      expect.objectContaining({ code: "SM_HANDSHAKE_MALFORMED" }),
    );
  });

  it("points off the curve are refused", () => {
    const { initiator, responder } = pair();
    const hello = initiator.hello();
    const offCurve = Uint8Array.from(hello);
    offCurve[100] = (offCurve[100] as number) ^ 1; // inside E_I's x
    expect(() => responder.reply(offCurve)).toThrow(expect.objectContaining({ code: "SM_BAD_EPHEMERAL" }));
    const badStatic = Uint8Array.from(hello);
    badStatic[35] = 4;
    expect(() => pair().responder.reply(badStatic)).toThrow(
      expect.objectContaining({ code: "SM_BAD_STATIC_KEY" }),
    );
    // a responder that echoes the initiator's own ephemeral (a reflection)
    const p = pair();
    const h = p.initiator.hello();
    const reply = p.responder.reply(h);
    const echoed = Uint8Array.from(reply);
    echoed.set(h.subarray(68, 133), 1);
    expect(() => p.initiator.finish(echoed)).toThrow(expect.objectContaining({ code: "SM_BAD_EPHEMERAL" }));
  });
});
