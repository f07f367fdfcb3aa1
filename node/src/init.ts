import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { encryptKeystore, generateKeyPair, p2pKeyFromNodeKey, writeKeystoreFile } from "@custos/crypto";
import { genesisToJson } from "@custos/types";
import { CustosError } from "@custos/utils";
import { homePaths } from "./config.js";
import { createDevMembers, type DevAccount, devGenesis } from "./devChain.js";

export { DEV_CHAIN, DEV_MEMBERS, DEV_TIERS, type DevAccount } from "./devChain.js";

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

export interface InitResult {
  home: string;
  chainId: string;
  nodeAddress: string;
  nodePublicKey: string;
  /** libp2p peer id of the node: of the Ed25519 key derived from its SM2 node key. */
  peerId: string;
  /** The genesis file written (dev homes); null without --dev: the chain's genesis goes there later. */
  genesisFile: string | null;
  passwordFile?: string;
  accounts?: DevAccount[];
}

const exists = async (path: string): Promise<boolean> => existsSync(path);

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
  // one secret per node: the libp2p key is derived from the SM2 node key
  const p2p = p2pKeyFromNodeKey(node.privateKey);
  const config: Record<string, unknown> = {
    rpc: { listen: o.rpcListen ?? "127.0.0.1:8545" },
    nodeKey: { file: "keys/node.json", ...(passwordFile ? { passwordFile: "dev-password" } : {}) },
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

  const { accounts, members } = await createDevMembers(join(resolve(o.home), "keys"), password, kdf);
  const genesis = devGenesis({
    chainId: result.chainId,
    validators: [{ name: "validator-0", publicKey: result.nodePublicKey }],
    members,
  });
  await writeFile(paths.genesis, `${JSON.stringify(genesisToJson(genesis), null, 2)}\n`, { flag: "wx" });
  await writeFile(
    join(o.home, "dev-accounts.json"),
    `${JSON.stringify({ chainId: genesis.chainId, passwordFile, accounts }, null, 2)}\n`,
    { flag: "wx" },
  );
  return { ...result, accounts };
}
