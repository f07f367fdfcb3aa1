import { generateKeyPair, p2pKeyFromNodeKey, type Sm2KeyPair, sm2Sign } from "@custos/crypto";
import { nullLogger } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import { Channel, type NetworkPeer, P2pNetwork } from "../../src/p2p/network.js";
import { freePort, until } from "../helpers.js";

/**
 * The permissioned network on a national-algorithm chain: the SM2 key a connection proves is what
 * admits it, as the sets say now (governance changes them: setPeers).
 */
const CHAIN = "custos-p2p-sm";
const nets: P2pNetwork[] = [];
afterAll(async () => {
  await Promise.all(nets.map((n) => n.stop()));
});

interface Member {
  key: Sm2KeyPair;
  peer: NetworkPeer;
}

async function member(index: number): Promise<Member> {
  const key = generateKeyPair();
  return {
    key,
    peer: {
      index,
      peerId: p2pKeyFromNodeKey(key.privateKey).peerId,
      addrs: [`/ip4/127.0.0.1/tcp/${await freePort()}`],
      role: "validator",
      publicKey: key.publicKey,
    },
  };
}

function net(m: Member, peers: NetworkPeer[], secure: "sm" | "noise" = "sm"): P2pNetwork {
  const n = new P2pNetwork(
    {
      seed: p2pKeyFromNodeKey(m.key.privateKey).seed,
      listen: m.peer.addrs,
      peers,
      maxMessageBytes: 4096,
      redialMs: 100,
      secure:
        secure === "sm"
          ? {
              kind: "sm",
              chainId: CHAIN,
              identity: { publicKey: m.key.publicKey, sign: (msg) => sm2Sign(m.key.privateKey, msg) },
            }
          : { kind: "noise" },
    },
    nullLogger,
  );
  nets.push(n);
  return n;
}

describe("the network on national algorithms", () => {
  it("members talk; an SM2 key outside the sets and a noise peer never get a message through", async () => {
    const [a, b, c] = [await member(0), await member(1), await member(2)];
    const peers = [a.peer, b.peer];
    const na = net(a, peers);
    const nb = net(b, peers);
    // c lists everybody (itself included) and dials; a and b do not list c
    const nc = net(c, [...peers, c.peer]);
    const got: string[] = [];
    nb.onMessage((_ch, from, bytes) => got.push(`${from}:${new TextDecoder().decode(bytes)}`));
    const gossip: string[] = [];
    nb.onGossip("/t", (from, data) => {
      gossip.push(`${from.index}:${new TextDecoder().decode(data)}`);
      return "accept";
    });
    na.onGossip("/t", () => "accept");
    await Promise.all([na.start(), nb.start(), nc.start()]);
    await until(() => na.connected === 1 && nb.connected === 1);
    na.send(Channel.consensus, 1, new TextEncoder().encode("prepare"));
    await until(() => got.length === 1);
    expect(got).toEqual(["0:prepare"]);
    // gossip (gossipsub over identify's protocol lists) works over the national-algorithm transport
    // (new bytes each time: gossip drops a message id it has seen, even one that reached nobody)
    let n = 0;
    await until(async () => {
      na.publish("/t", new TextEncoder().encode(`tx batch ${n++}`));
      await new Promise((r) => setTimeout(r, 100));
      return gossip.length > 0;
    });
    expect(gossip[0]).toMatch(/^0:tx batch \d+$/);
    await until(() => (nb.secureRefused.get("SM_PEER_NOT_ALLOWED") ?? 0) >= 2);
    nc.send(Channel.consensus, 1, new TextEncoder().encode("from an outsider"));
    expect(nc.connected).toBe(0);
    // a noise node with a's own peer id and keys: refused (no common protocol)
    await na.stop();
    const imitation = net(a, peers, "noise");
    await imitation.start();
    await until(() => imitation.dialAttempts >= 3);
    expect(imitation.connected).toBe(0);
    expect(got).toEqual(["0:prepare"]);
  }, 60_000);

  it("governance rebinds a peer id to another key: the open connection closes and the old key is refused", async () => {
    const [a, b] = [await member(0), await member(1)];
    const peers = [a.peer, b.peer];
    const na = net(a, peers);
    const nb = net(b, peers);
    await Promise.all([na.start(), nb.start()]);
    await until(() => na.connected === 1);
    const stranger = generateKeyPair();
    na.setPeers([a.peer, { ...b.peer, publicKey: stranger.publicKey }]);
    expect(na.connected).toBe(0);
    await until(
      () =>
        (na.secureRefused.get("SM_PEER_NOT_ALLOWED") ?? 0) +
          (na.secureRefused.get("SM_PEER_MISMATCH") ?? 0) >=
        1,
    );
    expect(na.connected).toBe(0);
    const lib = na as unknown as { node: { getConnections(): unknown[] } };
    await until(() => lib.node.getConnections().length === 0);
    // back to b's real key: it is let in again
    na.setPeers(peers);
    await until(() => na.connected === 1);
  }, 60_000);
});
