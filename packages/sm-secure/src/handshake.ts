import { createECDH, createHash, type ECDH, type Hash, timingSafeEqual } from "node:crypto";
import { decodePublicKeyXY, hmacSm3, sm2Verify } from "@custos/crypto";
import { bytesEqual, type CustosError } from "@custos/utils";
import { refusal, type SmSecureErrorCode } from "./errors.js";
import {
  chainTag,
  finishedKeys,
  handshakeSecret,
  LABEL,
  prologue,
  SUITE,
  trafficSecrets,
  VERSION,
} from "./keySchedule.js";

/** Handshake message types (the first byte of each message body). */
export const MessageType = { hello: 1, reply: 2, finish: 3 } as const;

/** hello = type || version || suite || chainTag(32) || S_I(33) || E_I(65) */
export const HELLO_LEN = 1 + 1 + 1 + 32 + 33 + 65;
/** reply = type || E_R(65) || S_R(33) || sig_R(64) || fin_R(32) */
export const REPLY_LEN = 1 + 65 + 33 + 64 + 32;
/** finish = type || sig_I(64) || fin_I(32) */
export const FINISH_LEN = 1 + 64 + 32;
/** A handshake message body on the wire is at most this long (its u16 length prefix says so). */
export const HANDSHAKE_MAX_BODY = 1024;

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
/** What each side signs: its context string, a zero byte, then the transcript hash. */
export const RESPONDER_CONTEXT = ascii(`${LABEL} responder signature\0`);
export const INITIATOR_CONTEXT = ascii(`${LABEL} initiator signature\0`);

/** This node's static identity: its SM2 node key. The private key stays with `sign`. */
export interface StaticIdentity {
  /** 33-byte compressed SM2 public key (the one in genesis / the validator and observer sets). */
  publicKey: Uint8Array;
  /** SM2 signature of `message` in the chain's profile (ID 1234567812345678, raw r||s). */
  sign(message: Uint8Array): Uint8Array;
}

export interface HandshakeOptions {
  chainId: string;
  identity: StaticIdentity;
  /**
   * Decides whether the peer holding `remoteStatic` may connect; throws (a CustosError with an
   * SM_* code) to refuse. Called before any costly work is done for it.
   */
  authorize(remoteStatic: Uint8Array): void;
  /** The ephemeral private key (32 bytes): for test vectors only; fresh from OpenSSL otherwise. */
  ephemeralPrivateKey?: Uint8Array;
  /** SM2 verification; the process-wide backend by default. */
  verify?: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean;
}

export interface HandshakeResult {
  /** The peer's static SM2 key, proven by its signature over the transcript. */
  remoteStatic: Uint8Array;
  /** First traffic secret of what this side sends, and of what it receives. */
  sendSecret: Uint8Array;
  recvSecret: Uint8Array;
  /** THF: the hash of the whole handshake (tests, channel binding). */
  transcriptHash: Uint8Array;
}

function fail(code: SmSecureErrorCode, message: string): CustosError<SmSecureErrorCode> {
  return refusal(code, message);
}

function newEphemeral(privateKey?: Uint8Array): ECDH {
  const e = createECDH("SM2");
  if (privateKey) e.setPrivateKey(privateKey);
  else e.generateKeys();
  return e;
}

function checkStatic(key: Uint8Array, own: Uint8Array): Uint8Array {
  if ((key[0] !== 2 && key[0] !== 3) || decodePublicKeyXY(key) === null)
    throw fail("SM_BAD_STATIC_KEY", "the peer's static key is not a compressed SM2 point");
  if (bytesEqual(key, own)) throw fail("SM_SELF", "the peer presented this node's own key");
  return key;
}

function checkEphemeral(key: Uint8Array, own: Uint8Array): Uint8Array {
  if (key[0] !== 4 || decodePublicKeyXY(key) === null)
    throw fail("SM_BAD_EPHEMERAL", "the peer's ephemeral key is not an uncompressed SM2 point");
  if (bytesEqual(key, own)) throw fail("SM_BAD_EPHEMERAL", "the peer echoed this side's ephemeral key");
  return key;
}

/** Z = x([e]E'): 32 bytes. */
function agree(e: ECDH, peer: Uint8Array): Uint8Array {
  const z = e.computeSecret(peer);
  const out = new Uint8Array(z);
  z.fill(0);
  return out;
}

function digest(h: Hash): Uint8Array {
  return new Uint8Array(h.copy().digest());
}

function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

function checkLength(body: Uint8Array, type: number, length: number, name: string): void {
  if (body.byteLength < 1 || body[0] !== type)
    throw fail("SM_HANDSHAKE_MALFORMED", `expected a ${name} message (type ${type})`);
  if (body.byteLength !== length)
    throw fail("SM_HANDSHAKE_MALFORMED", `a ${name} message is ${length} bytes, not ${body.byteLength}`);
}

function wipe(...xs: (Uint8Array | undefined)[]): void {
  for (const x of xs) x?.fill(0);
}

/**
 * The dialling side: `hello()` gives message 1; `finish(reply)` checks message 2 (the responder's
 * key, signature and Finished MAC) and gives message 3 and the traffic secrets. One use.
 */
export class Initiator {
  private ephemeral: ECDH | undefined;
  private readonly ePub: Uint8Array;
  private readonly transcript: Hash;
  private state: "new" | "sent" | "done" = "new";

  constructor(private readonly o: HandshakeOptions) {
    this.ephemeral = newEphemeral(o.ephemeralPrivateKey);
    this.ePub = new Uint8Array(this.ephemeral.getPublicKey());
    this.transcript = createHash("sm3").update(prologue(o.chainId));
  }

  hello(): Uint8Array {
    if (this.state !== "new") throw new Error("hello() is called once");
    this.state = "sent";
    const m = new Uint8Array(HELLO_LEN);
    m[0] = MessageType.hello;
    m[1] = VERSION;
    m[2] = SUITE;
    m.set(chainTag(this.o.chainId), 3);
    m.set(this.o.identity.publicKey, 35);
    m.set(this.ePub, 68);
    this.transcript.update(m);
    return m;
  }

  finish(reply: Uint8Array): { message: Uint8Array; result: HandshakeResult } {
    if (this.state !== "sent") throw new Error("finish() follows hello(), once");
    this.state = "done";
    const e = this.ephemeral as ECDH;
    this.ephemeral = undefined;
    checkLength(reply, MessageType.reply, REPLY_LEN, "reply");
    const eR = checkEphemeral(reply.slice(1, 66), this.ePub);
    const sR = checkStatic(reply.slice(66, 99), this.o.identity.publicKey);
    this.o.authorize(sR);
    const sigR = reply.subarray(99, 163);
    const finR = reply.subarray(163, 195);
    const t = this.transcript;
    t.update(reply.subarray(0, 99));
    const th2 = digest(t);
    const verify = this.o.verify ?? sm2Verify;
    const signed = new Uint8Array(RESPONDER_CONTEXT.byteLength + 32);
    signed.set(RESPONDER_CONTEXT);
    signed.set(th2, RESPONDER_CONTEXT.byteLength);
    if (!verify(sR, signed, sigR))
      throw fail("SM_BAD_SIGNATURE", "the responder's signature over the transcript does not verify");
    t.update(sigR);
    const th2s = digest(t);
    const z = agree(e, eR);
    const hs = handshakeSecret(this.o.chainId, z);
    const fk = finishedKeys(hs, th2);
    try {
      if (!sameMac(hmacSm3(fk.responder, th2s), finR))
        throw fail("SM_BAD_FINISHED", "the responder's Finished MAC does not match");
      t.update(finR);
      const th3 = digest(t);
      const m = new Uint8Array(FINISH_LEN);
      m[0] = MessageType.finish;
      const toSign = new Uint8Array(INITIATOR_CONTEXT.byteLength + 32);
      toSign.set(INITIATOR_CONTEXT);
      toSign.set(th3, INITIATOR_CONTEXT.byteLength);
      m.set(this.o.identity.sign(toSign), 1);
      t.update(m.subarray(0, 65));
      m.set(hmacSm3(fk.initiator, digest(t)), 65);
      t.update(m.subarray(65));
      const thf = digest(t);
      const ts = trafficSecrets(hs, thf);
      return {
        message: m,
        result: {
          remoteStatic: sR,
          sendSecret: ts.initiatorToResponder,
          recvSecret: ts.responderToInitiator,
          transcriptHash: thf,
        },
      };
    } finally {
      wipe(z, hs, fk.responder, fk.initiator);
    }
  }
}

/**
 * The answering side: `reply(hello)` checks message 1 (version, chain, the initiator's claimed
 * key against `authorize`) and gives message 2; `finish(finishMessage)` checks message 3 (the
 * initiator's Finished MAC and signature) and gives the traffic secrets. One use.
 */
export class Responder {
  private state: "new" | "replied" | "done" = "new";
  private readonly transcript: Hash;
  private remoteStatic: Uint8Array | undefined;
  private hs: Uint8Array | undefined;
  private finInitiator: Uint8Array | undefined;

  constructor(private readonly o: HandshakeOptions) {
    this.transcript = createHash("sm3").update(prologue(o.chainId));
  }

  reply(hello: Uint8Array): Uint8Array {
    if (this.state !== "new") throw new Error("reply() is called once");
    this.state = "replied";
    // the first byte of every hello names its version: a later version may be longer
    if (
      hello.byteLength >= 3 &&
      hello[0] === MessageType.hello &&
      (hello[1] !== VERSION || hello[2] !== SUITE)
    )
      throw fail(
        "SM_HANDSHAKE_VERSION",
        `version ${hello[1]} suite ${hello[2]} is not spoken here (${VERSION}/${SUITE})`,
      );
    checkLength(hello, MessageType.hello, HELLO_LEN, "hello");
    if (!sameMac(hello.subarray(3, 35), chainTag(this.o.chainId)))
      throw fail("SM_CHAIN_MISMATCH", "the peer is on another chain");
    const sI = checkStatic(hello.slice(35, 68), this.o.identity.publicKey);
    this.o.authorize(sI);
    const ephemeral = newEphemeral(this.o.ephemeralPrivateKey);
    const ePub = new Uint8Array(ephemeral.getPublicKey());
    const eI = checkEphemeral(hello.slice(68, 133), ePub);
    this.remoteStatic = sI;
    const t = this.transcript;
    t.update(hello);
    const m = new Uint8Array(REPLY_LEN);
    m[0] = MessageType.reply;
    m.set(ePub, 1);
    m.set(this.o.identity.publicKey, 66);
    t.update(m.subarray(0, 99));
    const th2 = digest(t);
    const z = agree(ephemeral, eI);
    const hs = handshakeSecret(this.o.chainId, z);
    wipe(z);
    const fk = finishedKeys(hs, th2);
    const toSign = new Uint8Array(RESPONDER_CONTEXT.byteLength + 32);
    toSign.set(RESPONDER_CONTEXT);
    toSign.set(th2, RESPONDER_CONTEXT.byteLength);
    m.set(this.o.identity.sign(toSign), 99);
    t.update(m.subarray(99, 163));
    m.set(hmacSm3(fk.responder, digest(t)), 163);
    t.update(m.subarray(163));
    wipe(fk.responder);
    this.hs = hs;
    this.finInitiator = fk.initiator;
    return m;
  }

  finish(finish: Uint8Array): HandshakeResult {
    if (this.state !== "replied") throw new Error("finish() follows reply(), once");
    this.state = "done";
    const hs = this.hs as Uint8Array;
    const fk = this.finInitiator as Uint8Array;
    this.hs = undefined;
    this.finInitiator = undefined;
    try {
      checkLength(finish, MessageType.finish, FINISH_LEN, "finish");
      const sI = this.remoteStatic as Uint8Array;
      const t = this.transcript;
      const th3 = digest(t);
      const sigI = finish.subarray(1, 65);
      t.update(finish.subarray(0, 65));
      if (!sameMac(hmacSm3(fk, digest(t)), finish.subarray(65, 97)))
        throw fail("SM_BAD_FINISHED", "the initiator's Finished MAC does not match");
      const signed = new Uint8Array(INITIATOR_CONTEXT.byteLength + 32);
      signed.set(INITIATOR_CONTEXT);
      signed.set(th3, INITIATOR_CONTEXT.byteLength);
      if (!(this.o.verify ?? sm2Verify)(sI, signed, sigI))
        throw fail("SM_BAD_SIGNATURE", "the initiator's signature over the transcript does not verify");
      t.update(finish.subarray(65));
      const thf = digest(t);
      const ts = trafficSecrets(hs, thf);
      return {
        remoteStatic: sI,
        sendSecret: ts.responderToInitiator,
        recvSecret: ts.initiatorToResponder,
        transcriptHash: thf,
      };
    } finally {
      wipe(hs, fk);
    }
  }
}
