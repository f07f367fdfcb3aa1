import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode } from "@custos/codec";
import { generateKeyPair, generateP2pKey, type Sm2KeyPair, type VerifierPool } from "@custos/crypto";
import { type Genesis, parseGenesis, type Role, type SignedTx, signTx } from "@custos/types";
import { freePort, toHex, until as waitUntil } from "@custos/utils";
import { vi } from "vitest";
import { DEV_TIERS } from "../src/init.js";

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return {
    dir,
    // a ledger opened at `dir` keeps its head mark beside it, in `${dir}.head`
    cleanup: async () => {
      await rm(dir, { recursive: true, force: true });
      await rm(`${dir}.head`, { force: true });
    },
  };
}

export interface TestChain {
  genesis: Genesis;
  validator: Sm2KeyPair;
  /** Every validator's key (validator is the first). */
  validators: Sm2KeyPair[];
  keys: Record<string, Sm2KeyPair>;
}

/**
 * A genesis with members of each role (consumer-3 is tier 4; two committee members) and one
 * validator, or `validators` of them (with libp2p peer ids, as a multi-validator chain needs).
 */
export function testChain(o: { validators?: number } = {}): TestChain {
  const validators = Array.from({ length: o.validators ?? 1 }, () => generateKeyPair());
  const validator = validators[0] as Sm2KeyPair;
  const members: [string, Role, number][] = [
    ["operator", "operator", 1],
    ["regulator", "regulator", 1],
    ["merchant", "merchant", 1],
    ["consumer-1", "consumer", 2],
    ["consumer-3", "consumer", 4],
    ["committee-1", "committee", 1],
    ["committee-2", "committee", 1],
    ["bank", "institution", 1],
  ];
  const keys: Record<string, Sm2KeyPair> = { outsider: generateKeyPair() };
  for (const [name] of members) keys[name] = generateKeyPair();
  const genesis = parseGenesis({
    chainId: "custos-test",
    timestamp: 1_795_000_000_000,
    blockLimitWindow: 600,
    consensus: {
      validators: validators.map((v, i) => ({
        name: `v${i}`,
        publicKey: toHex(v.publicKey),
        ...(validators.length > 1 ? { peerId: generateP2pKey().peerId } : {}),
      })),
      minBlockIntervalMs: 0,
      maxBlockTxs: 1000,
    },
    members: members.map(([name, role, tier]) => ({
      name,
      publicKey: toHex((keys[name] as Sm2KeyPair).publicKey),
      roles: [role],
      ecnyTier: tier,
    })),
    ecny: { tiers: DEV_TIERS, largeTxThreshold: "5000000" },
  });
  return { genesis, validator, validators, keys };
}

let nonce = 0;
export function tx(
  chain: TestChain,
  from: string,
  method: string,
  args: unknown[],
  over: { blockLimit?: number; to?: string } = {},
): SignedTx {
  const n = new Uint8Array(16);
  new DataView(n.buffer).setUint32(0, ++nonce);
  new DataView(n.buffer).setUint32(4, Math.floor(Math.random() * 2 ** 32));
  const key = chain.keys[from] as Sm2KeyPair;
  return signTx(
    {
      version: 1,
      chainId: chain.genesis.chainId,
      nonce: n,
      blockLimit: over.blockLimit ?? 100,
      sender: key.publicKey,
      to: over.to ?? "ecny",
      method,
      args: encode(args),
      value: 0n,
      memo: null,
    },
    key.privateKey,
  );
}

/** Polls until `pred` holds; throws after `ms`. */
export const until = (pred: () => Promise<boolean> | boolean, ms = 20_000): Promise<true> =>
  waitUntil(pred, { timeoutMs: ms, everyMs: 20 }) as Promise<true>;

export { freePort };

/**
 * Two PbftDrivers of one process wired to each other (n = 2): messages go to the other one on
 * the next turn, and a transaction a driver lacks is served from the other's pool, as the sync
 * protocol's txs request is. `serve` replaces that pool lookup (a test that forges what it serves).
 */
export function pairTransport(
  drivers: () => {
    driver: { receive(b: Uint8Array, from: number): void };
    pool: { get(h: Uint8Array): SignedTx | undefined };
  }[],
  index: number,
  serve?: (from: number, hashes: Uint8Array[]) => SignedTx[],
) {
  return {
    send: (e: { type: "broadcast" | "send"; bytes: Uint8Array; to?: number }) => {
      const to = e.type === "send" ? [e.to as number] : [1 - index];
      for (const j of to) setImmediate(() => drivers()[j]?.driver.receive(e.bytes, index));
    },
    penalize: () => {},
    fetchTxs: async (hashes: Uint8Array[], from: number) =>
      serve
        ? serve(from, hashes)
        : hashes.flatMap((h) => {
            const t = drivers()[from]?.pool.get(h);
            return t ? [t] : [];
          }),
  };
}

/**
 * Holds signature checks on `verifier` until `release()`: the next one (`once`) or all of them.
 * `calls` counts the checks asked for; `restore` releases and puts the real method back.
 */
export function holdVerifications(
  verifier: VerifierPool,
  o: { once?: boolean } = {},
): { calls: () => number; release: () => void; restore: () => void } {
  const verify = verifier.verify.bind(verifier);
  let release = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const held = async (...args: Parameters<VerifierPool["verify"]>) => {
    await gate;
    return verify(...args);
  };
  const spy = vi.spyOn(verifier, "verify");
  if (o.once) spy.mockImplementationOnce(held);
  else spy.mockImplementation(held);
  return {
    calls: () => spy.mock.calls.length,
    release: () => release(),
    restore: () => {
      release();
      spy.mockRestore();
    },
  };
}
