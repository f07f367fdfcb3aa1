import { join } from "node:path";
import { encode } from "@custos/codec";
import { generateKeyPair, type Sm2KeyPair, sm2Sign } from "@custos/crypto";
import { buildBlock, commitOf, Executor, openChainLedger } from "@custos/node";
import {
  CERT_VERSION,
  commitVoteBytes,
  type Genesis,
  parseGenesis,
  quorumSize,
  type SignedTx,
  signTx,
  TX_VERSION,
} from "@custos/types";
import { nullLogger, toHex } from "@custos/utils";

export type BenchLedger = Awaited<ReturnType<typeof openChainLedger>>;

/** A real chain in `dir` for benchmarks: the node's builder, executor and LevelDB ledger. */
export interface BenchChain {
  genesis: Genesis;
  ledger: BenchLedger;
  /** An e-CNY call signed by `key`, valid for the next blocks. */
  tx(key: Sm2KeyPair, method: string, args: unknown[]): SignedTx;
  /** Builds the next block of `txs` (executed, with its roots), certifies it by a quorum and commits it. */
  commit(txs: SignedTx[]): Promise<void>;
}

/** Members are tier-1 e-CNY holders with limits far above any benchmark's load. */
export async function benchChain(o: {
  dir: string;
  chainId: string;
  validators: number;
  members: { name: string; key: Sm2KeyPair; roles: string[] }[];
}): Promise<BenchChain> {
  const validatorKeys = Array.from({ length: o.validators }, () => generateKeyPair());
  const genesis = parseGenesis({
    chainId: o.chainId,
    timestamp: Date.UTC(2026, 4, 1),
    blockLimitWindow: 600,
    consensus: {
      validators: validatorKeys.map((k, i) => ({
        name: `v${i}`,
        publicKey: toHex(k.publicKey),
        peerId: `12D3KooW${"ABCDEFGHJKLMNPQRSTUV"[i % 20]?.repeat(44)}`,
      })),
      minBlockIntervalMs: 0,
      maxBlockTxs: 50_000,
    },
    members: o.members.map((m) => ({
      name: m.name,
      publicKey: toHex(m.key.publicKey),
      roles: m.roles,
      ecnyTier: 1,
    })),
    ecny: {
      tiers: Object.fromEntries(
        [1, 2, 3, 4].map((t) => [t, { singleLimit: "1000000000000", dailyLimit: "1000000000000" }]),
      ),
      largeTxThreshold: "5000000",
    },
  });
  const ledger = await openChainLedger(join(o.dir, "ledger"), genesis, nullLogger);
  const executor = new Executor(genesis, nullLogger);
  const quorum = validatorKeys.slice(0, quorumSize(validatorKeys.length));
  let nonce = 0;
  return {
    genesis,
    ledger,
    tx(key, method, args) {
      const n = new Uint8Array(16);
      new DataView(n.buffer).setUint32(0, ++nonce);
      return ecnyTx(genesis.chainId, key, n, ledger.head.height + 10, method, args);
    },
    commit: (txs) =>
      commitCertified({ genesis, ledger, executor, signers: quorum, txs, proposer: 0, timestampStep: 1000 }),
  };
}

/** An e-CNY call signed by `key`, valid up to block `blockLimit`. */
export function ecnyTx(
  chainId: string,
  key: Sm2KeyPair,
  nonce: Uint8Array,
  blockLimit: number,
  method: string,
  args: unknown[],
): SignedTx {
  return signTx(
    {
      version: TX_VERSION,
      chainId,
      nonce,
      blockLimit,
      sender: key.publicKey,
      to: "ecny",
      method,
      args: encode(args),
      value: 0n,
      memo: null,
    },
    key.privateKey,
  );
}

/**
 * Builds the block after `ledger`'s head from `txs` with the code a proposer uses (executed, with
 * its roots), has validators 0, 1, ... sign its Commit with `signers` (a quorum of them is what
 * consensus would have produced) and commits it.
 */
export async function commitCertified(o: {
  genesis: Genesis;
  ledger: BenchLedger;
  executor: Executor;
  signers: readonly Sm2KeyPair[];
  txs: SignedTx[];
  proposer: number;
  /** The block's timestamp after its parent's, ms. */
  timestampStep: number;
}): Promise<void> {
  const head = o.ledger.head;
  const built = await buildBlock(o.genesis.chainId, head, o.txs, {
    timestamp: head.header.timestamp + o.timestampStep,
    proposer: o.proposer,
    view: 0,
    executor: o.executor,
    state: o.ledger,
  });
  const { height, view } = built.block.header;
  const msg = commitVoteBytes(o.genesis.chainId, height, view, built.block.hash);
  await o.ledger.commit(
    commitOf(built, {
      version: CERT_VERSION,
      chainId: o.genesis.chainId,
      height,
      view,
      blockHash: built.block.hash,
      signatures: o.signers.map((k, validator) => ({ validator, signature: sm2Sign(k.privateKey, msg) })),
    }),
  );
}
