import { randomBytes } from "node:crypto";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { p2pKeyFromNodeKey, type Sm2KeyPair } from "@custos/crypto";
import { toHex, until } from "@custos/utils";
import { privateKeyFromRaw } from "@libp2p/crypto/keys";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p, type Libp2p } from "libp2p";
import { afterAll, describe, expect, it } from "vitest";
import { HANDSHAKE_MAX_BODY, Initiator, type RekeyLimits, type SmSecure, smSecure } from "../../src/index.js";
import { fixedKeyPair, identityOf, prng } from "../helpers.js";
import { handshakeFrame, RawConnection, rawHandshake, selectProtocol } from "../rawPeer.js";

/**
 * The encrypter inside real libp2p nodes over TCP on 127.0.0.1 (kernel-chosen ports): yamux
 * streams and ping over it, key updates under load, refusals of keys outside the sets, of a
 * mismatched peer id and of noise, and a seeded stream of misbehaving raw TCP peers.
 */
const CHAIN = "custos-libp2p-test";
const A = fixedKeyPair("node a");
const B = fixedKeyPair("node b");
const C = fixedKeyPair("node c");
const OUTSIDER = fixedKeyPair("outsider");
const peerIdOf = (k: Sm2KeyPair) => p2pKeyFromNodeKey(k.privateKey).peerId;

interface TestNode {
  node: Libp2p;
  port: number;
  peerId: string;
  refused: string[];
  encrypter?: SmSecure;
}

const started: Libp2p[] = [];
afterAll(async () => {
  await Promise.all(started.map((n) => n.stop()));
});

async function startNode(
  key: Sm2KeyPair,
  o: {
    allowed?: Sm2KeyPair[];
    rekey?: Partial<RekeyLimits>;
    handshakeTimeoutMs?: number;
    noise?: boolean;
  } = {},
): Promise<TestNode> {
  const table = new Map((o.allowed ?? [A, B, C]).map((k) => [toHex(k.publicKey), peerIdOf(k)]));
  const p2p = p2pKeyFromNodeKey(key.privateKey);
  const refused: string[] = [];
  const t: Partial<TestNode> = { refused };
  const node = await createLibp2p({
    privateKey: privateKeyFromRaw(new Uint8Array([...p2p.seed, ...p2p.publicKey])),
    addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
    transports: [tcp()],
    connectionEncrypters: o.noise
      ? [noise()]
      : [
          smSecure(
            {
              chainId: CHAIN,
              identity: identityOf(key),
              peerIdOf: (k) => table.get(toHex(k)),
              ...(o.rekey ? { rekey: o.rekey } : {}),
              ...(o.handshakeTimeoutMs ? { handshakeTimeoutMs: o.handshakeTimeoutMs } : {}),
              onRefused: (e) => refused.push(e.code),
            },
            (e) => {
              t.encrypter = e;
            },
          ),
        ],
    streamMuxers: [yamux()],
    services: { ping: ping() },
    // the raw peers below come quickly from one address; libp2p allows 5 a second by default
    connectionManager: { inboundConnectionThreshold: 1000, inboundUpgradeTimeout: 2000 },
  });
  started.push(node);
  await node.handle("/echo/1.0.0", async (stream) => {
    for await (const chunk of stream) if (!stream.send(chunk)) await stream.onDrain();
    await stream.close();
  });
  const port = Number(
    node
      .getMultiaddrs()[0]
      ?.toString()
      .match(/\/tcp\/(\d+)/)?.[1],
  );
  return Object.assign(t, { node, port, peerId: node.peerId.toString() }) as TestNode;
}

const addr = (n: TestNode, peerId = n.peerId) => multiaddr(`/ip4/127.0.0.1/tcp/${n.port}/p2p/${peerId}`);

async function echo(from: TestNode, to: TestNode, data: Uint8Array): Promise<Buffer> {
  const s = await from.node.dialProtocol(addr(to), "/echo/1.0.0");
  const back: Buffer[] = [];
  const reading = (async () => {
    for await (const c of s) back.push(Buffer.from(c instanceof Uint8Array ? c : c.subarray()));
  })();
  for (let at = 0; at < data.byteLength; at += 50_000) {
    if (!s.send(data.subarray(at, at + 50_000))) await s.onDrain();
  }
  await s.close();
  await reading;
  return Buffer.concat(back);
}

describe("sm-secure inside libp2p", () => {
  it("carries yamux streams both ways, updates its keys under load, and answers ping", async () => {
    const rekey = { records: 7, bytes: 64 * 1024 };
    const a = await startNode(A, { rekey });
    const b = await startNode(B, { rekey });
    const data = new Uint8Array(randomBytes(3 * 1024 * 1024));
    expect((await echo(a, b, data)).equals(Buffer.from(data))).toBe(true);
    expect(await a.node.services.ping.ping(addr(b))).toBeGreaterThanOrEqual(0);
    const conn = a.node.getConnections()[0];
    expect(conn?.encryption).toBe("/custos/sm-secure/1.0.0");
    expect(conn?.remotePeer.toString()).toBe(peerIdOf(B));
    // 3 MiB each way at 64 KiB per key: dozens of key updates, each one followed by the other side
    expect(a.encrypter?.stats.keyUpdatesSent).toBeGreaterThan(40);
    // the last key update sent may still be on its way when the echo is done: every one arrives
    await until(
      () =>
        b.encrypter?.stats.keyUpdatesReceived === a.encrypter?.stats.keyUpdatesSent &&
        a.encrypter?.stats.keyUpdatesReceived === b.encrypter?.stats.keyUpdatesSent,
      { timeoutMs: 10_000, what: "every key update sent received on the other side" },
    );
    expect(b.encrypter?.stats.keyUpdatesReceived).toBe(a.encrypter?.stats.keyUpdatesSent);
    expect(a.encrypter?.stats.keyUpdatesReceived).toBe(b.encrypter?.stats.keyUpdatesSent);
    expect([...a.refused, ...b.refused]).toEqual([]);
  });

  it("a node whose SM2 key is not in the sets is refused in the handshake", async () => {
    const a = await startNode(A);
    const outsider = await startNode(OUTSIDER, { allowed: [A, B, C, OUTSIDER] });
    await expect(outsider.node.dial(addr(a))).rejects.toThrow();
    await until(() => a.refused.includes("SM_PEER_NOT_ALLOWED"), { timeoutMs: 10_000 });
    expect(a.node.getConnections()).toHaveLength(0);
    // and the other way: the outsider's key is refused by the dialler when it answers
    await expect(a.node.dial(addr(outsider))).rejects.toThrow();
    await until(() => a.refused.filter((c) => c === "SM_PEER_NOT_ALLOWED").length >= 2, {
      timeoutMs: 10_000,
    });
  });

  it("dialling a peer id that the sets bind to another key is refused (SM_PEER_MISMATCH)", async () => {
    const a = await startNode(A);
    const b = await startNode(B);
    // B's address, C's peer id: B proves B's key, which is not the one bound to C's peer id
    await expect(a.node.dial(addr(b, peerIdOf(C)))).rejects.toThrow();
    await until(() => a.refused.includes("SM_PEER_MISMATCH"), { timeoutMs: 10_000 });
  });

  it("noise and sm-secure do not meet: a noise peer is refused, and refuses", async () => {
    const a = await startNode(A);
    const n = await startNode(B, { noise: true });
    await expect(n.node.dial(addr(a))).rejects.toThrow();
    await expect(a.node.dial(addr(n))).rejects.toThrow();
    expect(a.node.getConnections()).toHaveLength(0);
    expect(n.node.getConnections()).toHaveLength(0);
  });

  it("replayed and tampered records from an authenticated peer are refused, the connection closed", async () => {
    const a = await startNode(A);
    const mss = new TextEncoder().encode("\x13/multistream/1.0.0\n");
    const replay = await RawConnection.open(a.port);
    expect(await selectProtocol(replay)).toBe(true);
    const r1 = await rawHandshake(replay, { chainId: CHAIN, identity: identityOf(B) });
    const first = r1.sealer.seal(mss);
    replay.write(Buffer.concat([first, first]));
    await replay.closed;
    await until(() => a.refused.includes("SM_RECORD_SEQUENCE"), { timeoutMs: 10_000 });

    const tamper = await RawConnection.open(a.port);
    expect(await selectProtocol(tamper)).toBe(true);
    const r2 = await rawHandshake(tamper, { chainId: CHAIN, identity: identityOf(B) });
    const rec = Uint8Array.from(r2.sealer.seal(mss));
    rec[14] = (rec[14] as number) ^ 0x20;
    tamper.write(rec);
    await tamper.closed;
    await until(() => a.refused.includes("SM_RECORD_MAC"), { timeoutMs: 10_000 });
    // the node is fine
    const b = await startNode(B);
    expect((await echo(b, a, new Uint8Array([1, 2, 3]))).equals(Buffer.from([1, 2, 3]))).toBe(true);
  });

  it("seeded raw TCP peers with garbage, truncated, oversized and bit-flipped handshakes: each closed, none lasting", async () => {
    const a = await startNode(A, { handshakeTimeoutMs: 1000 });
    const seed = Number(process.env.FUZZ_SEED ?? 1919);
    const r = prng(seed);
    const kinds = [
      "garbage",
      "oversized",
      "truncated",
      "bit-flipped",
      "flood",
      "bad-finish",
      "no-mss",
    ] as const;
    for (let c = 0; c < 28; c++) {
      const kind = kinds[c % kinds.length] as (typeof kinds)[number];
      const conn = await RawConnection.open(a.port);
      try {
        if (kind === "no-mss") {
          conn.write(r.bytes(1 + r.int(200)));
        } else {
          expect(await selectProtocol(conn)).toBe(true);
          const hello = new Initiator({
            chainId: CHAIN,
            identity: identityOf(B),
            authorize: () => {},
          }).hello();
          if (kind === "garbage") conn.write(handshakeFrame(r.bytes(1 + r.int(300))));
          else if (kind === "oversized") conn.write(new Uint8Array([0xff, 0xff, ...r.bytes(r.int(100))]));
          else if (kind === "truncated")
            conn.write(handshakeFrame(hello).subarray(0, 2 + r.int(hello.byteLength)));
          else if (kind === "flood") conn.write(new Uint8Array(70 * 1024).fill(0x03));
          else if (kind === "bit-flipped") {
            const bad = Uint8Array.from(hello);
            const i = 1 + r.int(bad.byteLength - 1);
            bad[i] = (bad[i] as number) ^ (1 << r.int(8));
            conn.write(handshakeFrame(bad));
            // a flip the responder cannot see yet (E_I on the curve by chance, S_I, chain tag): it answers; a finish with junk ends it
            conn.write(handshakeFrame(new Uint8Array([3, ...r.bytes(96)])));
          } else {
            conn.write(handshakeFrame(hello));
            conn.write(handshakeFrame(new Uint8Array([3, ...r.bytes(96)])));
          }
        }
        const closedInTime = await Promise.race([
          conn.closed.then(() => true),
          new Promise<boolean>((res) => setTimeout(() => res(false), 15_000)),
        ]);
        expect(closedInTime, `seed ${seed} case ${c} (${kind}) was left open`).toBe(true);
      } finally {
        conn.destroy();
      }
    }
    for (const code of [
      "SM_HANDSHAKE_MALFORMED",
      "SM_HANDSHAKE_TOO_LARGE",
      "SM_HANDSHAKE_TIMEOUT",
      "SM_BAD_FINISHED",
    ])
      expect(a.refused, code).toContain(code);
    expect(a.node.getConnections()).toHaveLength(0);
    expect(HANDSHAKE_MAX_BODY).toBeLessThan(0xffff);
    // still serving honest peers
    const b = await startNode(B);
    expect((await echo(b, a, new Uint8Array([4, 5]))).equals(Buffer.from([4, 5]))).toBe(true);
  }, 120_000);
});
