import "./withResolvers.js";
import "./yamuxWindow.js";
import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { type RekeyLimits, refusal, type StaticIdentity, smSecure } from "@custos/sm-secure";
import { CustosError, errorMessage, isCustosError, type Logger, toHex } from "@custos/utils";
import { privateKeyFromRaw } from "@libp2p/crypto/keys";
import { type GossipSub, gossipsub, StrictNoSign, TopicValidatorResult } from "@libp2p/gossipsub";
import { identify } from "@libp2p/identify";
import type { Connection, PeerId, Stream } from "@libp2p/interface";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p, type Libp2p } from "libp2p";

/** Why the network layer refused a peer, a frame or this node's own place. */
export type P2pErrorCode =
  | "CONFIG_INVALID"
  | "MESSAGE_TOO_LARGE"
  | "MESSAGE_TRUNCATED"
  | "NOT_IN_GENESIS"
  | "ROLE_MISMATCH"
  | "P2P_KEY_MISMATCH"
  | "P2P_NOT_VALIDATOR"
  | "P2P_BAD_FRAME"
  | "SYNC_BAD_REPLY"
  | "SYNC_BAD_REQUEST"
  | "SYNC_TIMEOUT"
  | "SYNC_UNAVAILABLE"
  | "SYNC_UNSUPPORTED";

export const CONSENSUS_PROTOCOL = "/custos/consensus/1.0.0";
/**
 * The consensus protocol whose streams may also carry transaction batches (Channel.txs). A node offers it
 * first and 1.0.0 after it: a peer of an earlier version negotiates 1.0.0 and gets its batches by
 * gossip instead (it would hang up on a frame of an unknown channel).
 */
export const CONSENSUS_TXS_PROTOCOL = "/custos/consensus/1.1.0";
/** Frames queued for one peer at most (a PBFT round needs a handful). */
const MAX_QUEUED = 1024;
/** Transaction batches queued for one peer at most (a peer that reads slowly fetches what it lacks). */
const MAX_QUEUED_TXS = 256;

/**
 * Where frames to a peer queue and which stream they go on: consensus messages and transaction
 * batches each have their own, so that a batch held up by a slow reader (its stream's window
 * full) never holds up a vote.
 */
function lane(peerId: string, channel: ChannelId): string {
  return channel === Channel.txs ? `${peerId}/txs` : peerId;
}
export const SYNC_PROTOCOL = "/custos/sync/1.0.0";
/**
 * What costs a peer its connection: a CustosError from reading what it sent, except a stream that
 * ended inside a frame, which is what a peer killed mid-send looks like (the stream is over
 * anyway, and an honest node that crashed must not be refused for a while when it comes back).
 */
function isInvalidData(err: unknown): err is CustosError {
  return isCustosError(err) && err.code !== "MESSAGE_TRUNCATED";
}

/**
 * A node's vital signs (health.ts), on a protocol of its own rather than a kind of sync request: a
 * node of an earlier version does not list it, and says so in the protocol negotiation, where an
 * unknown sync request would have been invalid data and cost the asker its connection (a rolling
 * upgrade must not cut upgraded nodes off from the rest).
 */
export const HEALTH_PROTOCOL = "/custos/health/1.0.0";

/**
 * What a consensus-stream frame carries: PBFT messages, or (on CONSENSUS_TXS_PROTOCOL) batches of
 * signed transactions that a validator's clients gave it, `[txs, batch number]` as TxGossip makes
 * them. Each kind goes on a stream of its own to each peer (see `lane`); a leader sends its batch
 * before it executes its block, so that the batch is ahead of the proposal that names its
 * transactions (a replica that is still verifying it waits, one that lacks it fetches).
 */
export const Channel = { consensus: 1, txs: 2 } as const;
export type ChannelId = (typeof Channel)[keyof typeof Channel];

export interface NetworkPeer {
  /** Validators: their index in the validator set. Observers: validator count + their index. */
  index: number;
  peerId: string;
  /** Where to dial it: multiaddrs without the /p2p part. */
  addrs: string[];
  role: "validator" | "observer";
  /** Its name in the validator or observer set (for logs). */
  name?: string;
  /**
   * Its SM2 node key (33 bytes): what it proves on a national-algorithm connection, and what
   * admits it there (a noise chain admits by peer id alone).
   */
  publicKey?: Uint8Array;
}

/**
 * How connections are secured, the chain's choice in genesis (`p2p.secure`): national algorithms
 * (@custos/sm-secure: the peer proves its SM2 node key, which must be in the current sets), or
 * noise (chains whose genesis predates the choice). A node speaks only the one.
 */
export type SecureTransport =
  | {
      kind: "sm";
      chainId: string;
      /** This node's SM2 node key. */
      identity: StaticIdentity;
      rekey?: Partial<RekeyLimits>;
      handshakeTimeoutMs?: number;
    }
  | { kind: "noise" };

export interface NetworkOptions {
  /** The node's libp2p Ed25519 seed (derived from its SM2 key, or an older home's keys/p2p.json). */
  seed: Uint8Array;
  listen: string[];
  /** Everybody this node may talk to; every other peer is refused at the connection level. */
  peers: NetworkPeer[];
  maxMessageBytes: number;
  redialMs?: number;
  /** Noise when absent. */
  secure?: SecureTransport;
  /**
   * Where to dial some peers instead of their addresses in the sets (config `p2p.dial`, by peer
   * id: a testnet's fault-injecting proxy); applies to every list of peers, set changes included.
   */
  dial?: Record<string, string[]>;
}

/** What a gossip validator decides: deliver and relay, drop quietly, or drop and hang up. */
export type GossipVerdict = "accept" | "ignore" | "reject";
export type GossipHandler = (from: NetworkPeer, data: Uint8Array) => Promise<GossipVerdict> | GossipVerdict;
/**
 * What a consensus-stream frame goes to. A handler that judges its frame later returns the
 * verdict's promise: "reject" (what only a faulty or malicious sender could send) costs the
 * sender its connection, as a rejected gossip message does.
 */
export type MessageHandler = (
  channel: ChannelId,
  from: number,
  bytes: Uint8Array,
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler that judges nothing returns whatever it likes
) => Promise<GossipVerdict> | void;
/** Answers one sync request with frames; throws a CustosError for a bad request. */
export type RequestHandler = (from: NetworkPeer, request: Uint8Array) => AsyncIterable<Uint8Array>;

function libp2pKey(seed: Uint8Array) {
  const priv = createPrivateKey({
    key: { kty: "OKP", crv: "Ed25519", d: Buffer.from(seed).toString("base64url"), x: "" },
    format: "jwk",
  });
  const x = createPublicKey(priv).export({ format: "jwk" }).x as string;
  return privateKeyFromRaw(new Uint8Array([...seed, ...Buffer.from(x, "base64url")]));
}

/** The peers, with the addresses `dial` gives for some of them (by peer id) instead of theirs. */
export function withDialAddresses(
  peers: NetworkPeer[],
  dial: Record<string, string[]> | undefined,
): NetworkPeer[] {
  if (!dial) return peers;
  return peers.map((p) => {
    const addrs = dial[p.peerId];
    return addrs ? { ...p, addrs } : p;
  });
}

function chunkBytes(chunk: unknown): Uint8Array {
  return chunk instanceof Uint8Array ? chunk : (chunk as { subarray(): Uint8Array }).subarray();
}

function frameOf(bytes: Uint8Array): Uint8Array {
  const frame = new Uint8Array(4 + bytes.byteLength);
  new DataView(frame.buffer).setUint32(0, bytes.byteLength);
  frame.set(bytes, 4);
  return frame;
}

/**
 * Frames of [u32 big-endian length][bytes] from a stream; a length over `max` throws. Chunks are
 * kept as they arrive and joined once per frame (no copying of the whole buffer per chunk).
 */
async function* frames(stream: AsyncIterable<unknown>, max: number): AsyncGenerator<Uint8Array> {
  let chunks: Uint8Array[] = [];
  let have = 0;
  const take = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = chunks[0] as Uint8Array;
      const k = Math.min(c.length, n - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (k === c.length) chunks.shift();
      else chunks[0] = c.subarray(k);
    }
    have -= n;
    return out;
  };
  let need = -1; // length of the frame being read, once its header is in
  for await (const chunk of stream) {
    const bytes = chunkBytes(chunk);
    if (bytes.length === 0) continue;
    chunks.push(bytes);
    have += bytes.length;
    for (;;) {
      if (need < 0) {
        if (have < 4) break;
        const h = take(4);
        need = new DataView(h.buffer).getUint32(0);
        if (need > max)
          throw new CustosError<P2pErrorCode>("MESSAGE_TOO_LARGE", `a frame of ${need} bytes (limit ${max})`);
      }
      if (have < need) break;
      const frame = take(need);
      need = -1;
      yield frame;
    }
  }
  if (need >= 0 || have > 0)
    throw new CustosError<P2pErrorCode>("MESSAGE_TRUNCATED", "the stream ended inside a frame");
  chunks = [];
}

/**
 * The permissioned network over libp2p (TCP, sm-secure or noise, yamux, identify, ping,
 * gossipsub). On a national-algorithm chain a connection's peer is the SM2 key it proved in the
 * handshake: a key outside `peers` is refused there, and every protocol looks the peer up by the
 * key its connection proved (`peerOf`). The connection gater refuses any peer id not in `peers`
 * (and banned peers). Three ways to talk:
 * - consensus: one long-lived stream per peer of [u32 length][channel byte][message] frames,
 *   between validators only: PBFT messages, and the batches of transactions each validator's
 *   clients gave it (one hop to every validator, on a stream of their own, sent before a
 *   leader's proposal);
 * - gossip (gossipsub, unsigned messages with content ids): block announcements, and
 *   transactions to and from validators of an earlier version, relayed only after the topic's
 *   handler accepted them;
 * - requests (block sync): a fresh stream per request, the answer is a run of frames.
 * A frame over `maxMessageBytes`, a frame on an unknown channel, a consensus frame from an
 * observer or a gossip message a handler rejects costs the sender its connection.
 */
export class P2pNetwork {
  private node: Libp2p<{ pubsub: GossipSub }> | undefined;
  private readonly byId = new Map<string, NetworkPeer>();
  /** hex SM2 key -> peer (national-algorithm chains). */
  private readonly byKey = new Map<string, NetworkPeer>();
  /** peer id -> hex of the SM2 key its latest connection proved. */
  private readonly proven = new Map<string, string>();
  /** The SM2 key (hex) the current sets give each peer id: what `proven` must match. */
  private readonly keyHexOf = new Map<string, string>();
  /** When each (code, remote host) refusal was last logged as a warning. */
  private readonly refusalLogged = new Map<string, number>();
  /** Open outbound streams by lane (see `lane`). */
  private readonly outbound = new Map<string, Stream>();
  /** Peers whose consensus stream negotiated CONSENSUS_PROTOCOL (an earlier version): no txs channel. */
  private readonly withoutTxs = new Set<string>();
  /** Per-peer send chains: one stream per peer, frames in order. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly topics = new Map<string, GossipHandler>();
  private readonly queued = new Map<string, number>();
  private readonly bans = new Map<string, { strikes: number; until: number }>();
  private requestHandler: RequestHandler | undefined;
  private healthHandler: (() => Promise<Uint8Array>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Called after an allowed peer connected or disconnected. */
  onPeersChanged: (() => void) | undefined;
  /** Dials of peers not connected, since start (the redialler's attempts). */
  dialAttempts = 0;
  /** Peers hung up on for sending invalid data, since start. */
  peersDisconnected = 0;
  /** Handshakes and records the national-algorithm transport refused, by code, since start. */
  readonly secureRefused = new Map<string, number>();
  private handler: MessageHandler = () => {};

  private peers: NetworkPeer[];

  constructor(
    private readonly opts: NetworkOptions,
    private readonly log: Logger,
  ) {
    this.peers = withDialAddresses(opts.peers, opts.dial);
    this.index(this.peers);
  }

  private get sm(): boolean {
    return this.opts.secure?.kind === "sm";
  }

  private index(peers: NetworkPeer[]): void {
    this.byId.clear();
    this.byKey.clear();
    this.keyHexOf.clear();
    for (const p of peers) {
      this.byId.set(p.peerId, p);
      if (!p.publicKey) continue;
      const hex = toHex(p.publicKey);
      this.byKey.set(hex, p);
      this.keyHexOf.set(p.peerId, hex);
    }
  }

  /**
   * The allowed peer a connection (or gossip sender) stands for: by peer id, and on a
   * national-algorithm chain only while the SM2 key its connection proved is the one the current
   * sets give that peer.
   */
  private peerOf(peerId: string): NetworkPeer | undefined {
    const p = this.byId.get(peerId);
    if (!p || !this.sm) return p;
    const key = this.keyHexOf.get(peerId);
    return key !== undefined && this.proven.get(peerId) === key ? p : undefined;
  }

  /**
   * Replaces the allowed peers (a validator-set change by governance): the gater and the
   * handshake admit the new list from now on, connections to peers no longer on it (or whose
   * proven key is no longer theirs) are closed, new ones are dialled.
   */
  setPeers(peers: NetworkPeer[]): void {
    this.peers = withDialAddresses(peers, this.opts.dial);
    this.index(this.peers);
    for (const c of this.node?.getConnections() ?? []) {
      const id = c.remotePeer.toString();
      if (!this.peerOf(id)) {
        this.dropStreams(id, new Error("no longer a peer"));
        // a close that times out (streams the peer keeps open) leaves it open: cut it then
        c.close().catch(() => c.abort(new Error("no longer a peer")));
      }
    }
  }

  onMessage(fn: MessageHandler): void {
    this.handler = fn;
  }

  /** Subscribes to a gossip topic (before or after start). */
  onGossip(topic: string, fn: GossipHandler): void {
    this.topics.set(topic, fn);
    if (this.node) this.subscribe(topic);
  }

  onRequest(fn: RequestHandler): void {
    this.requestHandler = fn;
  }

  /** Answers HEALTH_PROTOCOL with one frame; set before start (a node without it does not list the protocol). */
  onHealth(fn: () => Promise<Uint8Array>): void {
    this.healthHandler = fn;
  }

  get peerId(): string {
    return this.node?.peerId.toString() ?? "";
  }

  get addresses(): string[] {
    return this.node?.getMultiaddrs().map((m) => m.toString()) ?? [];
  }

  /** Allowed peers currently connected. */
  get connected(): number {
    return this.connectedPeers().length;
  }

  /** Every peer this node knows of (validators and observers of the current sets), connected or not. */
  knownPeers(): readonly NetworkPeer[] {
    return this.peers;
  }

  connectedPeers(): NetworkPeer[] {
    const ids = new Set(this.node?.getConnections().map((c) => c.remotePeer.toString()) ?? []);
    return this.peers.filter((p) => ids.has(p.peerId) && this.peerOf(p.peerId) === p);
  }

  peer(index: number): NetworkPeer | undefined {
    return this.peers.find((p) => p.index === index);
  }

  /** The national-algorithm transport of a chain that chose it. */
  private encrypters() {
    const secure = this.opts.secure;
    if (secure?.kind !== "sm") return [noise()];
    return [
      smSecure({
        chainId: secure.chainId,
        identity: secure.identity,
        ...(secure.rekey ? { rekey: secure.rekey } : {}),
        ...(secure.handshakeTimeoutMs ? { handshakeTimeoutMs: secure.handshakeTimeoutMs } : {}),
        peerIdOf: (key) => {
          const p = this.byKey.get(toHex(key));
          if (p && this.isBanned(p.peerId))
            throw refusal(
              "SM_PEER_NOT_ALLOWED",
              `${p.name ?? p.peerId} is refused for a while: it sent invalid data`,
            );
          return p?.peerId;
        },
        onAuthenticated: ({ peerId, publicKey }) => this.proven.set(peerId, toHex(publicKey)),
        onRefused: (err, info) => {
          this.secureRefused.set(err.code, (this.secureRefused.get(err.code) ?? 0) + 1);
          const peer = info.peerId ? this.byId.get(info.peerId) : undefined;
          const host = info.remoteAddr.split("/tcp/")[0] ?? info.remoteAddr;
          const fields = {
            code: err.code,
            reason: err.message,
            remote: info.remoteAddr,
            phase: info.phase,
            ...(peer ? { peer: peer.name ?? peer.index } : {}),
          };
          // a refusal is the peer's problem, logged as a warning once a minute per kind and host
          const key = `${err.code} ${host}`;
          const now = Date.now();
          if (now - (this.refusalLogged.get(key) ?? 0) > 60_000) {
            this.refusalLogged.set(key, now);
            this.log.warn("connection refused by the national-algorithm transport", fields);
          } else this.log.debug("connection refused by the national-algorithm transport", fields);
          // an authenticated peer that sent a bad record sent invalid data: refused for a while
          if (peer && info.phase === "record") this.strike(peer);
        },
      }),
    ];
  }

  async start(): Promise<void> {
    const allowed = (p: PeerId) => this.byId.has(p.toString()) && !this.isBanned(p.toString());
    this.node = await createLibp2p({
      privateKey: libp2pKey(this.opts.seed),
      addresses: { listen: this.opts.listen },
      transports: [tcp()],
      connectionEncrypters: this.encrypters(),
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        ping: ping(),
        pubsub: gossipsub({
          // Custos messages authenticate themselves (SM2-signed txs, commit certificates), so
          // gossip carries them unsigned and names them by content
          globalSignaturePolicy: StrictNoSign,
          msgIdFn: (m) => createHash("sha256").update(m.data).digest(),
          allowPublishToZeroTopicPeers: true,
          ignoreDuplicatePublishError: true,
          asyncValidation: false,
          maxInboundDataLength: this.opts.maxMessageBytes,
          heartbeatInterval: 500,
          // One hop: a consortium's nodes all connect to each other, and flood publishing (the
          // default) already hands a message to every connected peer of the topic. With a mesh,
          // every receiver also forwarded each batch to its other mesh peers, who had it: on four
          // validators 9 sends and receives per batch instead of 3, a third of the network stack's
          // work per transaction. Without one, nothing is forwarded; a peer that missed a message
          // still learns its id from the lazy gossip (IHAVE, every heartbeat) and asks for it, and
          // a proposal's missing transactions are fetched from the proposer.
          D: 0,
          Dlo: 0,
          Dhi: 0,
          Dscore: 0,
          Dout: 0,
        } as Parameters<typeof gossipsub>[0]),
      },
      connectionGater: {
        denyDialPeer: async (p) => !allowed(p),
        // after the handshake: the key it proved must still be the peer's (the sets can change
        // while a connection is being set up)
        denyInboundEncryptedConnection: async (p) => !allowed(p) || !this.peerOf(p.toString()),
        denyOutboundEncryptedConnection: async (p) => !allowed(p) || !this.peerOf(p.toString()),
        denyInboundUpgradedConnection: async (p) => !this.peerOf(p.toString()),
        denyOutboundUpgradedConnection: async (p) => !this.peerOf(p.toString()),
      },
    });
    await this.node.handle([CONSENSUS_TXS_PROTOCOL, CONSENSUS_PROTOCOL], (stream, connection) => {
      this.readConsensus(stream, connection).catch(async (err) => {
        const peer = this.peerOf(connection.remotePeer.toString());
        if (peer && isInvalidData(err)) await this.hangUp(peer, err.message);
        else this.log.debug("consensus stream ended", { error: errorMessage(err) });
      });
    });
    await this.node.handle(SYNC_PROTOCOL, (stream, connection) => {
      this.answer(stream, connection).catch((err) =>
        this.log.debug("sync request ended", { error: errorMessage(err) }),
      );
    });
    const health = this.healthHandler;
    if (health)
      await this.node.handle(HEALTH_PROTOCOL, (stream, connection) => {
        this.answerHealth(stream, connection, health).catch((err) => {
          // informational: a bad request only ends its stream, nobody is hung up on
          stream.abort(err as Error);
          this.log.debug("health request ended", { error: errorMessage(err) });
        });
      });
    this.node.services.pubsub.addEventListener("message", () => {}); // delivery happens in the validators
    // an operator sees peers come and go in node.log (a lost validator is a warning)
    this.node.addEventListener("peer:connect", (e) => {
      const p = this.peerOf(e.detail.toString());
      if (p) this.log.info("peer connected", { peer: p.name ?? p.index, role: p.role });
      if (p) this.onPeersChanged?.();
    });
    this.node.addEventListener("peer:disconnect", (e) => {
      const p = this.byId.get(e.detail.toString());
      if (!p || this.stopping) return;
      this.dropStreams(p.peerId); // its streams went with the connection
      const fields = { peer: p.name ?? p.index, role: p.role, connected: this.connected };
      if (p.role === "validator") this.log.warn("validator peer lost", fields);
      else this.log.info("observer peer lost", fields);
      this.onPeersChanged?.();
    });
    for (const topic of this.topics.keys()) this.subscribe(topic);
    this.redial();
  }

  private subscribe(topic: string): void {
    const pubsub = this.node?.services.pubsub;
    if (!pubsub || pubsub.getTopics().includes(topic)) return;
    pubsub.topicValidators.set(topic, async (peerId, msg) => {
      const peer = this.peerOf(peerId.toString());
      const fn = this.topics.get(topic);
      if (!peer || !fn) return TopicValidatorResult.Reject;
      let verdict: GossipVerdict;
      try {
        verdict = await fn(peer, msg.data);
      } catch (err) {
        this.log.warn("gossip handler failed", { topic, error: errorMessage(err) });
        verdict = "ignore";
      }
      if (verdict === "reject") {
        void this.hangUp(peer, `invalid message on ${topic}`);
        return TopicValidatorResult.Reject;
      }
      return verdict === "accept" ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore;
    });
    pubsub.subscribe(topic);
  }

  /** Publishes on a gossip topic; nobody listening yet is not an error. */
  publish(topic: string, data: Uint8Array): void {
    this.node?.services.pubsub
      .publish(topic, data)
      .catch((err) => this.log.debug("publish failed", { topic, error: errorMessage(err) }));
  }

  private redial(): void {
    for (const p of this.peers) {
      if (p.peerId === this.peerId || this.isConnected(p.peerId) || this.isBanned(p.peerId)) continue;
      for (const a of p.addrs) {
        this.dialAttempts++;
        this.node?.dial(multiaddr(`${a}/p2p/${p.peerId}`)).catch(() => {});
      }
    }
    this.timer = setTimeout(() => this.redial(), this.opts.redialMs ?? 1000);
    this.timer.unref();
  }

  private isConnected(peerId: string): boolean {
    return this.node?.getConnections().some((c) => c.remotePeer.toString() === peerId) ?? false;
  }

  private async readConsensus(stream: Stream, connection: Connection): Promise<void> {
    const peer = this.peerOf(connection.remotePeer.toString());
    if (!peer) {
      await connection.close();
      return;
    }
    // only validators talk consensus: anybody else is hung up on before a byte is read
    if (peer.role !== "validator")
      throw new CustosError<P2pErrorCode>("P2P_NOT_VALIDATOR", "a consensus stream from a non-validator");
    const remote = connection.remotePeer.toString();
    for await (const frame of frames(stream, this.opts.maxMessageBytes)) {
      const channel = frame[0];
      if (frame.length < 1 || (channel !== Channel.consensus && channel !== Channel.txs))
        throw new CustosError<P2pErrorCode>("P2P_BAD_FRAME", "a frame on an unknown channel");
      // looked up per frame: a validator-set change moves indices while the stream stays open
      const now = this.peerOf(remote);
      if (now?.role !== "validator")
        throw new CustosError<P2pErrorCode>("P2P_NOT_VALIDATOR", "no longer a validator");
      const verdict = this.handler(channel as ChannelId, now.index, frame.subarray(1));
      // judged while the next frames are read, as gossip is: a rejected one costs the connection
      if (verdict instanceof Promise)
        void verdict.then(
          (v) => (v === "reject" ? this.hangUp(now, `an invalid message on channel ${channel}`) : undefined),
          (err) => this.log.warn("message handler failed", { channel, error: errorMessage(err) }),
        );
    }
  }

  private async answer(stream: Stream, connection: Connection): Promise<void> {
    const peer = this.peerOf(connection.remotePeer.toString());
    if (!peer || !this.requestHandler) {
      stream.abort(new Error("no handler"));
      return;
    }
    let request: Uint8Array | undefined;
    // a request and its answer get a minute; a reader that stops reading does not pin the stream
    const deadline = setTimeout(() => stream.abort(new Error("sync answer deadline")), 60_000);
    try {
      // the asker closes its side after one request frame
      for await (const f of frames(stream, 4096)) {
        if (request)
          throw new CustosError<P2pErrorCode>("SYNC_BAD_REQUEST", "more than one request on a stream");
        request = f;
      }
      if (!request) {
        // a stream that ends before its request frame is an asker that gave up (timed out, shut
        // down, killed): nothing it sent was wrong, so it keeps its connection
        stream.abort(new Error("no request"));
        return;
      }
      for await (const reply of this.requestHandler(peer, request)) {
        if (!stream.send(frameOf(reply))) await stream.onDrain();
      }
      await stream.close();
    } catch (err) {
      if (isInvalidData(err) && err.code !== "SYNC_UNAVAILABLE") await this.hangUp(peer, err.message);
      else stream.abort(err as Error);
    } finally {
      clearTimeout(deadline);
    }
  }

  private async answerHealth(
    stream: Stream,
    connection: Connection,
    health: () => Promise<Uint8Array>,
  ): Promise<void> {
    if (!this.peerOf(connection.remotePeer.toString())) {
      stream.abort(new Error("not a peer"));
      return;
    }
    const deadline = setTimeout(() => stream.abort(new Error("health answer deadline")), 10_000);
    try {
      // one small request frame (a version byte), then the asker closes its side
      let n = 0;
      for await (const _ of frames(stream, 16))
        if (++n > 1) throw new Error("more than one health request on a stream");
      if (!stream.send(frameOf(await health()))) await stream.onDrain();
      await stream.close();
    } finally {
      clearTimeout(deadline);
    }
  }

  /**
   * Sends one request to a peer and collects the answer's frames: at most `maxFrames`, at most
   * `maxBytes` in all (each frame at most maxMessageBytes). Rejects when the peer is not
   * connected or times out (SYNC_UNAVAILABLE, SYNC_TIMEOUT) or answers more or other than that
   * (SYNC_BAD_REPLY, MESSAGE_TOO_LARGE, MESSAGE_TRUNCATED); the stream is aborted then.
   */
  async request(
    index: number,
    request: Uint8Array,
    maxFrames: number,
    o: { signal: AbortSignal; maxBytes?: number; protocol?: string },
  ): Promise<Uint8Array[]> {
    const { signal } = o;
    const maxBytes = o.maxBytes ?? this.opts.maxMessageBytes;
    const p = this.peer(index);
    const conn = this.node
      ?.getConnections()
      .find((c) => c.remotePeer.toString() === p?.peerId && c.status === "open");
    if (!p || !conn)
      throw new CustosError<P2pErrorCode>("SYNC_UNAVAILABLE", `peer ${index} is not connected`);
    signal.throwIfAborted();
    const protocol = o.protocol ?? SYNC_PROTOCOL;
    const stream = await conn.newStream(protocol, { signal }).catch((err: Error) => {
      if (err.name === "UnsupportedProtocolError")
        throw new CustosError<P2pErrorCode>(
          "SYNC_UNSUPPORTED",
          `peer ${index} does not serve ${protocol} (a node of an earlier version)`,
        );
      throw err;
    });
    const abort = () => stream.abort(new Error("sync request aborted"));
    signal.addEventListener("abort", abort);
    try {
      stream.send(frameOf(request));
      await stream.close();
      const out: Uint8Array[] = [];
      let bytes = 0;
      for await (const f of frames(stream, Math.min(this.opts.maxMessageBytes, maxBytes))) {
        out.push(f);
        bytes += f.length;
        if (out.length > maxFrames)
          throw new CustosError<P2pErrorCode>("SYNC_BAD_REPLY", "more frames than asked for");
        if (bytes > maxBytes)
          throw new CustosError<P2pErrorCode>("SYNC_BAD_REPLY", `an answer over ${maxBytes} bytes`);
      }
      return out;
    } catch (err) {
      stream.abort(err as Error);
      if (signal.aborted)
        throw new CustosError<P2pErrorCode>(
          "SYNC_TIMEOUT",
          `peer ${index} did not answer in time (${errorMessage(signal.reason)})`,
        );
      throw err;
    } finally {
      signal.removeEventListener("abort", abort);
    }
  }

  private async hangUp(peer: NetworkPeer, reason: string): Promise<void> {
    this.log.warn("peer sent invalid data; disconnecting", { peer: peer.index, reason });
    await this.disconnect(peer.index);
  }

  /** Hangs up on a peer (it sent invalid data). */
  async disconnect(index: number): Promise<void> {
    const p = this.peer(index);
    if (!p) return;
    this.strike(p);
    // a graceful close that times out (a loaded machine, streams the peer keeps open) would
    // leave the connection open: it is cut then
    for (const c of this.node?.getConnections() ?? [])
      if (c.remotePeer.toString() === p.peerId)
        await c.close().catch(() => c.abort(new Error("hung up: the peer sent invalid data")));
  }

  /** Counts a peer's offence and refuses it for a while, longer each time: 1 s, 2 s, 4 s ... at most a minute. */
  private strike(p: NetworkPeer): void {
    this.peersDisconnected++;
    const strikes = (this.bans.get(p.peerId)?.strikes ?? 0) + 1;
    this.bans.set(p.peerId, { strikes, until: Date.now() + Math.min(60_000, 1000 * 2 ** (strikes - 1)) });
    this.dropStreams(p.peerId);
  }

  /**
   * Forgets a peer's outbound streams (aborting them when `reason` is given), and what they
   * negotiated: a peer that comes back may run another version.
   */
  private dropStreams(peerId: string, reason?: Error): void {
    this.withoutTxs.delete(peerId);
    for (const channel of Object.values(Channel)) {
      const key = lane(peerId, channel);
      if (reason) this.outbound.get(key)?.abort(reason);
      this.outbound.delete(key);
    }
  }

  private isBanned(peerId: string): boolean {
    return (this.bans.get(peerId)?.until ?? 0) > Date.now();
  }

  /**
   * Queues a frame for a peer. A peer that does not read (hung, paused, hostile) gets at most
   * MAX_QUEUED frames queued and 10 s per stalled write; the rest is dropped, as consensus
   * re-sends what matters. `gossipTopic`: where a batch of transactions goes instead if the
   * peer turns out to speak only the earlier protocol (see broadcastTxs).
   */
  send(channel: ChannelId, index: number, bytes: Uint8Array, gossipTopic?: string): void {
    const p = this.peers.find((x) => x.index === index && x.peerId !== this.peerId);
    if (!p) return;
    const key = lane(p.peerId, channel);
    const queued = this.queued.get(key) ?? 0;
    if (queued >= (channel === Channel.txs ? MAX_QUEUED_TXS : MAX_QUEUED)) {
      this.log.debug("send queue full; dropping a message", { peer: index, channel });
      return;
    }
    this.queued.set(key, queued + 1);
    const next = (this.chains.get(key) ?? Promise.resolve())
      .then(() => this.sendTo(p, channel, bytes, gossipTopic))
      .catch(async () => {
        // the stream broke or stalled: once more on a fresh one
        this.outbound.get(key)?.abort(new Error("stalled or broken"));
        this.outbound.delete(key);
        await this.sendTo(p, channel, bytes, gossipTopic);
      })
      .catch((err) => this.log.debug("send failed", { peer: index, error: errorMessage(err) }))
      .finally(() => this.queued.set(key, (this.queued.get(key) ?? 1) - 1));
    this.chains.set(key, next);
  }

  /**
   * A batch of transactions to every other validator, on a consensus stream of its own; one whose
   * stream negotiated the earlier protocol gets it by gossip on `topic` (once for all of them).
   * Observers get none: they take no writes and learn transactions from blocks.
   */
  broadcastTxs(bytes: Uint8Array, topic: string): void {
    let gossip = false;
    for (const p of this.peers) {
      if (p.role !== "validator" || p.peerId === this.peerId) continue;
      if (this.withoutTxs.has(p.peerId)) gossip = true;
      else this.send(Channel.txs, p.index, bytes, topic);
    }
    if (gossip) this.publish(topic, bytes);
  }

  /** Sends to every validator but this node. */
  broadcast(channel: ChannelId, bytes: Uint8Array): void {
    for (const p of this.peers)
      if (p.role === "validator" && p.peerId !== this.peerId) this.send(channel, p.index, bytes);
  }

  private async sendTo(
    p: NetworkPeer,
    channel: ChannelId,
    bytes: Uint8Array,
    gossipTopic: string | undefined,
  ): Promise<void> {
    if (bytes.byteLength + 1 > this.opts.maxMessageBytes) {
      throw new CustosError<P2pErrorCode>("MESSAGE_TOO_LARGE", "message over the limit");
    }
    const body = new Uint8Array(1 + bytes.byteLength);
    body[0] = channel;
    body.set(bytes, 1);
    const key = lane(p.peerId, channel);
    let stream = this.outbound.get(key);
    // a stream of a connection that closed can still call itself writable: check both
    if (stream?.writeStatus !== "writable" || stream.status !== "open") {
      const conn = this.node
        ?.getConnections()
        .find((c) => c.remotePeer.toString() === p.peerId && c.status === "open");
      if (!conn) return; // not connected: consensus re-sends what matters
      stream = await conn.newStream([CONSENSUS_TXS_PROTOCOL, CONSENSUS_PROTOCOL]);
      this.outbound.set(key, stream);
      if (stream.protocol === CONSENSUS_PROTOCOL) this.withoutTxs.add(p.peerId);
      else this.withoutTxs.delete(p.peerId);
    }
    if (channel === Channel.txs && this.withoutTxs.has(p.peerId)) {
      // found out with this batch: it goes by gossip (to everyone; the others drop a duplicate)
      if (gossipTopic !== undefined) this.publish(gossipTopic, bytes);
      return;
    }
    if (!stream.send(frameOf(body))) await stream.onDrain({ signal: AbortSignal.timeout(10_000) });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.outbound.clear();
    await this.node?.stop();
  }
}
