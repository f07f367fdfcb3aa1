import {
  DecodeError,
  decode,
  encode,
  fieldAt,
  readArray,
  readBool,
  readSafeU64,
  readString,
  readUint,
} from "@custos/codec";
import { errorMessage } from "@custos/utils";

/**
 * A node's vital signs, as it reports them to a peer that asks (the `health` sync request) and
 * as the explorer's operations view shows them for every node: where its chain and consensus
 * stand, and what it costs the machine. Figures a peer reports are its claim; the table says
 * whose they are and when they were read.
 */
/** What an asker sends on HEALTH_PROTOCOL (p2p/network.ts): a version byte. */
export const HEALTH_REQUEST = new Uint8Array([1]);

export interface NodeHealth {
  role: "validator" | "observer";
  height: number;
  /** The head block's timestamp (ms). */
  headTime: number;
  view: number;
  peers: number;
  pool: number;
  viewChanges: number;
  /** User + system CPU time of the process (ms). */
  cpuMs: number;
  rssBytes: number;
  heapBytes: number;
  /** The ledger's LevelDB files. */
  diskBytes: number;
  syncing: boolean;
  uptimeSeconds: number;
}

const VERSION = 1;
/** The most an answer may take (it takes ~80 bytes). */
export const MAX_HEALTH_BYTES = 512;

export function encodeNodeHealth(h: NodeHealth): Uint8Array {
  return encode([
    VERSION,
    h.role,
    BigInt(h.height),
    BigInt(h.headTime),
    BigInt(h.view),
    h.peers,
    h.pool,
    BigInt(h.viewChanges),
    BigInt(Math.round(h.cpuMs)),
    BigInt(h.rssBytes),
    BigInt(h.heapBytes),
    BigInt(h.diskBytes),
    h.syncing,
    BigInt(Math.floor(h.uptimeSeconds)),
  ]);
}

/** Decodes a peer's answer; anything malformed is a DecodeError (the peer's claim is refused). */
export function decodeNodeHealth(frame: Uint8Array | undefined): NodeHealth {
  const S = "NodeHealth";
  const a = readArray(decode(frame ?? new Uint8Array(), S, MAX_HEALTH_BYTES), fieldAt(S, ""), 14);
  if (readUint(a[0], fieldAt(S, "version"), 255) !== VERSION)
    throw new DecodeError("DECODE_UNKNOWN_VERSION", S, "version", "unknown version");
  const role = readString(a[1], fieldAt(S, "role"), { max: 16 });
  if (role !== "validator" && role !== "observer")
    throw new DecodeError("DECODE_OUT_OF_RANGE", S, "role", "validator or observer");
  const u = (i: number, name: string) => readSafeU64(a[i], fieldAt(S, name));
  return {
    role,
    height: u(2, "height"),
    headTime: u(3, "headTime"),
    view: u(4, "view"),
    peers: readUint(a[5], fieldAt(S, "peers"), 100_000),
    pool: readUint(a[6], fieldAt(S, "pool")),
    viewChanges: u(7, "viewChanges"),
    cpuMs: u(8, "cpuMs"),
    rssBytes: u(9, "rssBytes"),
    heapBytes: u(10, "heapBytes"),
    diskBytes: u(11, "diskBytes"),
    syncing: readBool(a[12], fieldAt(S, "syncing")),
    uptimeSeconds: u(13, "uptimeSeconds"),
  };
}

export interface NodeRow {
  name: string;
  role: "validator" | "observer";
  /** This node (its figures read locally), or a peer (its figures as it reported them). */
  self: boolean;
  connected: boolean;
  /** When the figures were read (ms), null when there are none. */
  readAt: number | null;
  health: NodeHealth | null;
  /** Why there are no figures (not connected, no answer in time, a malformed answer). */
  error: string | null;
}

export interface HealthPeer {
  index: number;
  name: string;
  role: "validator" | "observer";
  connected: boolean;
}

/**
 * Every node of the chain with its vital signs: this node's read locally, each connected peer's
 * asked for over the sync protocol. Answers are kept for `maxAgeMs`, and one round is shared by
 * all who ask meanwhile, so a busy dashboard (or a client calling in a loop) costs the peers one
 * request each per `maxAgeMs` at most.
 */
export class HealthBoard {
  private cache: { at: number; rows: Promise<NodeRow[]> } | undefined;

  constructor(
    private readonly o: {
      name: string;
      local: () => Promise<NodeHealth>;
      peers: () => HealthPeer[];
      ask: (index: number, signal: AbortSignal) => Promise<Uint8Array | undefined>;
      maxAgeMs?: number;
      timeoutMs?: number;
    },
  ) {}

  rows(): Promise<NodeRow[]> {
    const now = Date.now();
    if (this.cache && now - this.cache.at < (this.o.maxAgeMs ?? 2000)) return this.cache.rows;
    const rows = this.read();
    this.cache = { at: now, rows };
    return rows;
  }

  private async read(): Promise<NodeRow[]> {
    const local = await this.o.local();
    const self: NodeRow = {
      name: this.o.name,
      role: local.role,
      self: true,
      connected: true,
      readAt: Date.now(),
      health: local,
      error: null,
    };
    const peers = await Promise.all(
      this.o.peers().map(async (p): Promise<NodeRow> => {
        const row = { name: p.name, role: p.role, self: false, connected: p.connected };
        if (!p.connected) return { ...row, readAt: null, health: null, error: "not connected" };
        try {
          const frame = await this.o.ask(p.index, AbortSignal.timeout(this.o.timeoutMs ?? 2000));
          return { ...row, readAt: Date.now(), health: decodeNodeHealth(frame), error: null };
        } catch (err) {
          return { ...row, readAt: null, health: null, error: errorMessage(err) };
        }
      }),
    );
    return [self, ...peers];
  }
}
