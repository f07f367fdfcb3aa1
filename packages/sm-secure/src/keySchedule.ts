import { hkdfSm3Expand, hkdfSm3Extract, sm3 } from "@custos/crypto";
import { CustosError, concatBytes } from "@custos/utils";

/** The multistream-select protocol id libp2p negotiates for this transport. */
export const PROTOCOL_ID = "/custos/sm-secure/1.0.0";
/** The protocol label: the start of the prologue and of every signature context. */
export const LABEL = "custos-sm-secure/1";
export const VERSION = 1;
/** SM2 ephemeral ECDH, SM2 signatures, HKDF-SM3, SM4-CTR + HMAC-SM3 (encrypt-then-MAC). */
export const SUITE = 1;

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** P = "custos-sm-secure/1" || u16(len(chainId)) || chainId (UTF-8): the start of every transcript. */
export function prologue(chainId: string): Uint8Array {
  const id = ascii(chainId);
  if (id.byteLength === 0 || id.byteLength > 0xffff)
    throw new CustosError("INVALID_ARGUMENT", "a chain id is 1 to 65535 bytes");
  const len = new Uint8Array([id.byteLength >> 8, id.byteLength & 0xff]);
  return concatBytes(ascii(LABEL), len, id);
}

/** SM3(P): sent in the first message (a peer of another chain is told apart at once) and the HKDF salt. */
export function chainTag(chainId: string): Uint8Array {
  return sm3(prologue(chainId));
}

/**
 * ExpandLabel(secret, label, context, L) = HKDF-Expand-SM3(secret, info, L) with
 * info = u16(L) || u8(len(l)) || l || u8(len(context)) || context, l = "custos-sm " || label
 * (the shape of TLS 1.3's HkdfLabel).
 */
export function expandLabel(
  secret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
): Uint8Array {
  const l = ascii(`custos-sm ${label}`);
  if (l.byteLength > 255 || context.byteLength > 255)
    throw new CustosError("INVALID_ARGUMENT", "an HKDF label and its context are at most 255 bytes");
  const info = concatBytes(
    new Uint8Array([length >> 8, length & 0xff, l.byteLength]),
    l,
    new Uint8Array([context.byteLength]),
    context,
  );
  return hkdfSm3Expand(secret, info, length);
}

/** HS = HKDF-Extract-SM3(salt = SM3(P), IKM = Z), Z the x-coordinate of the ephemeral ECDH. */
export function handshakeSecret(chainId: string, z: Uint8Array): Uint8Array {
  return hkdfSm3Extract(chainTag(chainId), z);
}

/** The two Finished keys, from HS and TH2 (the transcript through the responder's static key). */
export function finishedKeys(
  hs: Uint8Array,
  th2: Uint8Array,
): { responder: Uint8Array; initiator: Uint8Array } {
  return {
    responder: expandLabel(hs, "r finished", th2, 32),
    initiator: expandLabel(hs, "i finished", th2, 32),
  };
}

/** The first traffic secret of each direction, from HS and THF (the hash of the whole handshake). */
export function trafficSecrets(
  hs: Uint8Array,
  thf: Uint8Array,
): { initiatorToResponder: Uint8Array; responderToInitiator: Uint8Array } {
  return {
    initiatorToResponder: expandLabel(hs, "i2r traffic", thf, 32),
    responderToInitiator: expandLabel(hs, "r2i traffic", thf, 32),
  };
}

/** The keys one traffic secret gives: SM4 key (16 bytes) and HMAC-SM3 key (32 bytes). */
export function recordKeys(secret: Uint8Array): { enc: Uint8Array; mac: Uint8Array } {
  const empty = new Uint8Array(0);
  return { enc: expandLabel(secret, "key", empty, 16), mac: expandLabel(secret, "mac", empty, 32) };
}

/** The next epoch's traffic secret after a key update (the old one is wiped by its holder). */
export function nextTrafficSecret(secret: Uint8Array): Uint8Array {
  return expandLabel(secret, "update", new Uint8Array(0), 32);
}
