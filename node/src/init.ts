import { randomBytes } from "node:crypto";
import { access, mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  encryptKeystore,
  encryptP2pKeystore,
  generateKeyPair,
  generateP2pKey,
  type Sm2KeyPair,
  writeKeystoreFile,
} from "@custos/crypto";
import { type EcnyTier, type Genesis, genesisToJson, parseGenesis, type Role } from "@custos/types";
import { CustosError } from "@custos/utils";
import { homePaths } from "./config.js";

export interface InitOptions {
  home: string;
  dev: boolean;
  chainId?: string;
  /** The node key's password; with `dev` a random one is generated and saved as HOME/dev-password. */
  password?: string;
  /** PBKDF2 iterations for the keystores; dev homes use fewer so that init stays quick. */
  kdfIterations?: number;
  rpcListen?: string;
}

export interface DevAccount {
  name: string;
  role: Role;
  address: string;
  keyFile: string;
}

export interface InitResult {
  home: string;
  chainId: string;
  nodeAddress: string;
  nodePublicKey: string;
  /** libp2p peer id of the node's Ed25519 network key (HOME/keys/p2p.json). */
  peerId: string;
  /** The genesis file written (dev homes); null without --dev: the chain's genesis goes there later. */
  genesisFile: string | null;
  passwordFile?: string;
  accounts?: DevAccount[];
}

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

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function writePrivate(path: string, text: string): Promise<void> {
  await writeFile(path, text, { mode: 0o600, flag: "wx" });
}

/**
 * Creates a node home: the node key (encrypted keystore) and config.json; with `dev` also a
 * one-validator genesis, demo members with their own keystores, HOME/dev-password and
 * HOME/dev-accounts.json. Refuses a home that already holds a key or a genesis.
 */
export async function initHome(o: InitOptions): Promise<InitResult> {
  const paths = homePaths(o.home);
  const nodeKeyFile = join(o.home, "keys", "node.json");
  if ((await exists(paths.genesis)) || (await exists(nodeKeyFile))) {
    throw new CustosError(
      "HOME_EXISTS",
      `${o.home} already holds a node; refusing to overwrite its key or genesis`,
    );
  }
  await mkdir(join(o.home, "keys"), { recursive: true, mode: 0o700 });
  const iterations = o.kdfIterations ?? (o.dev ? 20_000 : undefined);
  const kdf = iterations === undefined ? {} : { iterations };
  let password = o.password;
  let passwordFile: string | undefined;
  if (o.dev) {
    password ??= randomBytes(18).toString("base64url");
    // absolute, so that dev-accounts.json works from any directory
    passwordFile = join(resolve(o.home), "dev-password");
    await writePrivate(passwordFile, `${password}\n`);
  }
  if (!password)
    throw new CustosError(
      "NO_PASSWORD",
      "the node key needs a password: use --password-file FILE or CUSTOS_PASSWORD",
    );

  const node = generateKeyPair();
  await writeKeystoreFile(nodeKeyFile, await encryptKeystore(node.privateKey, password, kdf));
  const p2p = generateP2pKey();
  await writeKeystoreFile(join(o.home, "keys", "p2p.json"), await encryptP2pKeystore(p2p, password, kdf));
  const config: Record<string, unknown> = {
    rpc: { listen: o.rpcListen ?? "127.0.0.1:8545" },
    nodeKey: { file: "keys/node.json", ...(passwordFile ? { passwordFile: "dev-password" } : {}) },
    p2pKey: { file: "keys/p2p.json" },
  };
  await writePrivate(paths.config, `${JSON.stringify(config, null, 2)}\n`);
  const result: InitResult = {
    home: o.home,
    chainId: o.chainId ?? "custos-dev",
    nodeAddress: node.address,
    nodePublicKey: Buffer.from(node.publicKey).toString("hex"),
    peerId: p2p.peerId,
    genesisFile: o.dev ? paths.genesis : null,
    ...(passwordFile ? { passwordFile } : {}),
  };
  if (!o.dev) return result;

  const accounts: DevAccount[] = [];
  const members: { name: string; pair: Sm2KeyPair; role: Role; tier: EcnyTier }[] = [];
  for (const m of DEV_MEMBERS) {
    const pair = generateKeyPair();
    const keyFile = join(resolve(o.home), "keys", `${m.name}.json`);
    await writeKeystoreFile(keyFile, await encryptKeystore(pair.privateKey, password, kdf));
    members.push({ name: m.name, pair, role: m.role, tier: m.tier });
    accounts.push({ name: m.name, role: m.role, address: pair.address, keyFile });
  }
  const genesis: Genesis = parseGenesis({
    chainId: result.chainId,
    timestamp: Date.now(),
    blockLimitWindow: 600,
    consensus: {
      validators: [{ name: "validator-0", publicKey: result.nodePublicKey }],
      minBlockIntervalMs: 100,
      maxBlockTxs: 5000,
    },
    members: members.map((m) => ({
      name: m.name,
      publicKey: Buffer.from(m.pair.publicKey).toString("hex"),
      roles: [m.role],
      ecnyTier: m.tier,
    })),
    ecny: { tiers: DEV_TIERS, largeTxThreshold: "5000000" },
  });
  await writeFile(paths.genesis, `${JSON.stringify(genesisToJson(genesis), null, 2)}\n`, { flag: "wx" });
  await writeFile(
    join(o.home, "dev-accounts.json"),
    `${JSON.stringify({ chainId: genesis.chainId, passwordFile, accounts }, null, 2)}\n`,
    { flag: "wx" },
  );
  return { ...result, accounts };
}
