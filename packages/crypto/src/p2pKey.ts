import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { readFile } from "node:fs/promises";
import { CustosError, concatBytes, toHex } from "@custos/utils";
import { hkdfSm3 } from "./hkdf.js";
import {
  DEFAULT_KDF_ITERATIONS,
  openSecret,
  parseSealedSecret,
  type SealedSecret,
  sealSecret,
} from "./keystore.js";
import { isValidPrivateKey } from "./sm2/curve.js";

/**
 * The node's libp2p identity: an Ed25519 key. Its peer id follows the libp2p spec: the protobuf
 * PublicKey {Type: Ed25519 (1), Data: 32 bytes} as an identity multihash, base58btc-encoded
 * ("12D3KooW..."). Genesis binds this peer id to the member's SM2 key (issue 5). Homes made
 * since issue 19 derive it from the SM2 node key (`p2pKeyFromNodeKey`), so a node has one secret;
 * older homes keep a separate random key in HOME/keys/p2p.json.
 */
export interface P2pKey {
  /** 32-byte Ed25519 seed. */
  seed: Uint8Array;
  publicKey: Uint8Array;
  peerId: string;
}

export interface P2pKeystoreFile {
  version: 1;
  kind: "custos-p2p-keystore";
  keyType: "ed25519";
  peerId: string;
  publicKey: string;
  crypto: SealedSecret;
}

const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

export function base58btc(bytes: Uint8Array): string {
  let n = BigInt(`0x${toHex(bytes) || "0"}`);
  let out = "";
  while (n > 0n) {
    out = (B58[Number(n % 58n)] as string) + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = `1${out}`;
  }
  return out;
}

export function peerIdFromEd25519(publicKey: Uint8Array): string {
  if (publicKey.byteLength !== 32)
    throw new CustosError("INVALID_PUBLIC_KEY", "an Ed25519 public key is 32 bytes");
  const protobuf = concatBytes(new Uint8Array([0x08, 0x01, 0x12, 0x20]), publicKey);
  return base58btc(concatBytes(new Uint8Array([0x00, protobuf.byteLength]), protobuf));
}

function fromSeed(seed: Uint8Array): P2pKey {
  const priv = createPrivateKey({
    key: { kty: "OKP", crv: "Ed25519", d: Buffer.from(seed).toString("base64url"), x: "" },
    format: "jwk",
  });
  const x = createPublicKey(priv).export({ format: "jwk" }).x as string;
  const publicKey = new Uint8Array(Buffer.from(x, "base64url"));
  return { seed, publicKey, peerId: peerIdFromEd25519(publicKey) };
}

/** HKDF-SM3 salt and info of the libp2p key derived from the node key (never change: peer ids in genesis files depend on them). */
const DERIVED_SALT = new TextEncoder().encode("custos/libp2p-key/v1");
const DERIVED_INFO = new TextEncoder().encode("ed25519 seed");

/**
 * The node's libp2p key derived from its SM2 node key: Ed25519 seed = HKDF-SM3(salt
 * "custos/libp2p-key/v1", IKM = the 32-byte SM2 private key, info "ed25519 seed", 32 bytes).
 * One-way: the libp2p key reveals nothing of the SM2 key, and only the holder of the SM2 key can
 * produce it. Nobody else can compute the peer id from the SM2 public key, so genesis (and the
 * governed validator and observer sets) still bind the two.
 */
export function p2pKeyFromNodeKey(nodePrivateKey: Uint8Array): P2pKey {
  if (!isValidPrivateKey(nodePrivateKey))
    throw new CustosError("SM2_INVALID_PRIVATE_KEY", "not an SM2 private key (32 bytes in [1, n-2])");
  return fromSeed(hkdfSm3(DERIVED_SALT, nodePrivateKey, DERIVED_INFO, 32));
}

export function generateP2pKey(): P2pKey {
  const { privateKey } = generateKeyPairSync("ed25519");
  const d = privateKey.export({ format: "jwk" }).d as string;
  return fromSeed(new Uint8Array(Buffer.from(d, "base64url")));
}

export async function encryptP2pKeystore(
  key: P2pKey,
  password: string,
  opts: { iterations?: number } = {},
): Promise<P2pKeystoreFile> {
  return {
    version: 1,
    kind: "custos-p2p-keystore",
    keyType: "ed25519",
    peerId: key.peerId,
    publicKey: toHex(key.publicKey),
    crypto: await sealSecret(key.seed, password, opts.iterations ?? DEFAULT_KDF_ITERATIONS),
  };
}

export async function loadP2pKeystore(path: string, password: string): Promise<P2pKey> {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (cause) {
    throw new CustosError("KEYSTORE_INVALID", `${path} is not a readable JSON keystore`, {}, { cause });
  }
  if (
    json?.kind !== "custos-p2p-keystore" ||
    json.version !== 1 ||
    json.keyType !== "ed25519" ||
    typeof json.peerId !== "string"
  ) {
    throw new CustosError("KEYSTORE_INVALID", `${path} is not a Custos p2p keystore`);
  }
  const key = fromSeed(await openSecret(parseSealedSecret(json.crypto, 32), password, json.peerId));
  if (key.peerId !== json.peerId || toHex(key.publicKey) !== json.publicKey) {
    throw new CustosError("KEYSTORE_CORRUPT", `${path} holds a different key than its peer id says`);
  }
  return key;
}
