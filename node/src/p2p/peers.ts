import { loadP2pKeystore, p2pKeyFromNodeKey, type Sm2KeyPair, sm2Sign } from "@custos/crypto";
import { type GenesisValidator, LIMITS, type P2pSecure } from "@custos/types";
import { bytesEqual, CustosError, type Logger } from "@custos/utils";
import type { NodeConfig } from "../config.js";
import type { P2pErrorCode } from "./network.js";
import { type NetworkPeer, P2pNetwork } from "./network.js";

export type Role = "validator" | "observer";

/**
 * This node's place: a validator (its SM2 key in the current validator set, genesis's until
 * governance changes it), an observer (its key among the current observers), or, with `join`, a
 * node not in those sets yet: it dials the peers it knows and syncs once a proposal has added it
 * (a validator then takes part in consensus).
 */
export function roleOf(
  validators: readonly GenesisValidator[],
  observers: readonly GenesisValidator[],
  key: Sm2KeyPair,
  observer: boolean,
  join: boolean,
): { role: Role; self: number } {
  const v = validators.findIndex((x) => bytesEqual(x.publicKey, key.publicKey));
  const o = observers.findIndex((x) => bytesEqual(x.publicKey, key.publicKey));
  if (observer) {
    if (v >= 0)
      throw new CustosError<P2pErrorCode>(
        "ROLE_MISMATCH",
        "this node's key is a validator's; --observer is for an observer's key",
      );
    if (o < 0 && join) return { role: "observer", self: -1 };
    if (o < 0)
      throw new CustosError<P2pErrorCode>(
        "NOT_IN_GENESIS",
        `this node's key ${key.address} is not among the observers; add it with custos genesis --observer, or by proposal (custos observer add) and start with --join`,
      );
    return { role: "observer", self: validators.length + o };
  }
  if (v < 0 && join && o < 0) return { role: "validator", self: -1 };
  if (v < 0)
    throw new CustosError<P2pErrorCode>(
      "NOT_IN_GENESIS",
      o >= 0
        ? "this node's key is an observer's: start it with --observer"
        : `this node's key ${key.address} is not in the validator set; a node that governance is adding starts with --join`,
    );
  return { role: "validator", self: v };
}

/** Who may connect: the current validators (by their index in the set), then the observers. */
export function peersOf(
  validators: readonly GenesisValidator[],
  observers: readonly GenesisValidator[],
): NetworkPeer[] {
  return [
    ...validators.map((v, index) => ({
      index,
      peerId: v.peerId,
      addrs: v.p2p,
      role: "validator" as const,
      name: v.name,
      publicKey: v.publicKey,
    })),
    ...observers.map((o, k) => ({
      index: validators.length + k,
      peerId: o.peerId,
      addrs: o.p2p,
      role: "observer" as const,
      name: o.name,
      publicKey: o.publicKey,
    })),
  ];
}

export interface NetworkPlace {
  /** This node's index in `peersOf` (-1: joining, not in the sets yet). */
  self: number;
  /** This node's SM2 node key. */
  key: Sm2KeyPair;
  /** The node key's password (it also opens a home's separate libp2p key, if it has one). */
  password: string;
  chainId: string;
  /** The chain's choice in genesis. */
  secure: P2pSecure;
  /** --p2p-listen. */
  p2pListen?: string;
}

/**
 * The network of a multi-node chain: this node's libp2p key (derived from its SM2 key, or a
 * home's older separate key) must be the one the validator set (or genesis, for observers) binds
 * to its SM2 key; only current validators and observers may connect, over the transport the
 * chain's genesis names (national algorithms: the peer proves its SM2 key). A joining node (self
 * -1) is not listed yet: it dials the validators it knows.
 */
export async function openNetwork(
  head: { validators: readonly GenesisValidator[]; observers: readonly GenesisValidator[] },
  config: NodeConfig,
  place: NetworkPlace,
  log: Logger,
): Promise<P2pNetwork> {
  const { self, key, password, p2pListen } = place;
  const peers = peersOf(head.validators, head.observers);
  const p2p = config.p2pKey
    ? await loadP2pKeystore(config.p2pKey.file, password)
    : p2pKeyFromNodeKey(key.privateKey);
  const me: NetworkPeer = peers[self] ?? { index: -1, peerId: p2p.peerId, addrs: [], role: "validator" };
  if (me.peerId !== p2p.peerId) {
    throw new CustosError<P2pErrorCode>(
      "P2P_KEY_MISMATCH",
      `this node's libp2p key ${p2p.peerId} is not the one genesis binds to its SM2 key (${me.peerId || "none"})`,
    );
  }
  const listen = p2pListen ? [p2pListen] : (config.p2p.listen ?? me.addrs);
  if (listen.length === 0)
    throw new CustosError<P2pErrorCode>(
      "CONFIG_INVALID",
      "no libp2p listen address: give --p2p-listen or p2p addresses in genesis",
    );
  return new P2pNetwork(
    {
      seed: p2p.seed,
      listen,
      peers,
      ...(config.p2p.dial ? { dial: config.p2p.dial } : {}),
      maxMessageBytes: LIMITS.maxBlockBytes + 1024 * 1024,
      secure:
        place.secure === "sm"
          ? {
              kind: "sm",
              chainId: place.chainId,
              identity: { publicKey: key.publicKey, sign: (m) => sm2Sign(key.privateKey, m) },
            }
          : { kind: "noise" },
    },
    log,
  );
}
