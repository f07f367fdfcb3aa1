import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Sm2KeyPair } from "@custos/crypto";
import { selectSm2, VerifierPool } from "@custos/crypto";
import { encodeCertificate, type Genesis } from "@custos/types";
import { bytesEqual, CustosError, type Logger } from "@custos/utils";
import { AuditIndex } from "./audit/auditIndex.js";
import { AuditService } from "./audit/auditService.js";
import { auditRpcMethods } from "./audit/rpc.js";
import { type ChainWriter, SerialWriter } from "./chain/chainWriter.js";
import { chainLedgerSpec, openChainLedger } from "./chain/openLedger.js";
import { type CommittedBlock, PbftDriver } from "./chain/pbftDriver.js";
import { ProposalTxs } from "./chain/proposalTxs.js";
import { BlockSync } from "./chain/sync.js";
import { type HomeErrorCode, homePaths, loadConfig, type NodeConfig, parseListen } from "./config.js";
import { openSigning } from "./consensus/signing.js";
import { armCrashPoints } from "./crashPoint.js";
import { Executor } from "./execution/executor.js";
import {
  encodeNodeHealth,
  HEALTH_REQUEST,
  HealthBoard,
  MAX_HEALTH_BYTES,
  type NodeHealth,
} from "./health.js";
import { loadNodeKey, readGenesis, startFailed } from "./home.js";
import type { Ledger } from "./ledger/ledger.js";
import { writeBufferFor } from "./ledger/writeBuffer.js";
import { openLogs } from "./logs.js";
import { Metrics } from "./metrics.js";
import { OpsLog } from "./opsLog.js";
import { Channel, HEALTH_PROTOCOL, type P2pNetwork } from "./p2p/network.js";
import { openNetwork, peersOf, type Role, roleOf } from "./p2p/peers.js";
import { QuorumWatch } from "./p2p/quorumWatch.js";
import { topics } from "./p2p/topics.js";
import { fetchTxs } from "./p2p/txFetch.js";
import { TxGossip } from "./p2p/txGossip.js";
import { adminMethods } from "./rpc/adminMethods.js";
import { defaultExplorerDir } from "./rpc/explorerAssets.js";
import { MemberSignatures } from "./rpc/memberAuth.js";
import { rpcMethods } from "./rpc/methods.js";
import { RpcServer } from "./rpc/server.js";
import { joinFromSnapshot } from "./snapshot/join.js";
import { SnapshotStore } from "./snapshot/store.js";
import { isRegistered, readMember } from "./system/members.js";
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
  /** An empty ledger starts from the newest verified snapshot the peers offer (config snapshots.join). */
  fromSnapshot?: boolean;
}

/** The parts of a running node (Lodestar's chain modules): made and started by `CustosNode.start`. */
export interface NodeModules {
  genesis: Genesis;
  role: Role;
  log: Logger;
  ledger: Ledger;
  sync: BlockSync;
  rpc: RpcServer;
  driver?: PbftDriver;
  network?: P2pNetwork;
  /** The root signal's owner: aborted first when the node stops. */
  controller: AbortController;
  /** How to stop what was started, in the order of start. */
  closers: (() => Promise<void> | void)[];
}

/**
 * Started parts, stopped in reverse order. A start that fails half-way stops what it had started
 * and rethrows.
 */
class Lifecycle {
  readonly closers: (() => Promise<void> | void)[] = [];

  add<T>(part: T, close: (part: T) => Promise<void> | void): T {
    this.closers.push(() => close(part));
    return part;
  }

  static async closeAll(closers: (() => Promise<void> | void)[], log: Logger): Promise<void> {
    for (const close of [...closers].reverse()) {
      try {
        await close();
      } catch (err) {
        log.warn("a part failed to stop", { error: String(err) });
      }
    }
  }
}

/**
 * A running node: ledger, pool, executor, consensus (validators) or nothing but sync
 * (observers), block sync, network and RPC, started in that order and stopped in reverse. One
 * root AbortController: its signal reaches the I/O that waits (sync's requests) and is aborted
 * first at stop. A lost ledger write stops block production and is reported through `onFatal`;
 * the CLI then exits non-zero.
 */
export class CustosNode {
  private fatalHandlers: ((err: Error) => void)[] = [];
  private fatal: Error | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly options: StartOptions & { rpcUrl: string },
    private readonly modules: NodeModules,
  ) {}

  get genesis(): Genesis {
    return this.modules.genesis;
  }
  get role(): Role {
    return this.modules.role;
  }
  get rpcUrl(): string {
    return this.options.rpcUrl;
  }
  get ledger(): Ledger {
    return this.modules.ledger;
  }
  get sync(): BlockSync {
    return this.modules.sync;
  }
  get network(): P2pNetwork | undefined {
    return this.modules.network;
  }
  get log(): Logger {
    return this.modules.log;
  }

  fail(err: Error): void {
    if (this.fatal) return;
    this.fatal = err;
    // an operator reads the cause in node.log, down to the system's own error (ENOSPC, EIO, EROFS)
    this.modules.log.error("the node stops: a fault it cannot recover from", {
      code: (err as { code?: string }).code,
      error: causeChain(err),
    });
    for (const fn of this.fatalHandlers) fn(err);
  }

  onFatal(fn: (err: Error) => void): void {
    this.fatalHandlers.push(fn);
    if (this.fatal) fn(this.fatal);
  }

  static async start(o: StartOptions): Promise<CustosNode> {
    armCrashPoints();
    const config = await loadConfig(o.home);
    const paths = homePaths(o.home);
    const genesis = await readGenesis(paths.genesis);
    const logs = openLogs(paths.logs, config.log);
    const { log, ops } = logs;
    const life = new Lifecycle();
    life.add(logs, (l) => l.close());
    const controller = new AbortController();
    const nodeRef: { current?: CustosNode } = {};
    try {
      selectSm2({ logger: log.child({ module: "crypto" }) });
      const { key, password } = await loadNodeKey(config, o.password);
      if (
        (o.fromSnapshot ?? config.snapshots.join) &&
        !existsSync(join(paths.ledger, "CURRENT")) &&
        !existsSync(paths.ledgerMark)
      )
        await ledgerFromSnapshot(genesis, config, paths.ledger, key, password, o, log, controller.signal);
      // each node's own memtable size, so that validators do not compact in step (writeBuffer.ts)
      const writeBufferBytes = config.ledger.writeBufferBytes ?? writeBufferFor(key.publicKey);
      const ledger = life.add(
        await openChainLedger(paths.ledger, genesis, log.child({ module: "ledger" }), { writeBufferBytes }),
        (l) => l.close(),
      );
      // the audit index: caught up from the ledger in the background, then fed after each commit
      const auditIndex = config.audit.index
        ? life.add(
            await AuditIndex.open(
              { dir: paths.audit, genesis, writeBufferBytes },
              { chain: ledger, log: log.child({ module: "audit" }) },
            ),
            (i) => i.close(),
          )
        : undefined;
      auditIndex?.start();
      const head = ledger.head;
      const { role, self } = roleOf(
        head.validators,
        head.observers,
        key,
        o.observer ?? false,
        o.join ?? false,
      );
      if (role === "observer" && config.ledger.keepBlocks > 0)
        throw new CustosError<HomeErrorCode>(
          "CONFIG_INVALID",
          "config.json ledger.keepBlocks: observers keep every block (they serve audits and trace every fen); remove it",
        );
      if (config.ledger.keepBlocks > 0 && config.ledger.keepBlocks < genesis.blockLimitWindow)
        throw new CustosError<HomeErrorCode>(
          "CONFIG_INVALID",
          `config.json ledger.keepBlocks: at least the chain's blockLimitWindow (${genesis.blockLimitWindow}), the blocks a transaction could be replayed into`,
        );
      const snapshots = life.add(
        await new SnapshotStore(
          paths.snapshots,
          config.snapshots,
          ledger,
          genesis.chainId,
          log.child({ module: "snapshot" }),
        ).open(),
        (s) => s.stop(),
      );
      const verifier = life.add(new VerifierPool(), (v) => v.close());
      const pool = new TxPool(
        config.pool,
        {
          chainId: genesis.chainId,
          blockLimitWindow: genesis.blockLimitWindow,
          headHeight: () => ledger.head.height,
          // a tx within its blockLimit window can only have been committed in the last window blocks
          isCommitted: async (hash) => ledger.isRecentlyCommitted(hash),
          isMember: (address) => isRegistered(ledger, address),
        },
        verifier,
        log.child({ module: "txpool" }),
      );
      const executor = new Executor(genesis, log.child({ module: "executor" }));
      const metrics = new Metrics(
        { height: () => ledger.head.height, poolSize: () => pool.size, poolBytes: () => pool.bytes },
        paths.ledger,
      );
      life.add(new OpsLog(pool, ops, metrics), (l) => l.stop()).start();

      const multiNode =
        genesis.consensus.validators.length > 1 ||
        genesis.observers.length > 0 ||
        head.validators.length > 1 ||
        head.observers.length > 0 ||
        self < 0;
      const net = multiNode
        ? await openNetwork(
            head,
            config,
            {
              self,
              key,
              password,
              chainId: genesis.chainId,
              secure: genesis.p2p.secure,
              ...(o.p2pListen ? { p2pListen: o.p2pListen } : {}),
            },
            log.child({ module: "p2p" }),
          )
        : undefined;

      const signing =
        role === "validator"
          ? life.add(await openSigning(paths, ledger, genesis, o.allowMissingSignState ?? false, log), (s) =>
              Promise.all([s.wal.close(), s.signState.close()]).then(() => {}),
            )
          : undefined;
      const proposalTxs =
        signing === undefined
          ? undefined
          : life.add(new ProposalTxs(paths.proposalTxs, log.child({ module: "consensus" })), (p) =>
              p.close(),
            );
      if (proposalTxs) {
        // the last proposal's transactions back into the pool before consensus reads its WAL
        for (const bytes of await proposalTxs.load()) await pool.add(bytes, "gossip").catch(() => {});
      }
      // made below, with the driver's view: a leader sends what waits for gossip before it proposes
      let gossip: TxGossip | undefined;
      const driver =
        signing === undefined
          ? undefined
          : new PbftDriver(
              { genesis, ...config.consensus },
              {
                ledger,
                executor,
                pool,
                verifier,
                wal: signing.wal,
                signState: signing.signState,
                key,
                transport: {
                  send: (e) =>
                    e.type === "broadcast"
                      ? net?.broadcast(Channel.consensus, e.bytes)
                      : net?.send(Channel.consensus, e.to, e.bytes),
                  penalize: (peer) => {
                    net?.disconnect(peer).catch(() => {});
                  },
                  fetchTxs: async (hashes, from) =>
                    net ? fetchTxs(net, hashes, from, controller.signal, log.child({ module: "p2p" })) : [],
                  flushTxs: () => gossip?.flush(),
                },
                log: log.child({ module: "consensus" }),
                ...(proposalTxs ? { proposalTxs } : {}),
              },
            );

      const quorum =
        net && driver
          ? new QuorumWatch(
              net,
              { validators: () => ledger.head.validators.length, selfVotes: () => driver.active },
              log.child({ module: "p2p" }),
            )
          : undefined;
      gossip = net
        ? new TxGossip(
            {
              publish: (data) => net.broadcastTxs(data, topics(genesis.chainId).txs),
              troubled: () => (driver?.view ?? 0) > 0 || Date.now() - (quorum?.changedAt ?? 0) < 10_000,
            },
            pool,
          )
        : undefined;

      let rpc: RpcServer | undefined;
      let peerSets = { validators: head.validators, observers: head.observers };
      /** After every block, from consensus (`announce`: tell the peers) or from sync. */
      let hold: (() => void) | undefined;
      let pruning: Promise<unknown> | undefined;
      const committed = (c: CommittedBlock, announce: boolean) => {
        hold?.();
        const now = ledger.head;
        if (peerSets.validators !== now.validators || peerSets.observers !== now.observers) {
          // governance changed the validator or observer set in this block: new peers from now on
          peerSets = { validators: now.validators, observers: now.observers };
          net?.setPeers(peersOf(now.validators, now.observers));
          log.info("peer set changed", {
            height: now.height,
            validators: now.validators.map((v) => v.name),
            observers: now.observers.map((v) => v.name),
          });
        }
        metrics.blockCommitted(
          c.block.txs.length,
          c.receipts.filter((r) => !r.success).length,
          c.block.header.timestamp,
        );
        if (!announce) pool.remove(c.block.txs); // consensus removes its own
        auditIndex?.committed(c.block, c.receipts);
        rpc?.publish(c);
        snapshots.afterCommit(c.block.header.height);
        // in runs of 64 blocks or more, not one block per commit
        if (
          config.ledger.keepBlocks > 0 &&
          !pruning &&
          ledger.head.height - config.ledger.keepBlocks - ledger.base >= 64
        )
          pruning = ledger
            .prune(config.ledger.keepBlocks)
            .catch((err) => log.error("pruning failed", { error: (err as Error).message }))
            .finally(() => {
              pruning = undefined;
            });
        if (announce) net?.publish(topics(genesis.chainId).blocks, encodeCertificate(c.certificate));
      };
      const writer: ChainWriter = driver ?? new SerialWriter();
      /** The chain's other nodes (validators and observers), connected or not. */
      const otherNodes = () => {
        const connected = new Set(net?.connectedPeers().map((p) => p.peerId) ?? []);
        return (net?.knownPeers() ?? [])
          .filter((p) => p.peerId !== net?.peerId)
          .map((p) => ({
            index: p.index,
            name: p.name ?? `peer-${p.index}`,
            role: p.role,
            peerId: p.peerId,
            connected: connected.has(p.peerId),
          }));
      };
      const localHealth = async (): Promise<NodeHealth> => {
        const cpu = process.cpuUsage();
        const mem = process.memoryUsage();
        return {
          role,
          height: ledger.head.height,
          headTime: ledger.head.header.timestamp,
          view: driver?.view ?? 0,
          peers: net?.connected ?? 0,
          pool: pool.size,
          viewChanges: driver?.viewChanges ?? 0,
          cpuMs: (cpu.user + cpu.system) / 1000,
          rssBytes: mem.rss,
          heapBytes: mem.heapUsed,
          diskBytes: await metrics.diskBytes(),
          syncing: sync.syncing,
          uptimeSeconds: process.uptime(),
        };
      };
      const health = new HealthBoard({
        // its name in the set that holds its key (a validator's, or an observer's)
        name:
          head.validators.find((v) => bytesEqual(v.publicKey, key.publicKey))?.name ??
          head.observers.find((v) => bytesEqual(v.publicKey, key.publicKey))?.name ??
          "this node",
        local: localHealth,
        peers: otherNodes,
        ask: async (index, signal) => {
          if (!net) return undefined;
          const [frame] = await net.request(index, HEALTH_REQUEST, 1, {
            signal,
            maxBytes: MAX_HEALTH_BYTES,
            protocol: HEALTH_PROTOCOL,
          });
          return frame;
        },
      });
      const sync = new BlockSync({
        genesis,
        ledger,
        executor,
        verifier,
        writer,
        log: log.child({ module: "sync" }),
        signal: controller.signal,
        pendingTx: (h) => pool.get(h)?.bytes,
        snapshots,
        health: async () => encodeNodeHealth(await localHealth()),
        // a validator gives consensus a moment to fill a gap (decisions from its peers) before it
        // syncs; on an idle chain nothing else would bring a restarted validator up to date
        lagBlocks: 1,
        graceMs: role === "validator" ? 1500 : 0,
        onApplied: (c) => committed(c, false),
        onFatal: (err) => nodeRef.current?.fail(err),
      });
      const methods = {
        ...adminMethods({ ledger, genesis, home: o.home, log: log.child({ module: "backup" }), snapshots }),
        ...rpcMethods({
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
          peers: () =>
            otherNodes().map(({ index, ...p }) => ({ ...p, height: sync.peerHeight(index) ?? null })),
          nodes: () => health.rows(),
        }),
      };
      Object.assign(
        methods,
        auditRpcMethods(
          auditIndex && new AuditService({ index: auditIndex, ledger, genesis }),
          genesis.ecny.largeTxThreshold,
        ),
      );
      rpc = new RpcServer(
        {
          ...parseListen(o.rpcListen ?? config.rpc.listen),
          maxBodyBytes: config.rpc.maxBodyBytes,
          maxBatch: 100,
          rateLimit: config.rpc.rateLimit,
          metrics,
          explorerDir: process.env.CUSTOS_EXPLORER_DIR || defaultExplorerDir(),
          ...(config.rpc.apiKeys ? { apiKeys: config.rpc.apiKeys } : {}),
          chainId: genesis.chainId,
          ...(config.rpc.memberSignatures
            ? {
                memberSignatures: new MemberSignatures(
                  { chainId: genesis.chainId, windowMs: config.rpc.memberSignatures.windowMs },
                  async (address) => (await readMember(ledger, address))?.publicKey,
                ),
              }
            : {}),
          ...(config.rpc.tls ? { tls: config.rpc.tls } : {}),
        },
        methods,
        log.child({ module: "rpc" }),
      );
      if (net) {
        const t = topics(genesis.chainId);
        net.onGossip(t.blocks, (from, data) => sync.onAnnouncement(from, data));
        const txs = gossip;
        if (driver && txs) {
          // validators of an earlier version still gossip their transactions
          net.onGossip(t.txs, (_from, data) => txs.receive(data));
          net.onMessage((channel, from, bytes) =>
            channel === Channel.consensus ? driver.receive(bytes, from) : txs.receive(bytes),
          );
        }
        net.onRequest((from, request) => sync.serve(from, request));
        net.onHealth(async () => encodeNodeHealth(await localHealth()));
      }
      metrics.network = {
        peers: () => net?.connected ?? 0,
        peersDisconnected: () => net?.peersDisconnected ?? 0,
        secureRefused: () => net?.secureRefused ?? new Map(),
        viewChanges: () => driver?.viewChanges ?? 0,
        proposalsRefused: () => driver?.proposalsRefused ?? 0,
        fetchedTxs: () => driver?.fetchedTxs ?? 0,
        syncedBlocks: () => sync.applied,
      };

      // start, in order; stop is the reverse
      const server = rpc;
      const url = await life.add(server, (r) => r.close()).start();
      if (driver) {
        driver.on("block:committed", (c: CommittedBlock) => committed(c, true));
        driver.on("chain:failed", (err) => nodeRef.current?.fail(err));
      }
      if (net) {
        quorum?.start();
        await life.add(net, (n) => n.stop()).start();
      }
      if (driver) {
        life.add(driver, (d) => d.stop());
        const alone = ledger.head.validators.length === 1;
        if (existsSync(paths.restored) && alone) {
          log.warn(
            "restored from a backup on a chain with one validator: it goes on from the backup's height",
            {
              height: ledger.head.height,
            },
          );
          void rm(paths.restored, { force: true });
          driver.start();
        } else if (existsSync(paths.restored)) {
          // restored from a backup: what this validator signed after the backup is unknown here,
          // so it takes part only once it has caught up and seen the others commit a block more
          // (every height it could have voted at is decided by then; the sign guard does the rest)
          log.warn("restored from a backup: catching up with the peers before signing anything", {
            height: ledger.head.height,
          });
          let caughtUpAt: number | undefined;
          const timer = setInterval(() => hold?.(), 1000);
          life.add(timer, (t) => clearInterval(t));
          hold = () => {
            const now = ledger.head.height;
            if (caughtUpAt === undefined) {
              if (sync.peersHeard > 0 && sync.target <= now) caughtUpAt = now;
              return;
            }
            if (now <= caughtUpAt) return;
            hold = undefined;
            clearInterval(timer);
            driver.start();
            void rm(paths.restored, { force: true });
            log.info("caught up after the restore: taking part in consensus", { height: now });
          };
        } else driver.start();
        if (gossip) life.add(gossip, (g) => g.stop()).start();
      }
      if (net) life.add(sync, (s) => s.stop()).start(net);
      log.info("node started", {
        chainId: genesis.chainId,
        role,
        height: ledger.head.height,
        rpc: url,
        address: key.address,
        ...(net ? { p2p: net.addresses } : {}),
      });
      const node = new CustosNode(
        { ...o, rpcUrl: url },
        {
          genesis,
          role,
          log,
          ledger,
          sync,
          rpc: server,
          ...(driver ? { driver } : {}),
          ...(net ? { network: net } : {}),
          controller,
          closers: life.closers,
        },
      );
      nodeRef.current = node;
      return node;
    } catch (err) {
      startFailed(log, err);
      controller.abort(new CustosError("NODE_STOPPING", "the node did not start"));
      await Lifecycle.closeAll(life.closers, log);
      throw err;
    }
  }

  /** Aborts the root signal, then stops the parts in reverse order of start. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const m = this.modules;
      m.controller.abort(new CustosError("NODE_STOPPING", "the node is stopping"));
      const height = m.ledger.head.height;
      const logsClose = m.closers[0];
      await Lifecycle.closeAll(m.closers.slice(1), m.log);
      m.log.info("node stopped", { height });
      await logsClose?.();
    })();
    return this.stopping;
  }
}

/**
 * Creates an empty ledger from a peer's snapshot: a network of its own (the peers genesis names,
 * this node's identity) for as long as the fetch takes, then closed; the node then starts on the
 * ledger as usual and syncs the blocks after the snapshot.
 */
async function ledgerFromSnapshot(
  genesis: Genesis,
  config: NodeConfig,
  dir: string,
  key: Sm2KeyPair,
  password: string,
  o: StartOptions,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const sets = { validators: genesis.consensus.validators, observers: genesis.observers };
  let self = -1;
  try {
    self = roleOf(sets.validators, sets.observers, key, o.observer ?? false, o.join ?? false).self;
  } catch {
    // not in genesis: a node that governance added later; it dials the genesis peers as a stranger
  }
  const plog = log.child({ module: "snapshot" });
  const net = await openNetwork(
    sets,
    config,
    {
      self,
      key,
      password,
      chainId: genesis.chainId,
      secure: genesis.p2p.secure,
      ...(o.p2pListen ? { p2pListen: o.p2pListen } : {}),
    },
    log.child({ module: "p2p" }),
  );
  await net.start();
  try {
    plog.info("starting from a snapshot: asking the peers", { peers: net.connected });
    await joinFromSnapshot({ genesis, ledger: chainLedgerSpec(dir, genesis, plog), net, log: plog, signal });
  } finally {
    await net.stop();
  }
}

/** "message (CODE): cause's message (CODE): ..." down the chain of causes, at most 5 deep. */
export function causeChain(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    const msg = e instanceof Error ? e.message : String(e);
    parts.push(typeof code === "string" && !msg.includes(code) ? `${msg} (${code})` : msg);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ");
}
