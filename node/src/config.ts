import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CustosError } from "@custos/utils";
import { MAX_WRITE_BUFFER, MIN_WRITE_BUFFER } from "./ledger/writeBuffer.js";
import type { ApiKey } from "./rpc/server.js";
import { DEFAULT_POOL_OPTIONS, type TxPoolOptions } from "./txpool/txpool.js";

/** Why a node home cannot be used (config.json, genesis.json, the key's password). */
export type HomeErrorCode = "CONFIG_INVALID" | "GENESIS_INVALID" | "NO_PASSWORD";

/** HOME/config.json: how this node runs (what the chain is lives in genesis.json). */
export interface NodeConfig {
  rpc: {
    listen: string;
    maxBodyBytes: number;
    rateLimit: number;
    apiKeys?: ApiKey[];
    tls?: { certFile: string; keyFile: string };
    /**
     * Requests signed with a member's SM2 key (X-Custos-* headers): accepted when enabled, as that
     * member with the read and write scopes; the timestamp must be within windowMs of the node's
     * clock and a nonce is spent for that long.
     */
    memberSignatures?: { windowMs: number };
  };
  pool: TxPoolOptions;
  /**
   * PBFT view timeouts: view v waits baseTimeoutMs * 2^v, at most maxTimeoutMs. maxClockDriftMs:
   * a proposal whose timestamp is further ahead of this node's clock gets no vote (unless it is
   * the smallest the chain allows, its head's time + 1 ms).
   */
  consensus: { baseTimeoutMs: number; maxTimeoutMs: number; maxClockDriftMs: number };
  nodeKey: { file: string; passwordFile?: string };
  /**
   * A separate libp2p key (Ed25519, encrypted with the node key's password) of a home made before
   * issue 19; absent: the libp2p key is derived from the node key (`p2pKeyFromNodeKey`).
   */
  p2pKey?: { file: string };
  /**
   * Where libp2p listens (e.g. /ip4/0.0.0.0/tcp/30300 behind NAT); default: this node's own
   * addresses in genesis. `--p2p-listen` overrides both. `dial` (by peer id): where this node
   * dials that peer instead of the addresses genesis gives it, e.g. through a relay or, on a
   * testnet with faults, through the link proxy that `custos testnet up --faults` runs.
   */
  p2p: { listen?: string[]; dial?: Record<string, string[]> };
  log: {
    level: "trace" | "debug" | "info" | "warn" | "error";
    maxFileBytes: number;
    keepFiles: number;
    retentionDays: number;
  };
  /** The audit index in HOME/data/audit (DESIGN.md §7a); `index: false` runs without it (no audit_* RPC). */
  audit: { index: boolean };
  /**
   * State snapshots (issue 18): one every `interval` blocks (0: none), the newest `keep` kept in
   * data/snapshots and served to peers; `join`: a node whose ledger is empty starts from the
   * newest snapshot its peers offer instead of replaying from genesis (also `--from-snapshot`).
   */
  snapshots: { interval: number; keep: number; join: boolean };
  /**
   * `keepBlocks` (0: all): a validator deletes blocks older than that many below its head.
   * Observers keep every block (they serve audits), so they refuse it.
   */
  ledger: {
    keepBlocks: number;
    /**
     * LevelDB's memtable for the ledger and the audit index, in bytes (1-256 MiB). Absent: 3-5
     * MiB, fixed by this node's key (`writeBufferFor`), so that validators, which write the same
     * blocks at the same heights, do not flush and compact all at the same moment.
     */
    writeBufferBytes?: number;
  };
}

export const DEFAULT_CONFIG: NodeConfig = {
  rpc: { listen: "127.0.0.1:8545", maxBodyBytes: 1024 * 1024, rateLimit: 0 },
  pool: DEFAULT_POOL_OPTIONS,
  consensus: { baseTimeoutMs: 3000, maxTimeoutMs: 30_000, maxClockDriftMs: 10_000 },
  nodeKey: { file: "keys/node.json" },
  p2p: {},
  log: { level: "info", maxFileBytes: 50 * 1024 * 1024, keepFiles: 10, retentionDays: 180 },
  audit: { index: true },
  snapshots: { interval: 10_000, keep: 2, join: false },
  ledger: { keepBlocks: 0 },
};

/** Where homes made before issue 19 keep their separate libp2p key. */
const LEGACY_P2P_KEY = "keys/p2p.json";

export const homePaths = (home: string) => ({
  config: join(home, "config.json"),
  genesis: join(home, "genesis.json"),
  ledger: join(home, "data", "ledger"),
  /** What the ledger committed last (the ledger never opens below it). */
  ledgerMark: join(home, "data", "ledger.head"),
  wal: join(home, "data", "consensus.wal"),
  /** The transactions of the block last proposed or voted for (chain/proposalTxs.ts). */
  proposalTxs: join(home, "data", "consensus.txs"),
  /** What this validator last signed (never sign a conflicting vote). */
  signState: join(home, "data", "sign-state"),
  /** The audit index (derived from the ledger; rebuilt when missing). */
  audit: join(home, "data", "audit"),
  /** Written by `custos node reset-ledger`: the ledger was moved aside and syncs again. */
  ledgerReset: join(home, "data", "ledger.reset.json"),
  /** Written by `custos restore`: a validator catches up with its peers before it signs. */
  restored: join(home, "data", "restored.json"),
  /** State snapshots this node took (and serves). */
  snapshots: join(home, "data", "snapshots"),
  logs: join(home, "logs"),
});

function bad(field: string, why: string): CustosError {
  return new CustosError<HomeErrorCode>("CONFIG_INVALID", `config.json ${field}: ${why}`, { field });
}

const MULTIADDR_RE = /^\/(ip4|ip6|dns4|dns6|dns)\/[^/\s]{1,253}\/tcp\/\d{1,5}$/;

function p2pDial(v: unknown): { dial?: Record<string, string[]> } {
  if (v === undefined) return {};
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw bad("p2p.dial", "expected an object: peer id -> list of multiaddrs");
  const dial: Record<string, string[]> = {};
  for (const [peerId, addrs] of Object.entries(v)) {
    if (
      !/^[1-9A-HJ-NP-Za-km-z]{20,80}$/.test(peerId) ||
      !Array.isArray(addrs) ||
      addrs.length === 0 ||
      addrs.some((a) => typeof a !== "string" || !MULTIADDR_RE.test(a))
    )
      throw bad(
        `p2p.dial.${peerId}`,
        "expected a peer id -> a non-empty list of multiaddrs like /ip4/127.0.0.1/tcp/30300",
      );
    dial[peerId] = addrs as string[];
  }
  return { dial };
}

function p2pListen(v: unknown): { listen?: string[]; dial?: Record<string, string[]> } {
  if (v === undefined) return {};
  const dial = p2pDial((v as { dial?: unknown } | null)?.dial);
  const listen = (v as { listen?: unknown } | null)?.listen;
  if (listen === undefined) return dial;
  if (
    !Array.isArray(listen) ||
    listen.length === 0 ||
    listen.some((a) => typeof a !== "string" || !MULTIADDR_RE.test(a))
  )
    throw bad("p2p.listen", "expected a non-empty list of multiaddrs like /ip4/0.0.0.0/tcp/30300");
  return { listen: listen as string[], ...dial };
}

export function parseListen(v: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[2]) : -1;
  if (!m || port > 65535) throw bad("rpc.listen", `expected HOST:PORT, got ${JSON.stringify(v)}`);
  return { host: (m[1] as string).replace(/^\[|\]$/g, ""), port };
}

function posInt(v: unknown, field: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
    throw bad(field, "expected a non-negative integer");
  return v;
}

function seconds(v: unknown, field: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 3600)
    throw bad(field, "expected a number of seconds from 0 to 3600");
  return v;
}

function writeBufferBytes(v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < MIN_WRITE_BUFFER || v > MAX_WRITE_BUFFER)
    throw bad("ledger.writeBufferBytes", `expected bytes from ${MIN_WRITE_BUFFER} to ${MAX_WRITE_BUFFER}`);
  return v;
}

/** Reads and validates HOME/config.json; missing fields take their defaults. */
export async function loadConfig(home: string): Promise<NodeConfig> {
  let raw: Record<string, unknown> = {};
  try {
    raw = JSON.parse(await readFile(homePaths(home).config, "utf8"));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT")
      throw bad("", `unreadable or not JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad("", "expected an object");
  const rpc = (raw.rpc ?? {}) as Record<string, unknown>;
  const pool = (raw.pool ?? {}) as Record<string, unknown>;
  const key = (raw.nodeKey ?? {}) as Record<string, unknown>;
  const log = (raw.log ?? {}) as Record<string, unknown>;
  const cons = (raw.consensus ?? {}) as Record<string, unknown>;
  const p2pKey = (raw.p2pKey ?? {}) as Record<string, unknown>;
  const audit = (raw.audit ?? {}) as Record<string, unknown>;
  if (audit.index !== undefined && typeof audit.index !== "boolean")
    throw bad("audit.index", "expected true or false");
  const snaps = (raw.snapshots ?? {}) as Record<string, unknown>;
  const ledgerIn = (raw.ledger ?? {}) as Record<string, unknown>;
  if (snaps.join !== undefined && typeof snaps.join !== "boolean")
    throw bad("snapshots.join", "expected true or false");
  const listen = typeof rpc.listen === "string" ? rpc.listen : DEFAULT_CONFIG.rpc.listen;
  parseListen(listen);
  let apiKeys: ApiKey[] | undefined;
  if (rpc.apiKeys !== undefined) {
    if (!Array.isArray(rpc.apiKeys)) throw bad("rpc.apiKeys", "expected an array");
    apiKeys = rpc.apiKeys.map((k, i) => {
      const o = k as Record<string, unknown>;
      const scopes = o.scopes;
      if (typeof o.key !== "string" || o.key.length < 16)
        throw bad(`rpc.apiKeys[${i}].key`, "expected a string of 16+ characters");
      if (!Array.isArray(scopes) || scopes.some((s) => s !== "read" && s !== "write" && s !== "admin")) {
        throw bad(`rpc.apiKeys[${i}].scopes`, 'expected an array of "read", "write", "admin"');
      }
      return { key: o.key, scopes, ...(typeof o.name === "string" ? { name: o.name } : {}) } as ApiKey;
    });
  }
  const sigIn = rpc.memberSignatures as Record<string, unknown> | undefined;
  if (
    sigIn !== undefined &&
    (typeof sigIn !== "object" || sigIn === null || (sigIn.enabled !== true && sigIn.enabled !== false))
  )
    throw bad("rpc.memberSignatures", "expected {enabled: true|false, windowMs?: milliseconds}");
  const tlsIn = rpc.tls as Record<string, unknown> | undefined;
  if (tlsIn !== undefined && (typeof tlsIn.certFile !== "string" || typeof tlsIn.keyFile !== "string")) {
    throw bad("rpc.tls", "expected {certFile, keyFile}");
  }
  const level = log.level ?? DEFAULT_CONFIG.log.level;
  if (!["trace", "debug", "info", "warn", "error"].includes(level as string))
    throw bad("log.level", "expected trace|debug|info|warn|error");
  return {
    rpc: {
      listen,
      maxBodyBytes: posInt(rpc.maxBodyBytes, "rpc.maxBodyBytes", DEFAULT_CONFIG.rpc.maxBodyBytes),
      rateLimit: posInt(rpc.rateLimit, "rpc.rateLimit", DEFAULT_CONFIG.rpc.rateLimit),
      ...(apiKeys ? { apiKeys } : {}),
      ...(sigIn?.enabled === true
        ? {
            memberSignatures: {
              windowMs: Math.min(
                600_000,
                Math.max(1000, posInt(sigIn.windowMs, "rpc.memberSignatures.windowMs", 60_000)),
              ),
            },
          }
        : {}),
      ...(tlsIn
        ? {
            tls: {
              certFile: resolve(home, tlsIn.certFile as string),
              keyFile: resolve(home, tlsIn.keyFile as string),
            },
          }
        : {}),
    },
    pool: {
      maxTxs: posInt(pool.maxTxs, "pool.maxTxs", DEFAULT_POOL_OPTIONS.maxTxs),
      maxBytes: posInt(pool.maxBytes, "pool.maxBytes", DEFAULT_POOL_OPTIONS.maxBytes),
      maxPerSender: posInt(pool.maxPerSender, "pool.maxPerSender", DEFAULT_POOL_OPTIONS.maxPerSender),
      maxTxBytes: Math.min(
        posInt(pool.maxTxBytes, "pool.maxTxBytes", DEFAULT_POOL_OPTIONS.maxTxBytes),
        64 * 1024,
      ),
      queueSeconds: seconds(pool.queueSeconds, "pool.queueSeconds", DEFAULT_POOL_OPTIONS.queueSeconds),
      minQueue: posInt(pool.minQueue, "pool.minQueue", DEFAULT_POOL_OPTIONS.minQueue),
    },
    consensus: {
      baseTimeoutMs: Math.max(
        10,
        posInt(cons.baseTimeoutMs, "consensus.baseTimeoutMs", DEFAULT_CONFIG.consensus.baseTimeoutMs),
      ),
      maxTimeoutMs: Math.max(
        10,
        posInt(cons.maxTimeoutMs, "consensus.maxTimeoutMs", DEFAULT_CONFIG.consensus.maxTimeoutMs),
      ),
      maxClockDriftMs: Math.max(
        100,
        posInt(cons.maxClockDriftMs, "consensus.maxClockDriftMs", DEFAULT_CONFIG.consensus.maxClockDriftMs),
      ),
    },
    nodeKey: {
      file: resolve(home, typeof key.file === "string" ? key.file : DEFAULT_CONFIG.nodeKey.file),
      ...(typeof key.passwordFile === "string" ? { passwordFile: resolve(home, key.passwordFile) } : {}),
    },
    // a home of before issue 19 has its libp2p key in keys/p2p.json, named in config.json or not
    ...(typeof p2pKey.file === "string"
      ? { p2pKey: { file: resolve(home, p2pKey.file) } }
      : existsSync(join(home, LEGACY_P2P_KEY))
        ? { p2pKey: { file: resolve(home, LEGACY_P2P_KEY) } }
        : {}),
    p2p: p2pListen(raw.p2p),
    log: {
      level: level as NodeConfig["log"]["level"],
      maxFileBytes: posInt(log.maxFileBytes, "log.maxFileBytes", DEFAULT_CONFIG.log.maxFileBytes),
      keepFiles: posInt(log.keepFiles, "log.keepFiles", DEFAULT_CONFIG.log.keepFiles),
      retentionDays: posInt(log.retentionDays, "log.retentionDays", DEFAULT_CONFIG.log.retentionDays),
    },
    audit: { index: audit.index !== false },
    snapshots: {
      interval: posInt(snaps.interval, "snapshots.interval", DEFAULT_CONFIG.snapshots.interval),
      keep: Math.max(1, posInt(snaps.keep, "snapshots.keep", DEFAULT_CONFIG.snapshots.keep)),
      join: (snaps.join as boolean | undefined) ?? DEFAULT_CONFIG.snapshots.join,
    },
    ledger: {
      keepBlocks: posInt(ledgerIn.keepBlocks, "ledger.keepBlocks", DEFAULT_CONFIG.ledger.keepBlocks),
      ...(ledgerIn.writeBufferBytes === undefined
        ? {}
        : { writeBufferBytes: writeBufferBytes(ledgerIn.writeBufferBytes) }),
    },
  };
}
