import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

const INTERVAL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await dirBytes(p);
    else if (e.isFile()) total += (await stat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/**
 * The node's metrics in the Prometheus text format (version 0.0.4). Counters only grow;
 * gauges are read when scraped.
 */
export class Metrics {
  blocksCommitted = 0;
  txsCommitted = 0;
  txsFailed = 0;
  private readonly rejected = new Map<string, number>();
  private readonly rpcRequests = new Map<string, number>();
  private readonly intervalCounts = INTERVAL_BUCKETS.map(() => 0);
  private intervalSum = 0;
  private intervalCount = 0;
  private lastBlockAt: number | undefined;

  /** Read at scrape time; set once the network, consensus and sync exist. */
  network: {
    peers: () => number;
    peersDisconnected: () => number;
    /** Handshakes and records refused by the national-algorithm transport, by code. */
    secureRefused?: () => ReadonlyMap<string, number>;
    viewChanges: () => number;
    /** Proposals this validator refused to vote for; proposed transactions it had to fetch. */
    proposalsRefused?: () => number;
    fetchedTxs?: () => number;
    syncedBlocks: () => number;
  } = { peers: () => 0, peersDisconnected: () => 0, viewChanges: () => 0, syncedBlocks: () => 0 };

  constructor(
    private readonly gauges: { height: () => number; poolSize: () => number; poolBytes: () => number },
    private readonly ledgerDir: string,
  ) {}

  private disk: { at: number; bytes: Promise<number> } | undefined;

  /** The ledger's bytes on disk, walked at most every 5 s (a dashboard polls often). */
  diskBytes(): Promise<number> {
    if (!this.disk || Date.now() - this.disk.at >= 5000)
      this.disk = { at: Date.now(), bytes: dirBytes(this.ledgerDir) };
    return this.disk.bytes;
  }

  blockCommitted(txs: number, failed: number, timestamp: number): void {
    this.blocksCommitted++;
    this.txsCommitted += txs;
    this.txsFailed += failed;
    if (this.lastBlockAt !== undefined) {
      const s = Math.max(0, timestamp - this.lastBlockAt) / 1000;
      this.intervalSum += s;
      this.intervalCount++;
      INTERVAL_BUCKETS.forEach((b, i) => {
        if (s <= b) this.intervalCounts[i] = (this.intervalCounts[i] as number) + 1;
      });
    }
    this.lastBlockAt = timestamp;
  }

  txRejected(code: string): void {
    this.rejected.set(code, (this.rejected.get(code) ?? 0) + 1);
  }

  /** One JSON-RPC request: `method` is a method this node serves or "other" (bounded labels). */
  rpcRequest(method: string, outcome: "ok" | "error" | "refused" | "aborted"): void {
    const key = `method="${method}",outcome="${outcome}"`;
    this.rpcRequests.set(key, (this.rpcRequests.get(key) ?? 0) + 1);
  }

  async render(): Promise<string> {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, lines: string[]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    };
    const one = (name: string, type: string, help: string, value: number) =>
      metric(name, type, help, [`${name} ${value}`]);
    one("custos_block_height", "gauge", "Height of the latest committed block.", this.gauges.height());
    one("custos_blocks_committed_total", "counter", "Blocks committed since start.", this.blocksCommitted);
    one(
      "custos_txs_committed_total",
      "counter",
      "Transactions committed since start (successful or failed).",
      this.txsCommitted,
    );
    one(
      "custos_txs_failed_total",
      "counter",
      "Committed transactions whose receipt is a failure.",
      this.txsFailed,
    );
    one("custos_txpool_size", "gauge", "Transactions waiting in the pool.", this.gauges.poolSize());
    one(
      "custos_txpool_bytes",
      "gauge",
      "Bytes of transactions waiting in the pool.",
      this.gauges.poolBytes(),
    );
    metric(
      "custos_tx_rejected_total",
      "counter",
      "Transactions refused at admission, by error code.",
      [...this.rejected].map(([code, n]) => `custos_tx_rejected_total{code="${code}"} ${n}`),
    );
    metric("custos_block_interval_seconds", "histogram", "Time between consecutive committed blocks.", [
      ...INTERVAL_BUCKETS.map(
        (b, i) => `custos_block_interval_seconds_bucket{le="${b}"} ${this.intervalCounts[i]}`,
      ),
      `custos_block_interval_seconds_bucket{le="+Inf"} ${this.intervalCount}`,
      `custos_block_interval_seconds_sum ${this.intervalSum}`,
      `custos_block_interval_seconds_count ${this.intervalCount}`,
    ]);
    metric(
      "custos_rpc_requests_total",
      "counter",
      "JSON-RPC requests by method (other: a name this node does not serve) and outcome (ok, error, refused, aborted).",
      [...this.rpcRequests].map(([labels, n]) => `custos_rpc_requests_total{${labels}} ${n}`),
    );
    one("custos_p2p_peers", "gauge", "Permissioned peers connected over libp2p.", this.network.peers());
    one(
      "custos_p2p_peers_disconnected_total",
      "counter",
      "Peers hung up on for sending invalid data (garbage, oversized, forged).",
      this.network.peersDisconnected(),
    );
    metric(
      "custos_p2p_secure_refused_total",
      "counter",
      "Connections the national-algorithm transport refused, by code (SM_PEER_NOT_ALLOWED, SM_RECORD_MAC, ...).",
      [...(this.network.secureRefused?.() ?? [])].map(
        ([code, n]) => `custos_p2p_secure_refused_total{code="${code}"} ${n}`,
      ),
    );
    one(
      "custos_consensus_view_changes_total",
      "counter",
      "Views this validator moved past (a leader that did not deliver in time).",
      this.network.viewChanges(),
    );
    one(
      "custos_consensus_proposals_refused_total",
      "counter",
      "Proposals of others this validator refused to vote for (block rules, block time, signatures, re-execution).",
      this.network.proposalsRefused?.() ?? 0,
    );
    one(
      "custos_consensus_fetched_txs_total",
      "counter",
      "Proposed transactions this validator's pool lacked and fetched from peers.",
      this.network.fetchedTxs?.() ?? 0,
    );
    one(
      "custos_sync_blocks_total",
      "counter",
      "Blocks fetched, verified and stored by block sync.",
      this.network.syncedBlocks(),
    );
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    one(
      "process_cpu_seconds_total",
      "counter",
      "User and system CPU time of the node process.",
      (cpu.user + cpu.system) / 1e6,
    );
    one("process_resident_memory_bytes", "gauge", "Resident memory of the node process.", mem.rss);
    one("nodejs_heap_used_bytes", "gauge", "V8 heap in use.", mem.heapUsed);
    one(
      "custos_ledger_disk_bytes",
      "gauge",
      "Bytes used by the ledger's LevelDB files.",
      await this.diskBytes(),
    );
    return `${out.join("\n")}\n`;
  }
}
