import { decode, encode, fieldAt, readArray, readBytes, readString } from "@custos/codec";
import type { GenesisValidator } from "./genesis.js";
import { stateKey } from "./stateKeys.js";

/**
 * Where the chain keeps its validator set, and how (consensus rule): the validators system
 * contract stores the set that signs the next block under key "set" (absent until governance
 * first changes it: the genesis set applies), each entry [name, publicKey, peerId, p2p]. A
 * verifier without a node reads it with a state proof; the node's set tracking reads the same.
 */
export const VALIDATORS_CONTRACT = "validators";
export const VALIDATOR_SET_KEY = stateKey(VALIDATORS_CONTRACT, "set");
/** The observers allowed to connect, likewise (absent: genesis's). */
export const OBSERVER_SET_KEY = stateKey(VALIDATORS_CONTRACT, "observers");

export function encodeValidatorSet(set: readonly GenesisValidator[]): Uint8Array {
  return encode(set.map((v) => [v.name, v.publicKey, v.peerId, v.p2p]));
}

/** A stored validator (or observer) set, checked entry by entry. */
export function decodeValidatorSet(raw: Uint8Array): GenesisValidator[] {
  const S = "ValidatorSet";
  return readArray(decode(raw, S, 1 << 20), fieldAt(S, ""), { min: 0, max: 1024 }).map((e, i) => {
    const f = (name: string) => fieldAt(S, `[${i}].${name}`);
    const v = readArray(e, f(""), 4);
    return {
      name: readString(v[0], f("name"), { max: 64 }),
      publicKey: readBytes(v[1], f("publicKey"), 33),
      peerId: readString(v[2], f("peerId"), { max: 128 }),
      p2p: readArray(v[3], f("p2p"), { min: 0, max: 8 }).map((a, k) =>
        readString(a, f(`p2p[${k}]`), { max: 256 }),
      ),
    };
  });
}

/**
 * Where the e-CNY system contract keeps an account's balance and the total issued (a bigint in
 * fen, msgpack; absent = 0), for state proofs of balances (node/src/system/ecny.ts writes them;
 * a test there checks that the keys agree).
 */
export const ECNY_CONTRACT = "ecny";
export function ecnyBalanceKey(address: string): Uint8Array {
  return stateKey(ECNY_CONTRACT, `b:${address}`);
}
export const ECNY_SUPPLY_KEY = stateKey(ECNY_CONTRACT, "supply");
