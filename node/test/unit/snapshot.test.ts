import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { decode, encode } from "@custos/codec";
import { generateKeyPair, generateP2pKey, type Sm2KeyPair, sm2Sign } from "@custos/crypto";
import { commitVoteBytes, type SignedTx } from "@custos/types";
import { isCustosError, nullLogger, toHex } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import { buildBlock, commitOf } from "../../src/chain/blockBuilder.js";
import { chainLedgerSpec, openChainLedger } from "../../src/chain/openLedger.js";
import type { SyncNetwork } from "../../src/chain/sync.js";
import { type SnapshotSource, serveSync } from "../../src/chain/syncProtocol.js";
import { Executor } from "../../src/execution/executor.js";
import type { Ledger } from "../../src/ledger/ledger.js";
import type { NetworkPeer } from "../../src/p2p/network.js";
import { joinFromSnapshot } from "../../src/snapshot/join.js";
import {
  chunkDigest,
  decodeChunk,
  decodeSnapshotMeta,
  encodeChunk,
  encodeSnapshotMeta,
  verifySnapshotMeta,
} from "../../src/snapshot/snapshot.js";
import { SnapshotStore } from "../../src/snapshot/store.js";
import { tempDir, testChain, tx } from "../helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const chain = testChain();
const newValidator: Sm2KeyPair = generateKeyPair();

async function dir(name: string): Promise<string> {
  const t = await tempDir(`custos-snap-${name}-`);
  cleanups.push(t.cleanup);
  return t.dir;
}

async function open(d: string): Promise<Ledger> {
  const l = await openChainLedger(d, chain.genesis, nullLogger);
  cleanups.push(() => l.close());
  return l;
}

/** Commits `txs` as the next block, certified by every validator of the head's set. */
async function commit(ledger: Ledger, txs: SignedTx[]): Promise<void> {
  const head = ledger.head;
  const built = await buildBlock(chain.genesis.chainId, head, txs, {
    timestamp: head.header.timestamp + 1,
    proposer: 0,
    view: 0,
    executor: new Executor(chain.genesis, nullLogger),
    state: ledger,
  });
  const h = built.block.header.height;
  const vote = commitVoteBytes(chain.genesis.chainId, h, 0, built.block.hash);
  const keys = head.validators.map((v) =>
    toHex(v.publicKey) === toHex(chain.validator.publicKey) ? chain.validator : newValidator,
  );
  await ledger.commit(
    commitOf(built, {
      version: 1,
      chainId: chain.genesis.chainId,
      height: h,
      view: 0,
      blockHash: built.block.hash,
      signatures: keys.map((k, validator) => ({ validator, signature: sm2Sign(k.privateKey, vote) })),
    }),
  );
}

const peer = (index: number): NetworkPeer => ({ index, peerId: `p${index}`, addrs: [], role: "validator" });

/** Peers that answer from `sources` (by index) through the real serving code. */
function network(source: Ledger, stores: SnapshotSource[]) {
  let connected = stores.map((_, i) => i);
  const disconnected: number[] = [];
  const net: SyncNetwork = {
    connectedPeers: () => connected.map(peer),
    disconnect: async (i) => {
      disconnected.push(i);
      connected = connected.filter((x) => x !== i);
    },
    request: async (i, req, maxFrames) => {
      const frames: Uint8Array[] = [];
      for await (const f of serveSync(source, req, undefined, stores[i])) frames.push(f);
      if (frames.length > maxFrames) throw new Error("too many frames");
      return frames;
    },
  };
  return { net, disconnected };
}

describe("state snapshots", () => {
  let source: Ledger;
  let store: SnapshotStore;

  it("a snapshot carries a validator-set change and the replay window, and starts a ledger with the same state", async () => {
    source = await open(await dir("source"));
    await commit(source, [
      tx(chain, "operator", "issue", [chain.keys.merchant?.address, 10_000_000n, "snap-1"]),
    ]);
    // governance adds a second validator at block 3: later blocks are certified by both
    await commit(source, [
      tx(
        chain,
        "committee-1",
        "propose",
        [
          "validator.add",
          JSON.stringify({
            name: "v1",
            publicKey: toHex(newValidator.publicKey),
            peerId: generateP2pKey().peerId,
            p2p: ["/ip4/127.0.0.1/tcp/1"],
          }),
        ],
        { to: "governance" },
      ),
    ]);
    await commit(source, [tx(chain, "committee-2", "vote", [1, true], { to: "governance" })]);
    expect(source.head.validators.length).toBe(2);
    let replayable: SignedTx | undefined;
    for (let i = 0; i < 20; i++) {
      const t = tx(chain, "merchant", "transfer", [chain.keys.operator?.address, BigInt(i + 1)], {
        blockLimit: 200,
      });
      if (i === 19) replayable = t;
      await commit(source, [t]);
    }
    store = await new SnapshotStore(
      await dir("store"),
      { interval: 0, keep: 2 },
      source,
      chain.genesis.chainId,
      nullLogger,
    ).open();
    const taken = await store.take();
    expect(taken.height).toBe(source.head.height);

    const meta = decodeSnapshotMeta(store.metaBytes(taken.height) as Uint8Array);
    expect(meta.setChanges.map((c) => c.height)).toEqual([3]);
    expect(meta.window.length).toBe(taken.height - 1);
    const verified = verifySnapshotMeta(chain.genesis, meta, (await import("@custos/crypto")).sm2Verify);
    expect(verified.validators.length).toBe(2);

    const target = join(await dir("target"), "ledger");
    const { net, disconnected } = network(source, [store]);
    const joined = await joinFromSnapshot({
      genesis: chain.genesis,
      ledger: chainLedgerSpec(target, chain.genesis, nullLogger),
      net,
      log: nullLogger,
      signal: new AbortController().signal,
      waitMs: 1000,
    });
    expect(disconnected).toEqual([]);
    expect(joined.height).toBe(taken.height);
    const copy = await open(target);
    expect(copy.head.height).toBe(source.head.height);
    expect(toHex(copy.head.hash)).toBe(toHex(source.head.hash));
    expect(copy.base).toBe(taken.height);
    expect(copy.head.validators.map((v) => toHex(v.publicKey))).toEqual(
      source.head.validators.map((v) => toHex(v.publicKey)),
    );
    // the same state, entry by entry
    const all = async (l: Ledger) => {
      const out: string[] = [];
      for await (const [k, v] of l.stateEntries()) out.push(`${toHex(k)}=${toHex(v)}`);
      return out;
    };
    expect(await all(copy)).toEqual(await all(source));
    // a transaction of a block below the snapshot is still known as committed (no replay)
    expect(copy.isRecentlyCommitted((replayable as SignedTx).hash)).toBe(true);
    // blocks below the snapshot are not held; the chain goes on from it
    expect(await copy.getBlock(5)).toBeUndefined();
    const next = tx(chain, "merchant", "transfer", [chain.keys.operator?.address, 7n], { blockLimit: 200 });
    await commit(source, [next]);
    const frames: Uint8Array[] = [];
    for await (const f of serveSync(source, encode([1, "blocks", BigInt(copy.head.height + 1), 1])))
      frames.push(f);
    const [blockBytes] = decode(frames[0] as Uint8Array, "t", 1 << 22) as [Uint8Array];
    expect(blockBytes.byteLength).toBeGreaterThan(0);
    await commit(copy, [next]);
    expect(toHex(copy.head.hash)).toBe(toHex(source.head.hash));
    // and it can take and serve a snapshot of its own (its window came with the snapshot)
    const again = await new SnapshotStore(
      await dir("again"),
      { interval: 0, keep: 1 },
      copy,
      chain.genesis.chainId,
      nullLogger,
    ).open();
    expect((await again.take()).height).toBe(copy.head.height);
  });

  it("a peer whose snapshot state does not match the certified root is disconnected; the next peer's is used", async () => {
    const h = store.heights()[0] as number;
    const honest = store;
    // the forger keeps a valid certificate and window but changes a state value, recomputing the chunk digest
    const meta = decodeSnapshotMeta(honest.metaBytes(h) as Uint8Array);
    const chunk0 = decodeChunk((await honest.chunk(h, 0)) as Uint8Array);
    const [k, v] = chunk0[chunk0.length - 1] as [Uint8Array, Uint8Array];
    chunk0[chunk0.length - 1] = [k, Uint8Array.from(v, (b, i) => (i === v.length - 1 ? b ^ 1 : b))];
    const forgedChunk = encodeChunk(chunk0);
    const forgedMeta = encodeSnapshotMeta({
      ...meta,
      chunks: [chunkDigest(forgedChunk), ...meta.chunks.slice(1)],
    });
    const forger: SnapshotSource = {
      heights: () => [h],
      metaBytes: () => forgedMeta,
      chunk: async (height, i) => (i === 0 ? forgedChunk : honest.chunk(height, i)),
    };
    // a meta whose certificate does not verify
    const badCert = Uint8Array.from(meta.certificate);
    badCert[badCert.length - 2] = (badCert[badCert.length - 2] as number) ^ 1;
    const certForger: SnapshotSource = {
      ...forger,
      metaBytes: () => encodeSnapshotMeta({ ...meta, certificate: badCert }),
    };

    const target = join(await dir("forged"), "ledger");
    const { net, disconnected } = network(source, [forger, certForger, honest]);
    const joined = await joinFromSnapshot({
      genesis: chain.genesis,
      ledger: chainLedgerSpec(target, chain.genesis, nullLogger),
      net,
      log: nullLogger,
      signal: new AbortController().signal,
      waitMs: 1000,
    });
    expect(disconnected).toEqual([0, 1]);
    expect(joined.peer).toBe(2);
    expect(existsSync(`${target}.importing`)).toBe(false);

    // with only the forger, nothing is created and the reason is given
    const lonely = join(await dir("lonely"), "ledger");
    const only = network(source, [forger]);
    const err = await joinFromSnapshot({
      genesis: chain.genesis,
      ledger: chainLedgerSpec(lonely, chain.genesis, nullLogger),
      net: only.net,
      log: nullLogger,
      signal: new AbortController().signal,
      waitMs: 1000,
    }).catch((e) => e);
    expect(isCustosError(err, "SNAPSHOT_UNAVAILABLE")).toBe(true);
    expect(String(err.message)).toMatch(/not the state block/);
    expect(only.disconnected).toEqual([0]);
    expect(existsSync(lonely)).toBe(false);
    // the forged state was written aside and checked there: nothing of it is left behind
    expect(existsSync(`${lonely}.importing`)).toBe(false);
    expect(existsSync(dirname(lonely))).toBe(true);
  });

  it("a validator prunes blocks below what it keeps; the window and the head stay", async () => {
    const d = await dir("prune");
    const l = await open(d);
    await commit(l, [tx(chain, "operator", "issue", [chain.keys.merchant?.address, 1000n, "p"])]);
    for (let i = 0; i < 30; i++)
      await commit(l, [
        tx(chain, "merchant", "transfer", [chain.keys.operator?.address, 1n], { blockLimit: 200 }),
      ]);
    let pruned = 0;
    for (let n = await l.prune(10, 8); n > 0; n = await l.prune(10, 8)) pruned += n;
    expect(pruned).toBe(20);
    expect(l.base).toBe(21);
    expect(await l.getBlock(20)).toBeUndefined();
    expect(await l.getBlock(21)).toBeDefined();
    expect(await l.getBlock(0)).toBeDefined();
    const frames: Uint8Array[] = [];
    for await (const f of serveSync(l, encode([1, "head"]))) frames.push(f);
    expect((decode(frames[0] as Uint8Array, "t", 256) as unknown[])[2]).toBe(21n);
  });
});
