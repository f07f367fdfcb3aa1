import { join } from "node:path";
import { encryptKeystore, generateKeyPair, writeKeystoreFile } from "@custos/crypto";
import { type EcnyTier, type Genesis, type P2pSecure, parseGenesis, type Role } from "@custos/types";

/**
 * The demo chain that `custos init --dev` and `custos testnet up` make: who the demo members are,
 * the e-CNY wallet tiers, the chain's defaults, their keystores and the genesis. One place, so a
 * laptop chain and a testnet are the same chain but for their validators.
 */

/** Demo members of a dev chain: who they are, their role and e-CNY wallet tier. */
export const DEV_MEMBERS: { name: string; role: Role; tier: EcnyTier }[] = [
  { name: "operator", role: "operator", tier: 1 },
  { name: "regulator", role: "regulator", tier: 1 },
  { name: "committee-1", role: "committee", tier: 1 },
  { name: "committee-2", role: "committee", tier: 1 },
  { name: "committee-3", role: "committee", tier: 1 },
  { name: "bank", role: "institution", tier: 1 },
  { name: "service-institution", role: "institution", tier: 1 },
  { name: "merchant-1", role: "merchant", tier: 1 },
  { name: "merchant-2", role: "merchant", tier: 1 },
  { name: "consumer-1", role: "consumer", tier: 2 },
  { name: "consumer-2", role: "consumer", tier: 3 },
  { name: "consumer-3", role: "consumer", tier: 4 },
  { name: "auditor", role: "auditor", tier: 1 },
];

/** Tier limits in fen, after the e-CNY wallet levels (tier 1: fully verified, tier 4: anonymous). */
export const DEV_TIERS = {
  "1": { singleLimit: "1000000000000", dailyLimit: "1000000000000" },
  "2": { singleLimit: "5000000", dailyLimit: "10000000" },
  "3": { singleLimit: "500000", dailyLimit: "1000000" },
  "4": { singleLimit: "200000", dailyLimit: "500000" },
};

/** The chain parameters a dev chain and a testnet start from (genesis.json's fields). */
export const DEV_CHAIN = {
  blockLimitWindow: 600,
  minBlockIntervalMs: 100,
  maxBlockTxs: 5000,
  /** e-CNY amount (fen) that raises LargeTransaction. */
  largeTxThreshold: "5000000",
};

export interface DevAccount {
  name: string;
  role: Role;
  address: string;
  keyFile: string;
}

export interface GenesisMemberSpec {
  name: string;
  publicKey: string;
  roles: Role[];
  ecnyTier: EcnyTier;
}

/** A keystore per demo member in `dir` (absolute paths, so the list works from anywhere). */
export async function createDevMembers(
  dir: string,
  password: string,
  kdf: { iterations?: number },
): Promise<{ accounts: DevAccount[]; members: GenesisMemberSpec[] }> {
  const accounts: DevAccount[] = [];
  const members: GenesisMemberSpec[] = [];
  for (const m of DEV_MEMBERS) {
    const pair = generateKeyPair();
    const keyFile = join(dir, `${m.name}.json`);
    await writeKeystoreFile(keyFile, await encryptKeystore(pair.privateKey, password, kdf));
    accounts.push({ name: m.name, role: m.role, address: pair.address, keyFile });
    members.push({
      name: m.name,
      publicKey: Buffer.from(pair.publicKey).toString("hex"),
      roles: [m.role],
      ecnyTier: m.tier,
    });
  }
  return { accounts, members };
}

export interface DevGenesisSpec {
  chainId: string;
  validators: { name: string; publicKey: string; peerId?: string; p2p?: string[] }[];
  observers?: { name: string; publicKey: string; peerId?: string; p2p?: string[] }[];
  members: GenesisMemberSpec[];
  minBlockIntervalMs?: number;
  maxBlockTxs?: number;
  /** How nodes secure their connections: national algorithms ("sm") unless asked otherwise. */
  p2pSecure?: P2pSecure;
}

export function devGenesis(s: DevGenesisSpec): Genesis {
  return parseGenesis({
    chainId: s.chainId,
    timestamp: Date.now(),
    blockLimitWindow: DEV_CHAIN.blockLimitWindow,
    consensus: {
      validators: s.validators,
      minBlockIntervalMs: s.minBlockIntervalMs ?? DEV_CHAIN.minBlockIntervalMs,
      maxBlockTxs: s.maxBlockTxs ?? DEV_CHAIN.maxBlockTxs,
    },
    ...(s.observers ? { observers: s.observers } : {}),
    members: s.members,
    ecny: { tiers: DEV_TIERS, largeTxThreshold: DEV_CHAIN.largeTxThreshold },
    p2p: { secure: s.p2pSecure ?? "sm" },
  });
}
