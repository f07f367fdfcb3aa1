import { YamuxStream } from "@chainsafe/libp2p-yamux/stream";
import { generateP2pKey } from "@custos/crypto";
import { CustosError, freeListenPort, nullLogger } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import { HEALTH_REQUEST } from "../../src/health.js";
import {
  Channel,
  CONSENSUS_PROTOCOL,
  CONSENSUS_TXS_PROTOCOL,
  HEALTH_PROTOCOL,
  P2pNetwork,
  SYNC_PROTOCOL,
} from "../../src/p2p/network.js";
import { yamuxWindowPolicy } from "../../src/p2p/yamuxWindow.js";
import { until } from "../helpers.js";

const keys = [generateP2pKey(), generateP2pKey(), generateP2pKey()];
const nets: P2pNetwork[] = [];
afterAll(async () => {
  await Promise.all(nets.map((n) => n.stop()));
});

/** `count` validators that all know each other, on free ports (started by the test). */
async function validatorNetworks(count: number): Promise<P2pNetwork[]> {
  const ports = await Promise.all(Array.from({ length: count }, () => freeListenPort()));
  const peers = ports.map((port, i) => ({
    index: i,
    peerId: keys[i]?.peerId as string,
    addrs: [`/ip4/127.0.0.1/tcp/${port}`],
    role: "validator" as const,
  }));
  const out = peers.map(
    (p, i) =>
      new P2pNetwork(
        { seed: keys[i]?.seed as Uint8Array, listen: p.addrs, peers, maxMessageBytes: 4096 },
        nullLogger,
      ),
  );
  nets.push(...out);
  return out;
}

describe("libp2p between permissioned nodes", () => {
  it("members exchange framed messages; an outsider is refused; an oversized frame costs the sender its connection", async () => {
    const MAX = 1024;
    // a and b know each other; c knows them but nobody lists c
    const [pa, pb] = [await freeListenPort(), await freeListenPort()];
    const peers = [
      {
        index: 0,
        peerId: keys[0]?.peerId as string,
        addrs: [`/ip4/127.0.0.1/tcp/${pa}`],
        role: "validator" as const,
      },
      {
        index: 1,
        peerId: keys[1]?.peerId as string,
        addrs: [`/ip4/127.0.0.1/tcp/${pb}`],
        role: "validator" as const,
      },
    ];
    const net = (i: number, listen: string, list: typeof peers) =>
      new P2pNetwork(
        {
          seed: keys[i]?.seed as Uint8Array,
          listen: [listen],
          peers: list,
          maxMessageBytes: MAX,
          redialMs: 100,
        },
        nullLogger,
      );
    const a = net(0, peers[0]?.addrs[0] as string, peers);
    const b = net(1, peers[1]?.addrs[0] as string, peers);
    const c = net(2, "/ip4/127.0.0.1/tcp/0", [
      ...peers,
      { index: 2, peerId: keys[2]?.peerId as string, addrs: [], role: "validator" as const },
    ]);
    nets.push(a, b, c);
    const atB: [number, string][] = [];
    b.onMessage((_channel, from, bytes) => atB.push([from, new TextDecoder().decode(bytes)]));
    await Promise.all([a.start(), b.start(), c.start()]);
    expect(a.peerId).toBe(keys[0]?.peerId);
    await until(() => a.connected === 1 && b.connected === 1);
    for (let i = 0; i < 20; i++) a.broadcast(Channel.consensus, new TextEncoder().encode(`prepare ${i}`));
    await until(() => atB.length === 20);
    expect(atB).toEqual(Array.from({ length: 20 }, (_, i) => [0, `prepare ${i}`]));
    // c dials both and sends; the gaters close its connections before anything arrives
    for (let i = 0; i < 5; i++) {
      c.broadcast(Channel.consensus, new TextEncoder().encode("from an outsider"));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(atB.filter(([, m]) => m === "from an outsider")).toEqual([]);
    expect(b.connected).toBe(1);
    // a frame announcing more than the limit: b hangs up on a
    type Conn = {
      status: string;
      remotePeer: { toString(): string };
      newStream(p: string): Promise<{ send(b: Uint8Array): boolean }>;
    };
    const node = (a as unknown as { node: { getConnections(): Conn[] } }).node;
    const conn = node.getConnections().find((x) => x.remotePeer.toString() === keys[1]?.peerId);
    const raw = await conn?.newStream(CONSENSUS_PROTOCOL);
    const frame = new Uint8Array(8);
    new DataView(frame.buffer).setUint32(0, MAX + 1);
    raw?.send(frame);
    await until(() => conn?.status !== "open", 3000);
    expect(conn?.status).not.toBe("open"); // that connection is gone (b closed it)
    // and the redialler brings the members back together
    await until(() => b.connected === 1);
    // sent again until it arrives: right after the reconnection a's stream to b may not be open yet
    await until(async () => {
      a.broadcast(Channel.consensus, new TextEncoder().encode("after reconnect"));
      await new Promise((r) => setTimeout(r, 100));
      return atB.some(([, m]) => m === "after reconnect");
    });
    expect(atB.at(-1)).toEqual([0, "after reconnect"]);
  }, 60_000);
});

describe("requests (block sync) and gossip", () => {
  it("a request gets its frames back; a handler's CustosError costs the asker its connection; gossip is relayed only when accepted", async () => {
    const [a, b] = (await validatorNetworks(2)) as [P2pNetwork, P2pNetwork];
    b.onRequest(async function* (_from, req) {
      const n = req[0] ?? 0;
      if (n === 0) throw new CustosError("SYNC_BAD_REQUEST", "zero");
      for (let i = 0; i < n; i++) yield new Uint8Array([i, i]);
    });
    const got: string[] = [];
    b.onGossip("/t", (_from, data) => {
      got.push(new TextDecoder().decode(data));
      return data[0] === 0x78 ? "reject" : "accept";
    });
    a.onGossip("/t", () => "accept");
    await Promise.all([a.start(), b.start()]);
    await until(() => a.connected === 1 && b.connected === 1);
    expect(await a.request(1, new Uint8Array([3]), 10, { signal: AbortSignal.timeout(10_000) })).toEqual([
      new Uint8Array([0, 0]),
      new Uint8Array([1, 1]),
      new Uint8Array([2, 2]),
    ]);
    await expect(
      a.request(1, new Uint8Array([5]), 2, { signal: AbortSignal.timeout(10_000) }),
    ).rejects.toMatchObject({ code: "SYNC_BAD_REPLY" });
    await until(async () => {
      a.publish("/t", new TextEncoder().encode(`hello ${got.length}`));
      await new Promise((r) => setTimeout(r, 100));
      return got.length > 0;
    });
    expect(got[0]).toMatch(/^hello/);
    // gossip is best effort (a message can meet a connection being replaced): forged messages
    // are published until one arrives; the first that does costs a its connection
    await until(async () => {
      if (b.peersDisconnected > 0) return true;
      a.publish("/t", new TextEncoder().encode(`xx forged ${Date.now()}`));
      await new Promise((r) => setTimeout(r, 300));
      return b.peersDisconnected > 0;
    }, 15_000);
    const hungUp = b.peersDisconnected;
    // a request its handler refuses with a CustosError (SYNC_BAD_REQUEST): the asker is hung up on
    await until(() => a.connected === 1 && b.connected === 1, 10_000); // after the ban for the forged gossip
    // the answer is cut off (an empty answer or a broken stream, depending on timing)
    expect(
      await a.request(1, new Uint8Array([0]), 1, { signal: AbortSignal.timeout(10_000) }).catch(() => []),
    ).toEqual([]);
    await until(() => b.peersDisconnected === hungUp + 1, 15_000);
    expect(b.peersDisconnected).toBe(hungUp + 1);
  }, 30_000);
});

describe("a request stream that ends before its request", () => {
  it("is an asker that gave up (timed out, shut down): it keeps its connection", async () => {
    const [a, b] = (await validatorNetworks(2)) as [P2pNetwork, P2pNetwork];
    b.onRequest(async function* (_from, req) {
      yield req;
    });
    await Promise.all([a.start(), b.start()]);
    await until(() => a.connected === 1 && b.connected === 1);
    type Conn = {
      remotePeer: { toString(): string };
      status: string;
      newStream(p: string): Promise<{ close(): Promise<void> }>;
    };
    const node = (a as unknown as { node: { getConnections(): Conn[] } }).node;
    const conn = node.getConnections().find((x) => x.remotePeer.toString() === keys[1]?.peerId);
    for (let i = 0; i < 3; i++) await (await conn?.newStream(SYNC_PROTOCOL))?.close();
    // b has read each stream to its end by the time it answers a request sent after them
    expect(await a.request(1, new Uint8Array([7]), 1, { signal: AbortSignal.timeout(10_000) })).toEqual([
      new Uint8Array([7]),
    ]);
    expect(b.peersDisconnected).toBe(0);
    expect(conn?.status).toBe("open");
  }, 30_000);
});

describe("transaction batches on the consensus stream", () => {
  it("reach every validator on a stream beside its consensus stream; one of an earlier version gets them by gossip and never sees the channel", async () => {
    const [a, b, old] = (await validatorNetworks(3)) as [P2pNetwork, P2pNetwork, P2pNetwork];
    const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    const atB: string[] = [];
    b.onMessage((channel, from, bytes) => atB.push(`${channel}/${from}/${text(bytes)}`));
    const atOld: string[] = [];
    old.onMessage((channel, from, bytes) => atOld.push(`${channel}/${from}/${text(bytes)}`));
    const gossipAtOld: string[] = [];
    old.onGossip("/txs", (_from, data) => {
      gossipAtOld.push(text(data));
      return "accept";
    });
    b.onGossip("/txs", () => "accept");
    await Promise.all([a.start(), b.start(), old.start()]);
    // `old` predates the channel: it serves the first consensus protocol only
    await (old as unknown as { node: { unhandle(p: string): Promise<void> } }).node.unhandle(
      CONSENSUS_TXS_PROTOCOL,
    );
    await until(() => a.connected === 2 && b.connected === 2 && old.connected === 2);
    const enc = (s: string) => new TextEncoder().encode(s);
    // gossip from a reaches `old` (probes until one arrives), while a has no stream to it yet
    await until(async () => {
      a.publish("/txs", enc(`probe ${Date.now()}`));
      await new Promise((r) => setTimeout(r, 200));
      return gossipAtOld.some((m) => m.startsWith("probe"));
    }, 15_000);
    // the first batch is what finds out that `old` speaks only the earlier protocol: that batch
    // goes by gossip on the topic it was given
    a.broadcastTxs(enc("txs first"), "/txs");
    await until(() => gossipAtOld.includes("txs first"), 15_000);
    let k = 0;
    // sent again until all of it is in: right after start a stream may not be open yet
    await until(async () => {
      k++;
      a.broadcast(Channel.consensus, enc(`prepare ${k}`));
      a.broadcastTxs(enc(`txs ${k}`), "/txs");
      a.broadcast(Channel.consensus, enc(`commit ${k}`));
      await new Promise((r) => setTimeout(r, 200));
      return (
        atB.includes(`1/0/commit ${k}`) &&
        atB.includes(`2/0/txs ${k}`) &&
        gossipAtOld.includes(`txs ${k}`) &&
        atOld.includes(`1/0/commit ${k}`)
      );
    }, 20_000);
    // consensus frames in order on their stream; the batch on its own, from the same validator
    const at = atB.indexOf(`1/0/prepare ${k}`);
    expect(atB.slice(at).filter((m) => m.startsWith("1/"))).toEqual([`1/0/prepare ${k}`, `1/0/commit ${k}`]);
    expect(atOld.filter((m) => m.startsWith("2/"))).toEqual([]);
    expect(atOld.slice(atOld.indexOf(`1/0/prepare ${k}`))).toEqual([`1/0/prepare ${k}`, `1/0/commit ${k}`]);
    expect(b.peersDisconnected + old.peersDisconnected + a.peersDisconnected).toBe(0);
  }, 30_000);

  it("a batch the receiver's handler rejects costs its sender the connection; accepted ones do not", async () => {
    const [a, b] = (await validatorNetworks(2)) as [P2pNetwork, P2pNetwork];
    const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    const judged: string[] = [];
    b.onMessage(async (channel, _from, bytes) => {
      judged.push(`${channel}/${text(bytes)}`);
      return text(bytes).startsWith("forged") ? "reject" : "accept";
    });
    await Promise.all([a.start(), b.start()]);
    await until(() => a.connected === 1 && b.connected === 1);
    const enc = (s: string) => new TextEncoder().encode(s);
    let k = 0;
    await until(async () => {
      k++;
      a.broadcastTxs(enc(`good ${k}`), "/txs");
      await new Promise((r) => setTimeout(r, 100));
      return judged.includes(`2/good ${k}`);
    }, 15_000);
    expect(b.peersDisconnected).toBe(0);
    a.broadcastTxs(enc("forged"), "/txs");
    await until(() => b.peersDisconnected === 1, 15_000);
    expect(judged).toContain("2/forged");
  }, 30_000);
});

describe("health on a protocol of its own (rolling upgrades)", () => {
  it("a node answers HEALTH_PROTOCOL; one without it (an earlier version) declines in the negotiation and nobody is hung up on", async () => {
    const [a, b, old] = (await validatorNetworks(3)) as [P2pNetwork, P2pNetwork, P2pNetwork];
    b.onHealth(async () => new Uint8Array([7, 7, 7]));
    // `old` serves sync requests but predates the health protocol
    old.onRequest(async function* () {
      yield new Uint8Array([1]);
    });
    await Promise.all([a.start(), b.start(), old.start()]);
    await until(() => a.connected === 2 && b.connected === 2 && old.connected === 2);
    const ask = (i: number) =>
      a.request(i, HEALTH_REQUEST, 1, { signal: AbortSignal.timeout(10_000), protocol: HEALTH_PROTOCOL });
    expect(await ask(1)).toEqual([new Uint8Array([7, 7, 7])]);
    for (let k = 0; k < 3; k++) await expect(ask(2)).rejects.toMatchObject({ code: "SYNC_UNSUPPORTED" });
    // the older node still answers its sync requests, and every connection is still up
    expect(await a.request(2, new Uint8Array([1]), 1, { signal: AbortSignal.timeout(10_000) })).toEqual([
      new Uint8Array([1]),
    ]);
    expect([a.peersDisconnected, b.peersDisconnected, old.peersDisconnected]).toEqual([0, 0, 0]);
    expect([a.connected, old.connected]).toEqual([2, 2]);
  }, 30_000);
});

describe("yamux flow control (node/src/p2p/yamuxWindow.ts)", () => {
  it("a receiver sends a window update per half window consumed, not per message, and a sender never stalls", async () => {
    // count the WINDOW_UPDATE frames (type 1 in the yamux spec) without flags (those with SYN,
    // ACK, FIN or RST open and close streams) that the streams send
    expect(yamuxWindowPolicy).toBe(true);
    const WINDOW_UPDATE = 1;
    let updates = 0;
    type Frame = { type: number; flag: number };
    const proto = YamuxStream.prototype as unknown as {
      handleData(frame: unknown): void;
      sendFrame: (f: Frame, data?: unknown) => boolean;
      counted?: true;
    };
    const handleData = proto.handleData;
    proto.handleData = function (this: typeof proto, frame: unknown) {
      if (!this.counted) {
        this.counted = true;
        const send = this.sendFrame;
        this.sendFrame = (f: Frame, data?: unknown) => {
          if (f.type === WINDOW_UPDATE && f.flag === 0) updates++;
          return send(f, data);
        };
      }
      handleData.call(this, frame);
    };
    try {
      const [a, b] = (await validatorNetworks(2)) as [P2pNetwork, P2pNetwork];
      let got = 0;
      let bytes = 0;
      b.onMessage((_c, _from, m) => {
        got++;
        bytes += m.byteLength;
      });
      await Promise.all([a.start(), b.start()]);
      await until(() => a.connected === 1 && b.connected === 1);
      // 300 votes' worth of small messages: ~30 KB, far below half of the 256 KB window
      const small = new Uint8Array(100).fill(7);
      for (let i = 0; i < 300; i++) a.send(Channel.consensus, 1, small);
      await until(() => got === 300);
      expect(updates).toBeLessThan(5); // was one per message (300)
      // 2 MB in 4 KB messages, eight initial windows' worth (the window grows as it flows): it
      // arrives whole, with a few updates, not one per message (500)
      const big = new Uint8Array(4000).fill(9);
      const before = updates;
      for (let i = 0; i < 500; i++) a.send(Channel.consensus, 1, big);
      await until(() => got === 800, 30_000);
      expect(bytes).toBe(300 * 100 + 500 * 4000);
      expect(updates - before).toBeGreaterThanOrEqual(1);
      expect(updates - before).toBeLessThan(50);
    } finally {
      proto.handleData = handleData;
    }
  }, 60_000);
});
