import "./withResolvers.js";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { CustosError, errorMessage, type Logger } from "@custos/utils";
import { privateKeyFromRaw } from "@libp2p/crypto/keys";
import { identify } from "@libp2p/identify";
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p, type Libp2p } from "libp2p";

export const CONSENSUS_PROTOCOL = "/custos/consensus/1.0.0";

/** What a frame carries: consensus messages, or signed transactions forwarded to the validators. */
export const Channel = { consensus: 1, tx: 2 } as const;
export type ChannelId = (typeof Channel)[keyof typeof Channel];

export interface NetworkPeer {
  /** Index of the peer in the validator set (or a stable index for observers). */
  index: number;
  peerId: string;
  /** Where to dial it: multiaddrs without the /p2p part. */
  addrs: string[];
}

export interface NetworkOptions {
  /** The node's Ed25519 seed (HOME/keys/p2p.json). */
  seed: Uint8Array;
  listen: string[];
  /** Everybody this node may talk to; every other peer is refused at the connection level. */
  peers: NetworkPeer[];
  maxMessageBytes: number;
  redialMs?: number;
}

function libp2pKey(seed: Uint8Array) {
  const priv = createPrivateKey({
    key: { kty: "OKP", crv: "Ed25519", d: Buffer.from(seed).toString("base64url"), x: "" },
    format: "jwk",
  });
  const x = createPublicKey(priv).export({ format: "jwk" }).x as string;
  return privateKeyFromRaw(new Uint8Array([...seed, ...Buffer.from(x, "base64url")]));
}

/**
 * Consensus messages between permissioned nodes over libp2p (TCP, noise, yamux, identify,
 * ping). The connection gater refuses any peer id not in `peers`. Each message is a frame of a
 * 4-byte big-endian length and the bytes; a frame over `maxMessageBytes` closes the sender's
 * connection. Streams are opened lazily per peer and reopened after a failure; peers that are
 * not connected are dialled again every `redialMs`.
 */
export class P2pNetwork {
  private node: Libp2p | undefined;
  private readonly byId = new Map<string, NetworkPeer>();
  private readonly outbound = new Map<string, Stream>();
  /** Per-peer send chains: one stream per peer, frames in order. */
  private readonly chains = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  /** Peers hung up on for sending invalid data, since start. */
  peersDisconnected = 0;
  private handler: (channel: ChannelId, from: number, bytes: Uint8Array) => void = () => {};

  constructor(
    private readonly opts: NetworkOptions,
    private readonly log: Logger,
  ) {
    for (const p of opts.peers) this.byId.set(p.peerId, p);
  }

  onMessage(fn: (channel: ChannelId, from: number, bytes: Uint8Array) => void): void {
    this.handler = fn;
  }

  get peerId(): string {
    return this.node?.peerId.toString() ?? "";
  }

  get addresses(): string[] {
    return this.node?.getMultiaddrs().map((m) => m.toString()) ?? [];
  }

  /** Allowed peers currently connected. */
  get connected(): number {
    return new Set(this.node?.getConnections().map((c) => c.remotePeer.toString()) ?? []).size;
  }

  async start(): Promise<void> {
    const allowed = (p: PeerId) => this.byId.has(p.toString());
    this.node = await createLibp2p({
      privateKey: libp2pKey(this.opts.seed),
      addresses: { listen: this.opts.listen },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), ping: ping() },
      connectionGater: {
        denyDialPeer: async (p) => !allowed(p),
        denyInboundEncryptedConnection: async (p) => !allowed(p),
        denyOutboundEncryptedConnection: async (p) => !allowed(p),
      },
    });
    await this.node.handle(CONSENSUS_PROTOCOL, (stream, connection) => {
      this.readFrames(stream, connection).catch((err) =>
        this.log.debug("consensus stream ended", { error: errorMessage(err) }),
      );
    });
    this.redial();
  }

  private redial(): void {
    for (const p of this.opts.peers) {
      if (p.peerId === this.peerId || this.isConnected(p.peerId)) continue;
      for (const a of p.addrs) {
        this.node?.dial(multiaddr(`${a}/p2p/${p.peerId}`)).catch(() => {});
      }
    }
    this.timer = setTimeout(() => this.redial(), this.opts.redialMs ?? 1000);
    this.timer.unref();
  }

  private isConnected(peerId: string): boolean {
    return this.node?.getConnections().some((c) => c.remotePeer.toString() === peerId) ?? false;
  }

  private async readFrames(stream: Stream, connection: Connection): Promise<void> {
    const peer = this.byId.get(connection.remotePeer.toString());
    if (!peer) {
      await connection.close();
      return;
    }
    let buf = new Uint8Array(0);
    for await (const chunk of stream) {
      const bytes =
        "subarray" in chunk && !(chunk instanceof Uint8Array) ? chunk.subarray() : (chunk as Uint8Array);
      const joined = new Uint8Array(buf.length + bytes.length);
      joined.set(buf);
      joined.set(bytes, buf.length);
      buf = joined;
      while (buf.length >= 4) {
        const len = new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0);
        if (len > this.opts.maxMessageBytes) {
          this.log.warn("peer sent an oversized message; disconnecting", { peer: peer.index, bytes: len });
          await connection.close();
          return;
        }
        if (buf.length < 4 + len) break;
        const channel = buf[4];
        const msg = buf.slice(5, 4 + len);
        buf = buf.slice(4 + len);
        if (len < 1 || (channel !== Channel.consensus && channel !== Channel.tx)) {
          this.log.warn("peer sent a frame on an unknown channel; disconnecting", { peer: peer.index });
          await connection.close();
          return;
        }
        this.handler(channel, peer.index, msg);
      }
    }
  }

  /** Hangs up on a peer (it sent invalid data). */
  async disconnect(index: number): Promise<void> {
    const p = this.opts.peers.find((x) => x.index === index);
    if (!p) return;
    this.peersDisconnected++;
    for (const c of this.node?.getConnections() ?? [])
      if (c.remotePeer.toString() === p.peerId) await c.close();
    this.outbound.delete(p.peerId);
  }

  send(channel: ChannelId, index: number, bytes: Uint8Array): void {
    const p = this.opts.peers.find((x) => x.index === index && x.peerId !== this.peerId);
    if (!p) return;
    const next = (this.chains.get(p.peerId) ?? Promise.resolve())
      .then(() => this.sendTo(p, channel, bytes))
      .catch(async () => {
        this.outbound.delete(p.peerId); // the stream broke: once more on a fresh one
        await this.sendTo(p, channel, bytes);
      })
      .catch((err) => this.log.debug("send failed", { peer: index, error: errorMessage(err) }));
    this.chains.set(p.peerId, next);
  }

  broadcast(channel: ChannelId, bytes: Uint8Array): void {
    for (const p of this.opts.peers) if (p.peerId !== this.peerId) this.send(channel, p.index, bytes);
  }

  private async sendTo(p: NetworkPeer, channel: ChannelId, bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength + 1 > this.opts.maxMessageBytes) {
      throw new CustosError("MESSAGE_TOO_LARGE", "message over the limit");
    }
    const frame = new Uint8Array(5 + bytes.byteLength);
    new DataView(frame.buffer).setUint32(0, bytes.byteLength + 1);
    frame[4] = channel;
    frame.set(bytes, 5);
    let stream = this.outbound.get(p.peerId);
    if (stream?.writeStatus !== "writable") {
      const conn = this.node
        ?.getConnections()
        .find((c) => c.remotePeer.toString() === p.peerId && c.status === "open");
      if (!conn) return; // not connected: consensus re-sends what matters
      stream = await conn.newStream(CONSENSUS_PROTOCOL);
      this.outbound.set(p.peerId, stream);
    }
    if (!stream.send(frame)) await stream.onDrain();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.outbound.clear();
    await this.node?.stop();
  }
}
