import { decode, encode } from "@custos/codec";
import { sm2Sign, VerifierPool } from "@custos/crypto";
import { commitVoteBytes } from "@custos/types";
import { nullLogger, toHex } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import { buildBlock, commitOf } from "../../src/chain/blockBuilder.js";
import { SerialWriter } from "../../src/chain/chainWriter.js";
import { openChainLedger } from "../../src/chain/openLedger.js";
import { BlockSync, type SyncNetwork } from "../../src/chain/sync.js";
import { Executor } from "../../src/execution/executor.js";
import type { Ledger } from "../../src/ledger/ledger.js";
import type { NetworkPeer } from "../../src/p2p/network.js";
import { tempDir, testChain, tx, until } from "../helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

const chain = testChain();

async function ledgerAt(name: string): Promise<Ledger> {
  const t = await tempDir(`custos-sync-${name}-`);
  const l = await openChainLedger(t.dir, chain.genesis, nullLogger);
  cleanups.push(async () => {
    await l.close();
    await t.cleanup();
  });
  return l;
}

function syncFor(ledger: Ledger, verifier: VerifierPool, onFatal: (e: Error) => void = () => {}) {
  return new BlockSync({
    genesis: chain.genesis,
    ledger,
    executor: new Executor(chain.genesis, nullLogger),
    verifier,
    writer: new SerialWriter(),
    log: process.env.SYNC_DEBUG ? debugLogger : nullLogger,
    lagBlocks: 1,
    graceMs: 0,
    onApplied: () => {},
    onFatal,
  });
}

describe("block sync", () => {
  it("fetches certified ranges from honest peers, and disconnects a peer that serves a forged certificate or block", async () => {
    const verifier = new VerifierPool();
    cleanups.push(() => verifier.close());
    // the source: 300 blocks with their commit certificates (one validator: a quorum of one)
    const source = await ledgerAt("source");
    const executor = new Executor(chain.genesis, nullLogger);
    const issue = tx(chain, "operator", "issue", [chain.keys.merchant?.address, 10_000_000n, "rc-sync"], {
      blockLimit: 50,
    });
    for (let h = 1; h <= 300; h++) {
      const txs =
        h === 1
          ? [issue]
          : [tx(chain, "merchant", "transfer", [chain.keys.operator?.address, 1n], { blockLimit: h + 5 })];
      const built = await buildBlock(chain.genesis.chainId, source.head, txs, {
        timestamp: source.head.header.timestamp + 1,
        proposer: 0,
        view: 0,
        executor,
        state: source,
      });
      const vote = commitVoteBytes(chain.genesis.chainId, h, 0, built.block.hash);
      await source.commit(
        commitOf(built, {
          version: 1,
          chainId: chain.genesis.chainId,
          height: h,
          view: 0,
          blockHash: built.block.hash,
          signatures: [{ validator: 0, signature: sm2Sign(chain.validator.privateKey, vote) }],
        }),
      );
    }
    const server = syncFor(source, verifier);

    // peers 0 and 1 serve the truth; peer 2 flips a byte of every certificate's signature;
    // peer 3 serves blocks whose transactions were swapped (the certificate no longer matches)
    const peer = (index: number): NetworkPeer => ({
      index,
      peerId: `p${index}`,
      addrs: [],
      role: "validator",
    });
    let connected = [0, 1, 2, 3];
    const disconnected: number[] = [];
    const served = new Map<number, number>();
    const net: SyncNetwork = {
      connectedPeers: () => connected.map(peer),
      disconnect: async (i) => {
        disconnected.push(i);
        connected = connected.filter((x) => x !== i);
      },
      request: async (i, req, maxFrames) => {
        const frames: Uint8Array[] = [];
        for await (const f of server.serve(peer(i), req)) frames.push(f);
        if (frames.length > maxFrames) throw new Error("too many");
        served.set(i, (served.get(i) ?? 0) + frames.length);
        if ((decode(req, "t", 256) as unknown[])[1] === "head") return frames;
        if (i === 2)
          return frames.map((f) => {
            const [block, cert] = decode(f, "t", 1 << 20) as [Uint8Array, Uint8Array];
            const c = Uint8Array.from(cert);
            c[c.length - 3] = (c[c.length - 3] as number) ^ 1;
            return encode([block, c]);
          });
        if (i === 3)
          return frames.map((f, k) => {
            const [, cert] = decode(f, "t", 1 << 20) as [Uint8Array, Uint8Array];
            const other = decode(frames[(k + 1) % frames.length] as Uint8Array, "t", 1 << 20) as [
              Uint8Array,
              Uint8Array,
            ];
            return encode([other[0], cert]);
          });
        return frames;
      },
    };

    const target = await ledgerAt("target");
    const fatal: Error[] = [];
    const sync = syncFor(target, verifier, (e) => fatal.push(e));
    sync.start(net);
    try {
      await until(() => target.head.height === 300, 30_000);
    } finally {
      await sync.stop();
    }
    expect(fatal).toEqual([]);
    expect(toHex(target.head.hash)).toBe(toHex(source.head.hash));
    expect(toHex(target.head.header.stateRoot)).toBe(toHex(source.head.header.stateRoot));
    expect(sync.applied).toBe(300);
    expect(disconnected.sort()).toEqual([2, 3]);
    expect((served.get(0) ?? 0) + (served.get(1) ?? 0)).toBeGreaterThanOrEqual(300);
    expect(served.get(0)).toBeGreaterThan(1); // ranges went to both honest peers
    expect(served.get(1)).toBeGreaterThan(1);
    for (const h of [1, 150, 300])
      expect(toHex((await target.getCertificateBytes(h)) as Uint8Array)).toBe(
        toHex((await source.getCertificateBytes(h)) as Uint8Array),
      );
  }, 60_000);

  it("a malformed request costs the asker its connection (SYNC_BAD_REQUEST)", async () => {
    const verifier = new VerifierPool();
    cleanups.push(() => verifier.close());
    const s = syncFor(await ledgerAt("bad"), verifier);
    const peer: NetworkPeer = { index: 0, peerId: "p", addrs: [], role: "validator" };
    for (const req of [
      new Uint8Array([0xc1]),
      encode([1, "blocks", 0n, 5]),
      encode([1, "blocks", 1n, 100000]),
      encode([2, "head"]),
    ]) {
      const it = s.serve(peer, req);
      await expect(it.next()).rejects.toMatchObject({ code: "SYNC_BAD_REQUEST" });
    }
  });
});
const debugLogger: import("@custos/utils").Logger = {
  trace: () => {},
  debug: (m, f) => console.log("debug", m, JSON.stringify(f)),
  info: (m, f) => console.log("info", m, JSON.stringify(f)),
  warn: (m, f) => console.log("warn", m, JSON.stringify(f)),
  error: (m, f) => console.log("error", m, JSON.stringify(f)),
  child: () => debugLogger,
};
