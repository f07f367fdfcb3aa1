import { encode, merkleProof } from "@custos/codec";
import { selectSm2 } from "@custos/crypto";
import {
  decodeReceipt,
  decodeValidatorSet,
  encodeCertificate,
  type Genesis,
  type GenesisValidator,
  HASH_RE,
  type SignedTx,
} from "@custos/types";
import { CustosError, errorMessage, fromHex } from "@custos/utils";
import { ENGINE } from "@custos/vm";
import type { Executor } from "../execution/executor.js";
import type { NodeRow } from "../health.js";
import type { Ledger } from "../ledger/ledger.js";
import type { TxPool } from "../txpool/txpool.js";
import type { RpcErrorName } from "./errors.js";
import { invalidParams } from "./errors.js";
import { blockEvents, blockJson, hex, jsonValue, proofJson, receiptJson, txJson } from "./views.js";

export interface RpcContext {
  genesis: Genesis;
  ledger: Ledger;
  pool: TxPool;
  executor: Executor;
  role: "validator" | "observer";
  pendingTx(hash: Uint8Array): SignedTx | undefined;
  /** What changes while the node runs: consensus view, connected peers, block sync. */
  live?(): {
    view: number;
    peers: number;
    validatorPeers: number;
    syncing: boolean;
    syncTarget: number;
    /** A validator node outside the current set (joining, or removed by governance). */
    active?: boolean;
  };
  /** The chain's other nodes as this node sees them: connected or not, the height each last showed. */
  peers?(): {
    name: string;
    role: "validator" | "observer";
    peerId: string;
    connected: boolean;
    height: number | null;
  }[];
  /** Every node with its vital signs: this one's read here, each connected peer's as it reported them. */
  nodes?(): Promise<NodeRow[]>;
}

export type RpcMethod = (params: unknown[]) => Promise<unknown>;

/** Which API-key scope a method needs. */
export type Scope = "read" | "write" | "admin";

export interface MethodSpec {
  scope: Scope;
  fn: RpcMethod;
}

/** custos_getEvents covers at most this many blocks, and this many events, per call. */
const EVENT_RANGE = 1000;
const EVENT_LIMIT = 10_000;

function hashParam(v: unknown, name: string): Uint8Array {
  // hex digits in either case are accepted from clients; the chain's own form is lowercase
  if (typeof v !== "string" || !HASH_RE.test(v.toLowerCase()))
    throw invalidParams(`${name} must be a 0x-prefixed 32-byte hex hash`);
  return fromHex(v);
}

function hexParam(v: unknown, name: string, maxBytes: number): Uint8Array {
  const bad = () => invalidParams(`${name} must be 0x-prefixed hex`);
  if (typeof v !== "string" || !v.startsWith("0x")) throw bad();
  if ((v.length - 2) / 2 > maxBytes)
    throw new CustosError<RpcErrorName>("TX_TOO_LARGE", `${name} is over ${maxBytes} bytes`);
  try {
    return fromHex(v); // checks the length and every digit in the one pass that parses it
  } catch {
    throw bad();
  }
}

function stringParam(v: unknown, name: string, max = 64): string {
  if (typeof v !== "string" || v.length === 0 || v.length > max)
    throw invalidParams(`${name} must be a string of 1 to ${max} characters`);
  return v;
}

/** An observer serves every read and refuses everything else, saying where writes go. */
export function rpcMethods(c: RpcContext): Record<string, MethodSpec> {
  const all = allMethods(c);
  if (c.role !== "observer") return all;
  for (const [name, m] of Object.entries(all)) {
    if (m.scope === "read") continue;
    all[name] = {
      scope: m.scope,
      fn: async () => {
        throw new CustosError<RpcErrorName>(
          "OBSERVER_READ_ONLY",
          `${name} is refused: this node is an observer and serves reads only; send writes to a validator's RPC`,
        );
      },
    };
  }
  return all;
}

function allMethods(c: RpcContext): Record<string, MethodSpec> {
  const { ledger, pool, executor, genesis } = c;

  const blockAt = async (height: number) => {
    const block = await ledger.getBlock(height);
    if (block === undefined && height > 0 && height < ledger.base)
      throw new CustosError<RpcErrorName>(
        "BLOCK_PRUNED",
        `this node holds blocks from ${ledger.base} on (it started from a snapshot or prunes old blocks); ask a node that keeps every block (an observer that replayed from genesis)`,
        { base: ledger.base },
      );
    if (block === undefined)
      throw new CustosError<RpcErrorName>(
        "BLOCK_NOT_FOUND",
        `no block at height ${height} (head is ${ledger.head.height})`,
      );
    return { block, cert: await ledger.getCertificate(height) };
  };

  /** The validator set that signs block `height`: genesis's, with every change below `height` applied. */
  const validatorsAt = async (height: number): Promise<GenesisValidator[]> => {
    let set = genesis.consensus.validators;
    for (const change of await ledger.setChanges()) {
      if (change.height >= height) break;
      set = decodeValidatorSet(change.record[2]);
    }
    return set;
  };

  const blockHeight = async (ref: unknown): Promise<number> => {
    if (typeof ref === "number" && Number.isSafeInteger(ref) && ref >= 0) return ref;
    if (ref === "latest") return ledger.head.height;
    if (typeof ref === "string" && HASH_RE.test(ref.toLowerCase())) {
      const h = await ledger.heightOf(fromHex(ref));
      if (h === undefined)
        throw new CustosError<RpcErrorName>("BLOCK_NOT_FOUND", `no block with hash ${ref}`);
      return h;
    }
    throw invalidParams('the block is a height (integer >= 0), "latest", or a 0x block hash');
  };

  return {
    /**
     * custos_getBlockEvidence(block): what a light client (the explorer, in the browser) needs to
     * check a block by itself: the exact header bytes (the block hash is SM3 of them), the encoded
     * commit certificate, and the validator set in force at that height (its hash is in the header).
     */
    custos_getBlockEvidence: {
      scope: "read",
      fn: async ([ref]) => {
        const height = await blockHeight(ref);
        const { block, cert } = await blockAt(height);
        const validators = await validatorsAt(height);
        return {
          height,
          hash: hex(block.hash),
          chainId: genesis.chainId,
          header: hex(block.headerBytes),
          certificate: cert ? hex(encodeCertificate(cert)) : null,
          validators: validators.map((v) => ({ name: v.name, publicKey: hex(v.publicKey) })),
        };
      },
    },

    /**
     * custos_getValidatorSetHistory(): the genesis validator set and every change since, each with
     * what proves it (the block's header bytes, its certificate by the set then in force, the new
     * set's value and its state proof against the header's stateRoot), oldest first: a light
     * client walks it from genesis to know the set of any height without trusting the node.
     */
    custos_getValidatorSetHistory: {
      scope: "read",
      fn: async () => ({
        chainId: genesis.chainId,
        genesis: genesis.consensus.validators.map((v) => ({ name: v.name, publicKey: hex(v.publicKey) })),
        changes: (await ledger.setChanges()).map(
          ({ height, record: [header, certificate, value, proof] }) => ({
            height,
            header: hex(header),
            certificate: hex(certificate),
            value: hex(value),
            proof: {
              bucket: proof.bucket,
              leaves: proof.leaves.map(([k, v]) => [hex(k), hex(v)]),
              siblings: proof.siblings.map(hex),
            },
          }),
        ),
      }),
    },

    /** custos_peers(): the chain's other nodes as this node sees them (no addresses). */
    custos_peers: {
      scope: "read",
      fn: async () => c.peers?.() ?? [],
    },

    /**
     * custos_nodes(): every node of the chain (this one first) with its vital signs: height, head
     * time, view, peers, pool, view changes, CPU, memory and ledger disk, as each reported them.
     */
    custos_nodes: {
      scope: "read",
      fn: async () => (await c.nodes?.()) ?? [],
    },

    custos_status: {
      scope: "read",
      fn: async () => {
        const head = ledger.head;
        const live = c.live?.() ?? {
          view: 0,
          peers: 0,
          validatorPeers: 0,
          syncing: false,
          syncTarget: head.height,
        };
        return {
          chainId: genesis.chainId,
          height: head.height,
          latestHash: hex(head.hash),
          latestTimestamp: head.header.timestamp,
          role: c.role,
          ...(c.role === "validator" ? { validating: live.active ?? true } : {}),
          view: live.view,
          peers: live.peers,
          validatorPeers: live.validatorPeers,
          syncing: live.syncing,
          syncTarget: live.syncTarget,
          validators: head.validators.length,
          validatorSetHash: hex(head.validatorSetHash),
          blockLimitWindow: genesis.blockLimitWindow,
          pool: { size: pool.size, bytes: pool.bytes },
          sm2Backend: selectSm2().backend.name,
          // the contract engine is a consensus rule: nodes of one chain must report the same
          vm: `${ENGINE.variant}@${ENGINE.version}`,
        };
      },
    },

    custos_getBlock: {
      scope: "read",
      fn: async ([ref]) => {
        const { block, cert } = await blockAt(await blockHeight(ref));
        return blockJson(block, cert);
      },
    },

    custos_getTx: {
      scope: "read",
      fn: async ([h]) => {
        const hash = hashParam(h, "tx hash");
        const pos = await ledger.txPosition(hash);
        if (pos === undefined) {
          const pending = c.pendingTx(hash);
          if (pending) return { status: "pending", tx: txJson(pending) };
          throw new CustosError<RpcErrorName>("TX_NOT_FOUND", `no transaction ${h} is committed or pending`);
        }
        const { block } = await blockAt(pos.height);
        const receipts = (await ledger.getReceipts(pos.height)) ?? [];
        const stx = block.txs[pos.index] as SignedTx;
        return {
          status: "committed",
          blockHeight: pos.height,
          blockHash: hex(block.hash),
          index: pos.index,
          tx: txJson(stx),
          // the signed bytes, so that a client can check the hash, the signature and the decoding itself
          raw: hex(stx.bytes),
          receipt: receiptJson(decodeReceipt(receipts[pos.index] as Uint8Array)),
          txProof: proofJson(
            merkleProof(
              block.txs.map((t) => t.hash),
              pos.index,
            ),
            block.header.txRoot,
          ),
          receiptProof: proofJson(merkleProof(receipts, pos.index), block.header.receiptRoot),
        };
      },
    },

    custos_sendTx: {
      scope: "write",
      fn: async ([raw]) => {
        let bytes: Uint8Array;
        try {
          bytes = hexParam(raw, "the signed transaction", 1024 * 1024);
        } catch (err) {
          // refused before the pool saw it: still a write request the operations log records
          pool.emit("tx:rejected", {
            code: (err as { code?: string }).code ?? "INTERNAL",
            reason: errorMessage(err),
            source: "rpc",
          });
          throw err;
        }
        const stx = await pool.add(bytes, "rpc");
        return { hash: hex(stx.hash) };
      },
    },

    custos_call: {
      scope: "read",
      fn: async ([to, method, args]) => {
        const argBytes =
          args === undefined || args === null ? new Uint8Array() : hexParam(args, "args", 64 * 1024);
        const head = ledger.head;
        const result = await executor.query(
          ledger,
          stringParam(to, "to", 42),
          stringParam(method, "method"),
          argBytes,
          {
            height: head.height,
            timestamp: head.header.timestamp,
          },
        );
        return jsonValue(result);
      },
    },

    /**
     * custos_getEvents(fromHeight, toHeight?, filter?): the contract events of committed blocks
     * fromHeight..toHeight (default: the head), at most EVENT_RANGE blocks and EVENT_LIMIT events
     * per call, as subscribers get them. `toHeight` in the answer is the last block covered:
     * ask again from toHeight + 1 for more.
     */
    custos_getEvents: {
      scope: "read",
      fn: async ([from, to, filter]) => {
        const head = ledger.head.height;
        if (typeof from !== "number" || !Number.isSafeInteger(from) || from < 0)
          throw invalidParams("fromHeight must be a block height (an integer >= 0)");
        if (
          to !== undefined &&
          to !== null &&
          (typeof to !== "number" || !Number.isSafeInteger(to) || to < from)
        )
          throw invalidParams("toHeight must be a block height >= fromHeight");
        const f = (filter ?? {}) as { emitter?: unknown; name?: unknown };
        if (
          typeof f !== "object" ||
          (f.emitter !== undefined && typeof f.emitter !== "string") ||
          (f.name !== undefined && typeof f.name !== "string")
        )
          throw invalidParams("the events filter is {emitter?: string, name?: string}");
        const last = Math.min(typeof to === "number" ? to : head, head, from + EVENT_RANGE - 1);
        const events: Record<string, unknown>[] = [];
        let covered = from - 1;
        for (let h = Math.max(from, 1); h <= last; h++) {
          const receipts = ((await ledger.getReceipts(h)) ?? []).map((r) => decodeReceipt(r));
          const found = blockEvents(h, receipts, {
            ...(f.emitter ? { emitter: f.emitter as string } : {}),
            ...(f.name ? { name: f.name as string } : {}),
          });
          // whole blocks only: a caller resumes from toHeight + 1 without losing events
          if (events.length > 0 && events.length + found.length > EVENT_LIMIT) break;
          events.push(...found);
          covered = h;
        }
        return { fromHeight: from, toHeight: Math.max(covered, Math.min(from, last)), head, events };
      },
    },

    ecny_balance: {
      scope: "read",
      fn: async ([address]) => {
        const head = ledger.head;
        const r = await executor.query(
          ledger,
          "ecny",
          "balance",
          encode([stringParam(address, "address", 42)]),
          {
            height: head.height,
            timestamp: head.header.timestamp,
          },
        );
        return jsonValue(r);
      },
    },
  };
}
