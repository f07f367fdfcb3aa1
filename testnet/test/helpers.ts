import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CustosClient } from "@custos/client";
import { loadKeystoreFile, type Sm2KeyPair } from "@custos/crypto";
import { until as waitUntil } from "@custos/utils";
import * as testnet from "../src/index.js";

/** How the tests run nodes: the built CLI under this Node. */
export const CLI = [process.execPath, new URL("../../cli/bin/custos.js", import.meta.url).pathname];

export const until = (pred: () => Promise<boolean> | boolean, ms = 30_000): Promise<true> =>
  waitUntil(pred, { timeoutMs: ms, everyMs: 100 }) as Promise<true>;

export interface RunningTestnet {
  dir: string;
  t: testnet.TestnetFile;
  password: string;
  /** One client per node, in testnet.json order. */
  clients: CustosClient[];
  /** The demo members' keys by name. */
  keys: Map<string, Sm2KeyPair>;
  /** Stops every node and removes the directory (kept with KEEP_TMP=1). */
  stop(): Promise<void>;
}

/** A testnet of 4 validator processes and 1 observer in a new temporary directory. */
export async function startTestnet(prefix: string, spareNodes = 0): Promise<RunningTestnet> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const t = await testnet.up({
    dir,
    nodes: 4,
    observers: 1,
    basePort: await testnet.freeBasePort(5 + spareNodes),
    command: CLI,
    blockIntervalMs: 50,
  });
  const password = readFileSync(t.passwordFile, "utf8").trim();
  const keys = new Map<string, Sm2KeyPair>();
  for (const a of t.accounts) keys.set(a.name, await loadKeystoreFile(a.keyFile, password));
  return {
    dir,
    t,
    password,
    clients: t.nodes.map((n) => new CustosClient(n.rpc)),
    keys,
    stop: async () => {
      await testnet.down(dir).catch(() => {});
      if (!process.env.KEEP_TMP) await rm(dir, { recursive: true, force: true });
    },
  };
}
