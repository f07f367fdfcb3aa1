import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { loadKeystoreFile, loadP2pKeystore, type Sm2KeyPair, selectSm2, VerifierPool } from "@custos/crypto";
import { type Genesis, LIMITS, parseGenesis } from "@custos/types";
import { bytesEqual, CustosError, errorMessage, fromHex, type Logger } from "@custos/utils";
import { type CommittedBlock, PbftDriver } from "./chain/pbftDriver.js";
import { homePaths, loadConfig, type NodeConfig, parseListen } from "./config.js";
import { FileWal } from "./consensus/fileWal.js";
import { Executor } from "./execution/executor.js";
import { senderAddress } from "./execution/senders.js";
import { Ledger } from "./ledger/ledger.js";
import { openLogs } from "./logs.js";
import { Metrics } from "./metrics.js";
import { Channel, P2pNetwork } from "./p2p/network.js";
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

/**
 * The network of a multi-validator chain: this node's libp2p key must be the one genesis binds
 * to its validator key; only the genesis validators may connect.
 */
async function openNetwork(
  genesis: Genesis,
  config: NodeConfig,
  key: Sm2KeyPair,
  password: string,
  p2pListen: string | undefined,
  driver: PbftDriver,
  pool: TxPool,
  log: Logger,
): Promise<P2pNetwork> {
  const validators = genesis.consensus.validators;
  const self = validators.findIndex((v) => bytesEqual(v.publicKey, key.publicKey));
  const me = validators[self];
  const p2p = await loadP2pKeystore(config.p2pKey.file, password);
  if (!me || me.peerId !== p2p.peerId) {
    throw new CustosError(
      "P2P_KEY_MISMATCH",
      `this node's libp2p key ${p2p.peerId} is not the one genesis binds to its validator key (${me?.peerId ?? "none"})`,
    );
  }
  const net = new P2pNetwork(
    {
      seed: p2p.seed,
      listen: p2pListen ? [p2pListen] : me.p2p,
      peers: validators.map((v, index) => ({ index, peerId: v.peerId, addrs: v.p2p })),
      maxMessageBytes: LIMITS.maxBlockBytes + 1024 * 1024,
    },
    log,
  );
  net.onMessage((channel, from, bytes) => {
    if (channel === Channel.consensus) driver.receive(bytes, from);
    else pool.add(bytes).catch(() => {}); // a forwarded tx: admitted here too, or refused for its own reason
  });
  driver.transport = (e) =>
    e.type === "broadcast"
      ? net.broadcast(Channel.consensus, e.bytes)
      : net.send(Channel.consensus, e.to, e.bytes);
  driver.onInvalid = (peer) => {
    net.disconnect(peer).catch(() => {});
  };
  await net.start();
  return net;
}

/**
 * A running node: ledger, pool, executor, block producer and RPC, started in that order and
 * stopped in reverse. A lost ledger write stops block production and is reported through
 * `onFatal`; the CLI then exits non-zero.
 */
export class CustosNode {
  private fatalHandlers: ((err: Error) => void)[] = [];

  private constructor(
    readonly genesis: Genesis,
    readonly rpcUrl: string,
    readonly ledger: Ledger,
    private readonly sealer: PbftDriver,
    private readonly rpc: RpcServer,
    private readonly verifier: VerifierPool,
    readonly log: Logger,
    private readonly closeLogs: () => void,
    readonly network?: P2pNetwork,
  ) {
    sealer.on("chain:failed", (err) => {
      for (const fn of this.fatalHandlers) fn(err);
    });
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
    try {
      selectSm2({ logger: log.child({ module: "crypto" }) });
      ({ key, password } = await nodeKey(config, o.password));
      const writes: WriteSet = new Map();
      genesisMemberWrites(genesis, writes);
      ledger = await Ledger.open(paths.ledger, genesis, writes, log.child({ module: "ledger" }));
    } catch (err) {
      logs.close();
      throw err;
    }
    const verifier = new VerifierPool();
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
      const wal = await FileWal.open(join(paths.ledger, "..", "consensus.wal"), log.child({ module: "wal" }));
      const sealer = new PbftDriver(
        genesis,
        ledger,
        executor,
        pool,
        verifier,
        wal,
        key,
        config.consensus,
        log.child({ module: "consensus" }),
      );
      const methods = rpcMethods({
        genesis,
        ledger,
        pool,
        executor,
        role: "validator",
        pendingTx: (h) => pool.get(h),
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
            // forwarded to the other validators: whoever leads the next view proposes it
            if (stx) network?.broadcast(Channel.tx, stx.bytes);
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
      const network =
        genesis.consensus.validators.length > 1
          ? await openNetwork(
              genesis,
              config,
              key,
              password,
              o.p2pListen,
              sealer,
              pool,
              log.child({ module: "p2p" }),
            )
          : undefined;
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
      const url = await rpc.start();
      sealer.on("block:committed", (c: CommittedBlock) => {
        metrics.blockCommitted(
          c.block.txs.length,
          c.receipts.filter((r) => !r.success).length,
          c.block.header.timestamp,
        );
        rpc.publish(c);
      });
      sealer.start();
      log.info("node started", {
        chainId: genesis.chainId,
        height: ledger.head.height,
        rpc: url,
        validator: key.address,
      });
      return new CustosNode(genesis, url, ledger, sealer, rpc, verifier, log, logs.close, network);
    } catch (err) {
      await verifier.close();
      await ledger.close();
      logs.close();
      throw err;
    }
  }

  onFatal(fn: (err: Error) => void): void {
    this.fatalHandlers.push(fn);
  }

  /** Stops in reverse order of start: RPC, block production, verifier, ledger. */
  async stop(): Promise<void> {
    await this.rpc.close();
    await this.network?.stop();
    await this.sealer.stop();
    await this.verifier.close();
    await this.ledger.close();
    this.log.info("node stopped", { height: this.ledger.head.height });
    this.closeLogs();
  }
}
