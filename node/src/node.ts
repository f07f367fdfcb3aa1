import { existsSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { decode, encode, fieldAt, readArray, readBytes, readUint } from "@custos/codec";
import { decodeEnvelope, voteDigest, votePosition } from "@custos/consensus";
import { loadKeystoreFile, loadP2pKeystore, type Sm2KeyPair, selectSm2, VerifierPool } from "@custos/crypto";
import { encodeCertificate, type Genesis, type GenesisValidator, LIMITS, parseGenesis } from "@custos/types";
import { bytesEqual, CustosError, errorMessage, fromHex, type Logger } from "@custos/utils";
import { openChainLedger } from "./chain/openLedger.js";
import { type CommittedBlock, PbftDriver } from "./chain/pbftDriver.js";
import { BlockSync, SerialWriter, topics } from "./chain/sync.js";
import { homePaths, loadConfig, type NodeConfig, parseListen } from "./config.js";
import { FileWal } from "./consensus/fileWal.js";
import { type LastSigned, SignState } from "./consensus/signState.js";
import { Executor } from "./execution/executor.js";
import { senderAddress } from "./execution/senders.js";
import type { Ledger } from "./ledger/ledger.js";
import { openLogs } from "./logs.js";
import { Metrics } from "./metrics.js";
import { Channel, type GossipVerdict, type NetworkPeer, P2pNetwork } from "./p2p/network.js";
import { rpcMethods } from "./rpc/methods.js";
import { RpcServer } from "./rpc/server.js";
import type { WriteSet } from "./state/overlay.js";
import { genesisMemberWrites, readMember } from "./system/members.js";
import { TxPool } from "./txpool/txpool.js";

export interface StartOptions {
  home: string;
  /** Overrides config.json's rpc.listen (port 0 picks a free port). */
  rpcListen?: string;
  /** Overrides the libp2p listen address genesis gives this validator. */
  p2pListen?: string;
  /** The node key's password; else config nodeKey.passwordFile, else CUSTOS_PASSWORD. */
  password?: string;
  /** Run as an observer: sync and verify, never vote, refuse writes. */
  observer?: boolean;
  /** A validator key not in the set yet: sync, and take part once governance has added it. */
  join?: boolean;
  /** Start a validator whose sign-state record is missing or damaged (the operator's explicit choice). */
  allowMissingSignState?: boolean;
}

/**
 * A validator's consensus WAL and sign-state, checked against the ledger: the ledger may not be
 * more than one height below the last vote signed (a vote at height h needs block h - 1), except
 * after `custos node reset-ledger` on a chain with other validators to sync from.
 */
async function openSigning(
  paths: ReturnType<typeof homePaths>,
  ledger: Ledger,
  genesis: Genesis,
  allowMissing: boolean,
  log: Logger,
): Promise<{ wal: FileWal; signState: SignState }> {
  const walExisted = existsSync(paths.wal);
  const signStateExisted = existsSync(paths.signState);
  const wal = await FileWal.open(paths.wal, log.child({ module: "wal" }));
  const records = wal.readAll();
  let signState: SignState;
  try {
    signState = await SignState.open(
      paths.signState,
      {
        ledgerHeight: ledger.head.height,
        walHasRecords: records.length > 0,
        allowMissing,
        walVotes: ownVotes(records),
      },
      log.child({ module: "consensus" }),
    );
  } catch (err) {
    await wal.close();
    throw err;
  }
  const signedAt = signState.lastSigned.height;
  if (ledger.head.height + 1 < signedAt) {
    const reset = existsSync(paths.ledgerReset);
    const alone = ledger.head.validators.length === 1 && genesis.consensus.validators.length === 1;
    if (!reset || alone) {
      await wal.close();
      await signState.close();
      throw new CustosError(
        "LEDGER_BEHIND_SIGNED",
        `the ledger is at height ${ledger.head.height} but this validator signed a vote at height ${signedAt} (${paths.signState}): blocks it committed are gone. ${
          alone
            ? "A chain with one validator cannot sync them back: restore a backup of HOME/data"
            : "Run `custos node reset-ledger --home HOME` to sync the chain again from the other validators"
        }`,
        { height: ledger.head.height, signed: signedAt },
      );
    }
    log.warn("the ledger was reset: syncing from peers; no vote below the last one signed will be signed", {
      height: ledger.head.height,
      lastSigned: signState.describe(),
    });
  }
  if (existsSync(paths.ledgerReset) && ledger.head.height + 1 >= signedAt) {
    // the reset ledger has caught up with what this validator signed: back to the strict check
    await rm(paths.ledgerReset, { force: true });
  }
  if (!walExisted && signStateExisted) {
    log.warn(
      "the consensus WAL is missing: this validator's votes of the height in progress cannot be sent again; the sign-state keeps it from signing anything that conflicts with them",
      {
        path: paths.wal,
        lastSigned: signState.describe(),
      },
    );
  }
  return { wal, signState };
}

/** A refusal at start-up goes to node.log too, with its code and cause, not only to the terminal. */
function startFailed(log: Logger, err: unknown): void {
  const e = err as { code?: string; cause?: unknown };
  log.error("node failed to start", {
    code: e.code ?? "INTERNAL",
    error: errorMessage(err),
    ...(e.cause ? { cause: errorMessage(e.cause) } : {}),
  });
}

function ownVotes(records: readonly Uint8Array[]): LastSigned[] {
  const out: LastSigned[] = [];
  for (const r of records) {
    try {
      const env = decodeEnvelope(r, LIMITS.maxBlockBytes + 1024 * 1024);
      const pos = votePosition(env.body);
      if (pos) out.push({ ...pos, digest: voteDigest(env.body) });
    } catch {
      // a record this version cannot read: its height is in the ledger or the WAL's other records
    }
  }
  return out;
}

async function readGenesis(path: string): Promise<Genesis> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (cause) {
    throw new CustosError("GENESIS_INVALID", `cannot read ${path} as JSON`, {}, { cause });
  }
  return parseGenesis(json);
}

async function nodeKey(
  config: NodeConfig,
  password?: string,
): Promise<{ key: Sm2KeyPair; password: string }> {
  let pw = password;
  if (pw === undefined && config.nodeKey.passwordFile) {
    pw = (await readFile(config.nodeKey.passwordFile, "utf8")).replace(/\r?\n$/, "");
  }
  pw ??= process.env.CUSTOS_PASSWORD;
  if (pw === undefined) {
    throw new CustosError(
      "NO_PASSWORD",
      "the node key needs its password: --password-file FILE or CUSTOS_PASSWORD",
    );
  }
  return { key: await loadKeystoreFile(config.nodeKey.file, pw), password: pw };
}

/** Codes a pool gives a gossiped tx that only a faulty or malicious sender could have caused. */
const SENDER_FAULT = new Set(["TX_MALFORMED", "TX_BAD_SIGNATURE", "TX_TOO_LARGE", "TX_WRONG_CHAIN"]);
const MAX_GOSSIP_TXS = 1024;

/**
 * Signed transactions accepted over RPC go to the other nodes in batches on the txs topic: one
 * gossip message per `flushMs` or per MAX_GOSSIP_TXS transactions, `[txs, batch number]`.
 */
class TxGossip {
  private pending: Uint8Array[] = [];
  private timer: NodeJS.Timeout | undefined;
  private reannouncer: NodeJS.Timeout | undefined;
  private sequence = 0;

  constructor(
    private readonly publish: (data: Uint8Array) => void,
    private readonly flushMs = 10,
  ) {}

  /**
   * While `troubled()` (consensus is changing views, or a validator just came back), announces
   * again every 2 s what stays in the pool (see TxPool.dueForAnnouncement): the peers that missed
   * the first gossip get it, and whoever leads the next view can propose it. In normal operation
   * nothing is gossiped twice.
   */
  start(pool: TxPool, troubled: () => boolean): void {
    this.reannouncer = setInterval(() => {
      if (!troubled()) return;
      for (const t of pool.dueForAnnouncement(Date.now(), MAX_GOSSIP_TXS, 2000)) this.add(t.bytes);
      this.flush();
    }, 1000);
  }

  stop(): void {
    clearInterval(this.reannouncer);
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  add(tx: Uint8Array): void {
    this.pending.push(tx);
    if (this.pending.length >= MAX_GOSSIP_TXS) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    // gossip names a message by its bytes and drops one it has seen: the batch number keeps an
    // announcement of the same transactions again from being taken for the first one
    this.publish(encode([batch, this.sequence]));
    this.sequence = (this.sequence + 1) >>> 0;
  }

  /** A batch from a peer: every tx goes to the pool; one a sender could only have forged rejects it all. */
  static async receive(pool: TxPool, data: Uint8Array): Promise<GossipVerdict> {
    let txs: Uint8Array[];
    try {
      const S = "TxBatch";
      const [list, sequence] = readArray(decode(data, S, LIMITS.maxBlockBytes), fieldAt(S, ""), 2);
      readUint(sequence, fieldAt(S, "sequence"));
      txs = readArray(list, fieldAt(S, "txs"), {
        min: 1,
        max: MAX_GOSSIP_TXS,
      }).map((t, i) => readBytes(t, fieldAt(S, `txs[${i}]`), { max: 1024 * 1024 }));
    } catch {
      return "reject";
    }
    const results = await Promise.allSettled(txs.map((t) => pool.add(t)));
    let added = 0;
    for (const r of results) {
      if (r.status === "fulfilled") added++;
      else if (SENDER_FAULT.has((r.reason as { code?: string }).code ?? "")) return "reject";
    }
    return added > 0 ? "accept" : "ignore";
  }
}

type Role = "validator" | "observer";

/**
 * This node's place: a validator (its SM2 key in the current validator set, genesis's until
 * governance changes it), an observer (its key among the current observers), or, with `join`, a
 * node not in those sets yet: it dials the peers it knows and syncs once a proposal has added it
 * (a validator then takes part in consensus).
 */
function roleOf(
  validators: readonly GenesisValidator[],
  observers: readonly GenesisValidator[],
  key: Sm2KeyPair,
  observer: boolean,
  join: boolean,
): { role: Role; self: number } {
  const v = validators.findIndex((x) => bytesEqual(x.publicKey, key.publicKey));
  const o = observers.findIndex((x) => bytesEqual(x.publicKey, key.publicKey));
  if (observer) {
    if (v >= 0)
      throw new CustosError(
        "ROLE_MISMATCH",
        "this node's key is a validator's; --observer is for an observer's key",
      );
    if (o < 0 && join) return { role: "observer", self: -1 };
    if (o < 0)
      throw new CustosError(
        "NOT_IN_GENESIS",
        `this node's key ${key.address} is not among the observers; add it with custos genesis --observer, or by proposal (custos observer add) and start with --join`,
      );
    return { role: "observer", self: validators.length + o };
  }
  if (v < 0 && join && o < 0) return { role: "validator", self: -1 };
  if (v < 0)
    throw new CustosError(
      "NOT_IN_GENESIS",
      o >= 0
        ? "this node's key is an observer's: start it with --observer"
        : `this node's key ${key.address} is not in the validator set; a node that governance is adding starts with --join`,
    );
  return { role: "validator", self: v };
}

/** Who may connect: the current validators (by their index in the set), then the observers. */
function peersOf(
  validators: readonly GenesisValidator[],
  observers: readonly GenesisValidator[],
): NetworkPeer[] {
  return [
    ...validators.map((v, index) => ({
      index,
      peerId: v.peerId,
      addrs: v.p2p,
      role: "validator" as const,
      name: v.name,
    })),
    ...observers.map((o, k) => ({
      index: validators.length + k,
      peerId: o.peerId,
      addrs: o.p2p,
      role: "observer" as const,
      name: o.name,
    })),
  ];
}

/**
 * The network of a multi-node chain: this node's libp2p key must be the one the validator set
 * (or genesis, for observers) binds to its SM2 key; only current validators and observers may
 * connect. A joining node (self -1) is not listed yet: it dials the validators it knows.
 */
async function openNetwork(
  head: { validators: readonly GenesisValidator[]; observers: readonly GenesisValidator[] },
  config: NodeConfig,
  self: number,
  password: string,
  p2pListen: string | undefined,
  log: Logger,
): Promise<P2pNetwork> {
  const peers = peersOf(head.validators, head.observers);
  const p2p = await loadP2pKeystore(config.p2pKey.file, password);
  const me: NetworkPeer = peers[self] ?? { index: -1, peerId: p2p.peerId, addrs: [], role: "validator" };
  if (me.peerId !== p2p.peerId) {
    throw new CustosError(
      "P2P_KEY_MISMATCH",
      `this node's libp2p key ${p2p.peerId} is not the one genesis binds to its SM2 key (${me.peerId || "none"})`,
    );
  }
  const listen = p2pListen ? [p2pListen] : (config.p2p.listen ?? me.addrs);
  if (listen.length === 0)
    throw new CustosError(
      "CONFIG_INVALID",
      "no libp2p listen address: give --p2p-listen or p2p addresses in genesis",
    );
  return new P2pNetwork(
    { seed: p2p.seed, listen, peers, maxMessageBytes: LIMITS.maxBlockBytes + 1024 * 1024 },
    log,
  );
}

/**
 * A running node: ledger, pool, executor, consensus (validators) or nothing but sync
 * (observers), block sync, network and RPC, started in that order and stopped in reverse. A lost
 * ledger write stops block production and is reported through `onFatal`; the CLI then exits
 * non-zero.
 */
export class CustosNode {
  private fatalHandlers: ((err: Error) => void)[] = [];
  private gossip: TxGossip | undefined;
  private fatal: Error | undefined;

  private constructor(
    readonly genesis: Genesis,
    readonly role: Role,
    readonly rpcUrl: string,
    readonly ledger: Ledger,
    private readonly driver: PbftDriver | undefined,
    readonly sync: BlockSync,
    private readonly rpc: RpcServer,
    private readonly verifier: VerifierPool,
    readonly log: Logger,
    private readonly closeLogs: () => void,
    readonly network?: P2pNetwork,
  ) {}

  private fail(err: Error): void {
    if (this.fatal) return;
    this.fatal = err;
    for (const fn of this.fatalHandlers) fn(err);
  }

  static async start(o: StartOptions): Promise<CustosNode> {
    const config = await loadConfig(o.home);
    const paths = homePaths(o.home);
    const genesis = await readGenesis(paths.genesis);
    const logs = openLogs(paths.logs, config.log);
    const { log, ops } = logs;
    let key: Sm2KeyPair;
    let password: string;
    let ledger: Ledger;
    let role: Role;
    let self: number;
    try {
      selectSm2({ logger: log.child({ module: "crypto" }) });
      ({ key, password } = await nodeKey(config, o.password));
      ledger = await openChainLedger(paths.ledger, genesis, log.child({ module: "ledger" }));
      try {
        const head = ledger.head;
        ({ role, self } = roleOf(head.validators, head.observers, key, o.observer ?? false, o.join ?? false));
      } catch (err) {
        await ledger.close();
        throw err;
      }
    } catch (err) {
      startFailed(log, err);
      logs.close();
      throw err;
    }
    const verifier = new VerifierPool();
    let network: P2pNetwork | undefined;
    let gossipRef: TxGossip | undefined;
    let signingRef: { wal: FileWal; signState: SignState } | undefined;
    try {
      const pool = new TxPool(
        config.pool,
        {
          chainId: genesis.chainId,
          blockLimitWindow: genesis.blockLimitWindow,
          headHeight: () => ledger.head.height,
          // a tx within its blockLimit window can only have been committed in the last window blocks
          isCommitted: async (hash) => ledger.isRecentlyCommitted(hash),
          isMember: async (address) => (await readMember(ledger, address)) !== undefined,
        },
        verifier,
        log.child({ module: "txpool" }),
      );
      const executor = new Executor(genesis, log.child({ module: "executor" }));
      const metrics = new Metrics(
        { height: () => ledger.head.height, poolSize: () => pool.size, poolBytes: () => pool.bytes },
        paths.ledger,
      );
      const signing =
        role === "validator"
          ? await openSigning(paths, ledger, genesis, o.allowMissingSignState ?? false, log)
          : undefined;
      signingRef = signing;
      const driver =
        signing !== undefined
          ? new PbftDriver(
              genesis,
              ledger,
              executor,
              pool,
              verifier,
              signing.wal,
              signing.signState,
              key,
              config.consensus,
              log.child({ module: "consensus" }),
            )
          : undefined;
      const multiNode =
        genesis.consensus.validators.length > 1 ||
        genesis.observers.length > 0 ||
        ledger.head.validators.length > 1 ||
        ledger.head.observers.length > 0 ||
        self < 0;
      if (multiNode) {
        network = await openNetwork(
          ledger.head,
          config,
          self,
          password,
          o.p2pListen,
          log.child({ module: "p2p" }),
        );
      }
      const net = network;
      const gossip = net ? new TxGossip((data) => net.publish(topics(genesis.chainId).txs, data)) : undefined;
      gossipRef = gossip;
      let peersChangedAt = 0;
      if (driver) gossip?.start(pool, () => driver.view > 0 || Date.now() - peersChangedAt < 10_000);
      let rpcRef: RpcServer | undefined;
      const nodeRef: { current?: CustosNode } = {};
      let peerSets = { validators: ledger.head.validators, observers: ledger.head.observers };
      const committed = (c: CommittedBlock, announce: boolean) => {
        const head = ledger.head;
        if (peerSets.validators !== head.validators || peerSets.observers !== head.observers) {
          // governance changed the validator or observer set in this block: new peers from now on
          peerSets = { validators: head.validators, observers: head.observers };
          net?.setPeers(peersOf(head.validators, head.observers));
          log.info("peer set changed", {
            height: head.height,
            validators: head.validators.map((v) => v.name),
            observers: head.observers.map((v) => v.name),
          });
        }
        metrics.blockCommitted(
          c.block.txs.length,
          c.receipts.filter((r) => !r.success).length,
          c.block.header.timestamp,
        );
        if (!announce) pool.remove(c.block.txs); // consensus removes its own
        rpcRef?.publish(c);
        if (announce) net?.publish(topics(genesis.chainId).blocks, encodeCertificate(c.certificate));
      };
      const sync = new BlockSync({
        genesis,
        ledger,
        executor,
        verifier,
        writer: driver ?? new SerialWriter(),
        log: log.child({ module: "sync" }),
        // a validator gives consensus a moment to fill a gap (decisions from its peers) before it
        // syncs; on an idle chain nothing else would bring a restarted validator up to date
        lagBlocks: 1,
        graceMs: role === "validator" ? 1500 : 0,
        onApplied: (c) => committed(c, false),
        onFatal: (err) => nodeRef.current?.fail(err),
      });
      const methods = rpcMethods({
        genesis,
        ledger,
        pool,
        executor,
        role,
        pendingTx: (h) => pool.get(h),
        live: () => ({
          view: driver?.view ?? 0,
          peers: net?.connected ?? 0,
          validatorPeers: net?.connectedPeers().filter((p) => p.role === "validator").length ?? 0,
          syncing: sync.syncing,
          syncTarget: sync.target,
          ...(driver ? { active: driver.active } : {}),
        }),
      });
      // the operations log: every write request, accepted or refused, with its sender
      const send = methods.custos_sendTx as (typeof methods)[string];
      methods.custos_sendTx = {
        scope: send.scope,
        fn: async (params) => {
          try {
            const result = (await send.fn(params)) as { hash: string };
            const stx = pool.get(fromHex(result.hash));
            ops.info("tx accepted", {
              hash: result.hash,
              ...(stx ? { from: senderAddress(stx.tx.sender), to: stx.tx.to, method: stx.tx.method } : {}),
            });
            // gossiped to the other validators: whoever leads the next view proposes it
            if (stx) gossip?.add(stx.bytes);
            return result;
          } catch (err) {
            metrics.txRejected((err as { code?: string }).code ?? "INTERNAL");
            ops.info("tx refused", {
              code: (err as { code?: string }).code ?? "INTERNAL",
              reason: errorMessage(err),
            });
            throw err;
          }
        },
      };
      const listen = parseListen(o.rpcListen ?? config.rpc.listen);
      const rpc = new RpcServer(
        {
          ...listen,
          maxBodyBytes: config.rpc.maxBodyBytes,
          maxBatch: 100,
          rateLimit: config.rpc.rateLimit,
          metrics,
          ...(config.rpc.apiKeys ? { apiKeys: config.rpc.apiKeys } : {}),
          ...(config.rpc.tls ? { tls: config.rpc.tls } : {}),
        },
        methods,
        log.child({ module: "rpc" }),
      );
      rpcRef = rpc;
      if (net) {
        const t = topics(genesis.chainId);
        net.onGossip(t.blocks, (from, data) => sync.onAnnouncement(from, data));
        if (driver) {
          net.onGossip(t.txs, (_from, data) => TxGossip.receive(pool, data));
          net.onMessage((_channel, from, bytes) => driver.receive(bytes, from));
          driver.transport = (e) =>
            e.type === "broadcast"
              ? net.broadcast(Channel.consensus, e.bytes)
              : net.send(Channel.consensus, e.to, e.bytes);
          driver.onInvalid = (peer) => {
            net.disconnect(peer).catch(() => {});
          };
        }
        net.onRequest((from, request) => sync.serve(from, request));
      }
      if (net && driver) {
        // an operator learns from node.log when this validator cannot reach a quorum, and when it can again
        // (the first count, while the peers are still being dialled, is not news)
        let quorate: boolean | undefined;
        net.onPeersChanged = () => {
          peersChangedAt = Date.now();
          const n = ledger.head.validators.length;
          const reachable =
            net.connectedPeers().filter((p) => p.role === "validator").length + (driver.active ? 1 : 0);
          const quorum = n - Math.floor((n - 1) / 3);
          const now = reachable >= quorum;
          if (now === quorate) return;
          if (!now)
            log.warn("quorum lost: no block can commit until more validators are reachable", {
              reachable,
              validators: n,
              quorum,
            });
          else if (quorate === false) log.info("quorum regained", { reachable, validators: n, quorum });
          quorate = now;
        };
      }
      metrics.network = {
        peers: () => net?.connected ?? 0,
        peersDisconnected: () => net?.peersDisconnected ?? 0,
        viewChanges: () => driver?.viewChanges ?? 0,
        syncedBlocks: () => sync.applied,
      };
      const url = await rpc.start();
      driver?.on("block:committed", (c: CommittedBlock) => committed(c, true));
      driver?.on("chain:failed", (err) => nodeRef.current?.fail(err));
      await net?.start();
      driver?.start();
      if (net) sync.start(net);
      log.info("node started", {
        chainId: genesis.chainId,
        role,
        height: ledger.head.height,
        rpc: url,
        address: key.address,
        ...(net ? { p2p: net.addresses } : {}),
      });
      const node = new CustosNode(
        genesis,
        role,
        url,
        ledger,
        driver,
        sync,
        rpc,
        verifier,
        log,
        logs.close,
        net,
      );
      node.gossip = gossip;
      nodeRef.current = node;
      return node;
    } catch (err) {
      startFailed(log, err);
      gossipRef?.stop();
      await network?.stop().catch(() => {});
      await signingRef?.wal.close().catch(() => {});
      await signingRef?.signState.close().catch(() => {});
      await verifier.close();
      await ledger.close();
      logs.close();
      throw err;
    }
  }

  onFatal(fn: (err: Error) => void): void {
    this.fatalHandlers.push(fn);
    if (this.fatal) fn(this.fatal);
  }

  /** Stops in reverse order of start: RPC, network, sync, block production, verifier, ledger. */
  async stop(): Promise<void> {
    this.gossip?.stop();
    await this.rpc.close();
    await this.network?.stop();
    await this.sync.stop();
    await this.driver?.stop();
    await this.verifier.close();
    await this.ledger.close();
    this.log.info("node stopped", { height: this.ledger.head.height });
    this.closeLogs();
  }
}
