import { encode, merkleRoot } from "@custos/codec";
import { addressFromPublicKey, sm3 } from "@custos/crypto";
import { CustosError, fromHex, toHex } from "@custos/utils";
import { encodeHeader, HEADER_VERSION, type Header } from "./block.js";
import { CHAIN_ID_RE, LIMITS } from "./limits.js";

export const ROLES = [
  "committee",
  "regulator",
  "operator",
  "institution",
  "merchant",
  "consumer",
  "auditor",
] as const;
export type Role = (typeof ROLES)[number];

/** e-CNY wallet tiers (数字人民币钱包 levels 1-4): per-transaction and per-day limits in fen. */
export const ECNY_TIERS = [1, 2, 3, 4] as const;
export type EcnyTier = (typeof ECNY_TIERS)[number];

export interface TierLimits {
  singleLimit: bigint;
  dailyLimit: bigint;
}

export interface GenesisMember {
  name: string;
  address: string;
  /** 33-byte compressed SM2 key. */
  publicKey: Uint8Array;
  roles: Role[];
  ecnyTier: EcnyTier;
}

export interface GenesisValidator {
  name: string;
  publicKey: Uint8Array;
  /** libp2p peer id bound to this validator's SM2 key ("" on a one-validator chain). */
  peerId: string;
  /** Where peers dial it, multiaddrs without /p2p (e.g. /ip4/10.0.0.5/tcp/30300). */
  p2p: string[];
}

/**
 * A read-only node bound into the network: it syncs and verifies every block but never votes.
 * Its libp2p peer id is allowed through the validators' connection gaters.
 */
export interface GenesisObserver {
  name: string;
  publicKey: Uint8Array;
  peerId: string;
  p2p: string[];
}

export interface Genesis {
  chainId: string;
  /** Milliseconds since the epoch: the timestamp of block 0. */
  timestamp: number;
  /** A tx is valid while height < blockLimit <= height + blockLimitWindow. */
  blockLimitWindow: number;
  consensus: { validators: GenesisValidator[]; minBlockIntervalMs: number; maxBlockTxs: number };
  /** Observer nodes (auditors' read-only nodes); governance can add more later. */
  observers: GenesisObserver[];
  members: GenesisMember[];
  ecny: { tiers: Record<EcnyTier, TierLimits>; largeTxThreshold: bigint };
  /**
   * Committee approvals a proposal needs, and how long it stays open. Absent from the file:
   * a majority of the genesis committee, 7 days (the defaults are not part of the genesis hash,
   * so genesis files written before governance keep their hash).
   */
  governance: { threshold: number; proposalTtlMs: number; explicit: boolean };
  /**
   * How nodes secure their connections: "sm" (national algorithms, @custos/sm-secure), what
   * `custos init --dev`, `custos genesis` and `custos testnet up` write; or "noise" (X25519 and
   * ChaCha20-Poly1305), what a file without the field means, so that chains made before issue 19
   * keep their genesis hash and their nodes still meet. A node speaks only its chain's choice.
   */
  p2p: { secure: P2pSecure; explicit: boolean };
}

export const P2P_SECURE = ["sm", "noise"] as const;
export type P2pSecure = (typeof P2P_SECURE)[number];

export const DEFAULT_PROPOSAL_TTL_MS = 7 * 86_400_000;

function bad(field: string, why: string): CustosError {
  return new CustosError("GENESIS_INVALID", `genesis.${field}: ${why}`, { field });
}

const obj = (v: unknown, f: string): Record<string, unknown> => {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad(f, "expected an object");
  return v as Record<string, unknown>;
};
const int = (v: unknown, f: string, min: number, max: number): number => {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw bad(f, `expected an integer in [${min}, ${max}]`);
  }
  return v;
};
const str = (v: unknown, f: string, re: RegExp): string => {
  if (typeof v !== "string" || !re.test(v)) throw bad(f, `expected a string matching ${re}`);
  return v;
};
const fen = (v: unknown, f: string): bigint => {
  if (typeof v !== "string" || !/^(0|[1-9][0-9]{0,18})$/.test(v))
    throw bad(f, "expected an amount in fen as a decimal string");
  return BigInt(v);
};
const pubKey = (v: unknown, f: string): Uint8Array => {
  if (typeof v !== "string" || !/^0[23][0-9a-f]{64}$/.test(v))
    throw bad(f, "expected a 33-byte compressed public key in hex");
  const key = fromHex(v);
  try {
    addressFromPublicKey(key);
  } catch {
    throw bad(f, "not a point on the SM2 curve");
  }
  return key;
};
const arr = (v: unknown, f: string, min: number, max: number): unknown[] => {
  if (!Array.isArray(v) || v.length < min || v.length > max)
    throw bad(f, `expected an array of ${min} to ${max} items`);
  return v;
};

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** An Ed25519 libp2p peer id (identity multihash, base58btc). */
export const PEER_ID_RE = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/;
export const MULTIADDR_RE = /^\/(ip4|ip6|dns4|dns6|dns)\/[^/\s]{1,253}\/tcp\/\d{1,5}$/;

/** Validates a genesis file's JSON (untrusted) into a Genesis. Throws GENESIS_INVALID naming the field. */
export function parseGenesis(json: unknown): Genesis {
  const g = obj(json, "(root)");
  const consensus = obj(g.consensus, "consensus");
  const validators = arr(consensus.validators, "consensus.validators", 1, LIMITS.maxValidators).map(
    (v, i) => {
      const f = `consensus.validators[${i}]`;
      const o = obj(v, f);
      const p2p =
        o.p2p === undefined
          ? []
          : arr(o.p2p, `${f}.p2p`, 0, 8).map((a, k) => str(a, `${f}.p2p[${k}]`, MULTIADDR_RE));
      return {
        name: str(o.name, `${f}.name`, NAME_RE),
        publicKey: pubKey(o.publicKey, `${f}.publicKey`),
        peerId: o.peerId === undefined ? "" : str(o.peerId, `${f}.peerId`, PEER_ID_RE),
        p2p,
      };
    },
  );
  if (validators.length > 1) {
    const ids = new Set<string>();
    validators.forEach((v, i) => {
      if (!v.peerId)
        throw bad(
          `consensus.validators[${i}].peerId`,
          "every validator of a multi-validator chain needs its libp2p peer id",
        );
      if (ids.has(v.peerId)) throw bad(`consensus.validators[${i}].peerId`, "duplicate peer id");
      ids.add(v.peerId);
    });
  }
  const peerIds = new Set(validators.map((v) => v.peerId));
  const observers = (g.observers === undefined ? [] : arr(g.observers, "observers", 0, 64)).map((v, i) => {
    const f = `observers[${i}]`;
    const o = obj(v, f);
    const peerId = str(o.peerId, `${f}.peerId`, PEER_ID_RE);
    if (peerIds.has(peerId)) throw bad(`${f}.peerId`, "duplicate peer id");
    peerIds.add(peerId);
    return {
      name: str(o.name, `${f}.name`, NAME_RE),
      publicKey: pubKey(o.publicKey, `${f}.publicKey`),
      peerId,
      p2p: (o.p2p === undefined ? [] : arr(o.p2p, `${f}.p2p`, 0, 8)).map((a, k) =>
        str(a, `${f}.p2p[${k}]`, MULTIADDR_RE),
      ),
    };
  });
  const seen = new Set<string>();
  const members = arr(g.members, "members", 1, 100_000).map((m, i) => {
    const f = `members[${i}]`;
    const o = obj(m, f);
    const publicKey = pubKey(o.publicKey, `${f}.publicKey`);
    const address = addressFromPublicKey(publicKey);
    if (o.address !== undefined && o.address !== address)
      throw bad(`${f}.address`, `does not match the public key (${address})`);
    if (seen.has(address)) throw bad(f, `duplicate member ${address}`);
    seen.add(address);
    const roles = arr(o.roles, `${f}.roles`, 1, ROLES.length).map((r) => {
      if (!ROLES.includes(r as Role))
        throw bad(`${f}.roles`, `unknown role ${JSON.stringify(r)}; roles are ${ROLES.join(", ")}`);
      return r as Role;
    });
    return {
      name: str(o.name, `${f}.name`, NAME_RE),
      address,
      publicKey,
      roles,
      ecnyTier: int(o.ecnyTier ?? 2, `${f}.ecnyTier`, 1, 4) as EcnyTier,
    };
  });
  const ecny = obj(g.ecny, "ecny");
  const tiersIn = obj(ecny.tiers, "ecny.tiers");
  const tiers = {} as Record<EcnyTier, TierLimits>;
  for (const t of ECNY_TIERS) {
    const o = obj(tiersIn[String(t)], `ecny.tiers.${t}`);
    tiers[t] = {
      singleLimit: fen(o.singleLimit, `ecny.tiers.${t}.singleLimit`),
      dailyLimit: fen(o.dailyLimit, `ecny.tiers.${t}.dailyLimit`),
    };
  }
  return {
    chainId: str(g.chainId, "chainId", CHAIN_ID_RE),
    timestamp: int(g.timestamp, "timestamp", 0, Number.MAX_SAFE_INTEGER),
    blockLimitWindow: int(g.blockLimitWindow, "blockLimitWindow", 1, 100_000),
    consensus: {
      validators,
      minBlockIntervalMs: int(consensus.minBlockIntervalMs, "consensus.minBlockIntervalMs", 0, 60_000),
      maxBlockTxs: int(consensus.maxBlockTxs, "consensus.maxBlockTxs", 1, LIMITS.maxTxsPerBlock),
    },
    observers,
    members,
    ecny: { tiers, largeTxThreshold: fen(ecny.largeTxThreshold, "ecny.largeTxThreshold") },
    governance: parseGovernance(g.governance, members.filter((m) => m.roles.includes("committee")).length),
    p2p: parseP2p(g.p2p),
  };
}

function parseP2p(v: unknown): Genesis["p2p"] {
  if (v === undefined) return { secure: "noise", explicit: false };
  const o = obj(v, "p2p");
  if (!P2P_SECURE.includes(o.secure as P2pSecure))
    throw bad("p2p.secure", `expected one of ${P2P_SECURE.map((x) => JSON.stringify(x)).join(", ")}`);
  return { secure: o.secure as P2pSecure, explicit: true };
}

function parseGovernance(v: unknown, committee: number): Genesis["governance"] {
  if (v === undefined) {
    return {
      threshold: Math.floor(committee / 2) + 1,
      proposalTtlMs: DEFAULT_PROPOSAL_TTL_MS,
      explicit: false,
    };
  }
  const o = obj(v, "governance");
  const threshold = int(o.threshold, "governance.threshold", 1, Math.max(1, committee));
  const proposalTtlMs = int(
    o.proposalTtlMs ?? DEFAULT_PROPOSAL_TTL_MS,
    "governance.proposalTtlMs",
    1_000,
    365 * 86_400_000,
  );
  return { threshold, proposalTtlMs, explicit: true };
}

/** The JSON form of a genesis (bytes as hex, amounts as decimal strings). */
export function genesisToJson(g: Genesis): Record<string, unknown> {
  return {
    chainId: g.chainId,
    timestamp: g.timestamp,
    blockLimitWindow: g.blockLimitWindow,
    consensus: {
      validators: g.consensus.validators.map((v) => ({
        name: v.name,
        publicKey: toHex(v.publicKey),
        ...(v.peerId ? { peerId: v.peerId } : {}),
        ...(v.p2p.length ? { p2p: v.p2p } : {}),
      })),
      minBlockIntervalMs: g.consensus.minBlockIntervalMs,
      maxBlockTxs: g.consensus.maxBlockTxs,
    },
    ...(g.observers.length
      ? {
          observers: g.observers.map((o) => ({
            name: o.name,
            publicKey: toHex(o.publicKey),
            peerId: o.peerId,
            ...(o.p2p.length ? { p2p: o.p2p } : {}),
          })),
        }
      : {}),
    members: g.members.map((m) => ({
      name: m.name,
      address: m.address,
      publicKey: toHex(m.publicKey),
      roles: m.roles,
      ecnyTier: m.ecnyTier,
    })),
    ecny: {
      tiers: Object.fromEntries(
        ECNY_TIERS.map((t) => [
          t,
          {
            singleLimit: g.ecny.tiers[t].singleLimit.toString(),
            dailyLimit: g.ecny.tiers[t].dailyLimit.toString(),
          },
        ]),
      ),
      largeTxThreshold: g.ecny.largeTxThreshold.toString(),
    },
    ...(g.governance.explicit
      ? { governance: { threshold: g.governance.threshold, proposalTtlMs: g.governance.proposalTtlMs } }
      : {}),
    ...(g.p2p.explicit ? { p2p: { secure: g.p2p.secure } } : {}),
  };
}

/** Canonical bytes of the genesis: what every node must agree on. */
export function encodeGenesis(g: Genesis): Uint8Array {
  return encode([
    1,
    g.chainId,
    BigInt(g.timestamp),
    g.blockLimitWindow,
    g.consensus.validators.map((v) => [v.name, v.publicKey, v.peerId, v.p2p]),
    g.consensus.minBlockIntervalMs,
    g.consensus.maxBlockTxs,
    g.members.map((m) => [m.name, m.publicKey, m.roles, m.ecnyTier]),
    ECNY_TIERS.map((t) => [g.ecny.tiers[t].singleLimit, g.ecny.tiers[t].dailyLimit]),
    g.ecny.largeTxThreshold,
    g.observers.map((o) => [o.name, o.publicKey, o.peerId, o.p2p]),
    // optional tail fields: absent from older files, so their hash stays; a later field present
    // puts null in the place of an earlier absent one, so that no two files share their bytes
    ...(g.governance.explicit
      ? [[g.governance.threshold, g.governance.proposalTtlMs]]
      : g.p2p.explicit
        ? [null]
        : []),
    ...(g.p2p.explicit ? [["p2p", g.p2p.secure]] : []),
  ]);
}

export function validatorSetHash(validators: readonly Uint8Array[]): Uint8Array {
  return sm3(encode(validators.map((v) => v)));
}

/**
 * Block 0. Its stateRoot chains from 32 zero bytes over the genesis write set (the same rule as
 * every block), and prevHash is SM3 of the canonical genesis, so two different genesis files
 * never share a chain.
 */
export function genesisHeader(g: Genesis, genesisStateRoot: Uint8Array): Header {
  return {
    version: HEADER_VERSION,
    chainId: g.chainId,
    height: 0,
    prevHash: sm3(encodeGenesis(g)),
    timestamp: g.timestamp,
    proposer: 0,
    view: 0,
    txRoot: merkleRoot([]),
    receiptRoot: merkleRoot([]),
    stateRoot: genesisStateRoot,
    validatorSetHash: validatorSetHash(g.consensus.validators.map((v) => v.publicKey)),
  };
}

export function genesisBlockHeaderBytes(g: Genesis, genesisStateRoot: Uint8Array): Uint8Array {
  return encodeHeader(genesisHeader(g, genesisStateRoot));
}
