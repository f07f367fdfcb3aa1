/**
 * A second implementation of the protocol, written from README.md's specification with other
 * primitives (sm-crypto-v2: pure-JS SM3, HMAC-SM3, SM4 and SM2 ECDH; no node:crypto), used to
 * check the package's wire bytes. Deterministic: keys, ephemerals and signature nonces are given.
 */
import { sm2, sm3, sm4 } from "sm-crypto-v2";

const ascii = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const unhex = (h: string) => Uint8Array.from(Buffer.from(h, "hex"));
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
};
const u8 = (n: number) => new Uint8Array([n]);
const u16 = (n: number) => new Uint8Array([n >> 8, n & 0xff]);
const H = (...parts: Uint8Array[]) => unhex(sm3(cat(...parts)));
const HMAC = (key: Uint8Array, ...parts: Uint8Array[]) => unhex(sm3(cat(...parts), { key }));

function expand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  let t = new Uint8Array(0);
  let okm = new Uint8Array(0);
  for (let i = 1; okm.byteLength < length; i++) {
    t = HMAC(prk, t, info, u8(i));
    okm = cat(okm, t);
  }
  return okm.subarray(0, length);
}

function expandLabel(secret: Uint8Array, label: string, context: Uint8Array, length: number) {
  const l = ascii(`custos-sm ${label}`);
  return expand(secret, cat(u16(length), u8(l.byteLength), l, u8(context.byteLength), context), length);
}

function ecdhX(privateKey: Uint8Array, peer: Uint8Array): Uint8Array {
  return sm2.ecdh(hex(privateKey), hex(peer)).subarray(1, 33);
}

function ephemeralPublic(privateKey: Uint8Array): Uint8Array {
  return unhex(sm2.getPublicKeyFromPrivateKey(hex(privateKey)));
}

/** SM4-CTR with IV seq(8) || 0^64, from SM4-ECB block by block. */
function ctr(key: Uint8Array, seq: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.byteLength);
  for (let block = 0; block * 16 < data.byteLength; block++) {
    const counter = new Uint8Array(16);
    const v = new DataView(counter.buffer);
    v.setBigUint64(0, BigInt(seq));
    v.setBigUint64(8, BigInt(block));
    const ks = sm4.encrypt(counter, key, { mode: "ecb", padding: "none", output: "array" }) as Uint8Array;
    for (let i = 0; i < 16 && block * 16 + i < data.byteLength; i++)
      out[block * 16 + i] = (data[block * 16 + i] as number) ^ (ks[i] as number);
  }
  return out;
}

export interface ReferenceInputs {
  chainId: string;
  initiatorStatic: Uint8Array;
  responderStatic: Uint8Array;
  initiatorEphemeral: Uint8Array;
  responderEphemeral: Uint8Array;
  /** sign(privateKeyOwner, message): the signatures both sides make. */
  signInitiator(message: Uint8Array): Uint8Array;
  signResponder(message: Uint8Array): Uint8Array;
}

export function referenceHandshake(x: ReferenceInputs) {
  const id = ascii(x.chainId);
  const P = cat(ascii("custos-sm-secure/1"), u16(id.byteLength), id);
  const tag = H(P);
  const eI = ephemeralPublic(x.initiatorEphemeral);
  const eR = ephemeralPublic(x.responderEphemeral);
  const hello = cat(u8(1), u8(1), u8(1), tag, x.initiatorStatic, eI);
  const replyHead = cat(u8(2), eR, x.responderStatic);
  const th2 = H(P, hello, replyHead);
  const z = ecdhX(x.responderEphemeral, eI);
  const zCheck = ecdhX(x.initiatorEphemeral, eR);
  if (hex(z) !== hex(zCheck)) throw new Error("reference ECDH disagrees with itself");
  const hs = HMAC(tag, z);
  const finKeyR = expandLabel(hs, "r finished", th2, 32);
  const finKeyI = expandLabel(hs, "i finished", th2, 32);
  const sigR = x.signResponder(cat(ascii("custos-sm-secure/1 responder signature\0"), th2));
  const finR = HMAC(finKeyR, H(P, hello, replyHead, sigR));
  const reply = cat(replyHead, sigR, finR);
  const th3 = H(P, hello, reply);
  const sigI = x.signInitiator(cat(ascii("custos-sm-secure/1 initiator signature\0"), th3));
  const finI = HMAC(finKeyI, H(P, hello, reply, u8(3), sigI));
  const finish = cat(u8(3), sigI, finI);
  const thf = H(P, hello, reply, finish);
  return {
    P,
    hello,
    reply,
    finish,
    th2,
    th3,
    thf,
    z,
    hs,
    i2r: expandLabel(hs, "i2r traffic", thf, 32),
    r2i: expandLabel(hs, "r2i traffic", thf, 32),
  };
}

/** The record with sequence number `seq` of `type` carrying `plaintext` under traffic secret `secret` (epoch `epoch`). */
export function referenceRecord(
  secret: Uint8Array,
  epoch: number,
  seq: number,
  type: number,
  plaintext: Uint8Array,
) {
  let ts = secret;
  for (let i = 0; i < epoch; i++) ts = expandLabel(ts, "update", new Uint8Array(0), 32);
  const enc = expandLabel(ts, "key", new Uint8Array(0), 16);
  const mac = expandLabel(ts, "mac", new Uint8Array(0), 32);
  const header = new Uint8Array(11);
  const v = new DataView(header.buffer);
  header[0] = type;
  v.setBigUint64(1, BigInt(seq));
  v.setUint16(9, plaintext.byteLength);
  const ct = ctr(enc, seq, plaintext);
  return cat(header, ct, HMAC(mac, header, ct));
}
