import { encode } from "@custos/codec";
import { generateKeyPair, type Sm2KeyPair, sm2Sign } from "@custos/crypto";
import {
  type Block,
  CERT_VERSION,
  type CommitCertificate,
  commitVoteBytes,
  type Genesis,
  parseGenesis,
  quorumSize,
  type Receipt,
  type Role,
  type SignedTx,
  signTx,
} from "@custos/types";
import { nullLogger, toHex } from "@custos/utils";
import { buildBlock, commitOf } from "../src/chain/blockBuilder.js";
import { openChainLedger } from "../src/chain/openLedger.js";
import { Executor } from "../src/execution/executor.js";
import { DEV_TIERS } from "../src/init.js";
import type { Ledger } from "../src/ledger/ledger.js";

/**
 * A real chain without consensus: blocks built and executed by the node's own builder and
 * executor, stored in a real ledger, each with a commit certificate signed by a quorum of the
 * validator set in force (the validators' keys are the test's). Time is the test's: each block
 * is `stepMs` after the last unless told otherwise, so days and ranges are exact.
 */
export interface CallSpec {
  from: string;
  to: string;
  method: string;
  args?: unknown[];
  value?: bigint;
}

const pid = (i: number) => `12D3KooW${"ABCDEFGHJK"[i % 10]?.repeat(44)}`;

export class CertifiedChain {
  time: number;
  private nonce = 0;
  readonly committed: { block: Block; receipts: Receipt[] }[] = [];

  private constructor(
    readonly genesis: Genesis,
    readonly ledger: Ledger,
    readonly keys: Record<string, Sm2KeyPair>,
    readonly validatorKeys: Sm2KeyPair[],
    private readonly executor: Executor,
  ) {
    this.time = genesis.timestamp;
  }

  static async create(
    dir: string,
    o: {
      chainId?: string;
      validators?: number;
      members: [string, Role][];
      timestamp?: number;
      largeTxThreshold?: string;
    },
  ): Promise<CertifiedChain> {
    const validatorKeys = Array.from({ length: o.validators ?? 4 }, () => generateKeyPair());
    const keys: Record<string, Sm2KeyPair> = {};
    for (const [name] of o.members) keys[name] = generateKeyPair();
    const genesis = parseGenesis({
      chainId: o.chainId ?? "custos-audit-test",
      timestamp: o.timestamp ?? Date.UTC(2026, 4, 1, 1, 0, 0),
      blockLimitWindow: 600,
      consensus: {
        validators: validatorKeys.map((k, i) => ({
          name: `v${i}`,
          publicKey: toHex(k.publicKey),
          peerId: pid(i),
          p2p: [`/ip4/127.0.0.1/tcp/${30300 + i}`],
        })),
        minBlockIntervalMs: 0,
        maxBlockTxs: 50_000,
      },
      members: o.members.map(([name, role]) => ({
        name,
        publicKey: toHex((keys[name] as Sm2KeyPair).publicKey),
        roles: [role],
        ecnyTier: 1,
      })),
      ecny: { tiers: DEV_TIERS, largeTxThreshold: o.largeTxThreshold ?? "5000000" },
    });
    const ledger = await openChainLedger(dir, genesis, nullLogger);
    return new CertifiedChain(genesis, ledger, keys, validatorKeys, new Executor(genesis, nullLogger));
  }

  address(name: string): string {
    return (this.keys[name] as Sm2KeyPair).address;
  }

  tx(c: CallSpec): SignedTx {
    const key = this.keys[c.from] as Sm2KeyPair;
    const n = new Uint8Array(16);
    new DataView(n.buffer).setUint32(0, ++this.nonce);
    return signTx(
      {
        version: 1,
        chainId: this.genesis.chainId,
        nonce: n,
        blockLimit: this.ledger.head.height + 100,
        sender: key.publicKey,
        to: c.to,
        method: c.method,
        args: encode(c.args ?? []),
        value: c.value ?? 0n,
        memo: null,
      },
      key.privateKey,
    );
  }

  /** Builds, certifies and commits one block of these calls; returns its receipts. */
  async block(calls: (CallSpec | SignedTx)[], o: { at?: number; stepMs?: number } = {}): Promise<Receipt[]> {
    const head = this.ledger.head;
    this.time = o.at ?? this.time + (o.stepMs ?? 60_000);
    const txs = calls.map((c) => ("bytes" in c ? c : this.tx(c)));
    const built = await buildBlock(this.genesis.chainId, head, txs, {
      timestamp: this.time,
      proposer: 0,
      view: 0,
      executor: this.executor,
      state: this.ledger,
    });
    await this.ledger.commit(
      commitOf(
        built,
        this.certify(
          built.block,
          head.validators.map((v) => v.publicKey),
        ),
      ),
    );
    this.committed.push({ block: built.block, receipts: built.receipts });
    return built.receipts;
  }

  /** A quorum of the set's own keys sign the block. */
  certify(block: Block, set: readonly Uint8Array[], signers?: number[]): CommitCertificate {
    const { height, view } = block.header;
    const msg = commitVoteBytes(this.genesis.chainId, height, view, block.hash);
    const who = signers ?? set.map((_, i) => i).slice(0, quorumSize(set.length));
    return {
      version: CERT_VERSION,
      chainId: this.genesis.chainId,
      height,
      view,
      blockHash: block.hash,
      signatures: who.map((i) => {
        const key = this.validatorKeys.find((k) => toHex(k.publicKey) === toHex(set[i] as Uint8Array));
        if (!key) throw new Error(`no key for validator ${i}`);
        return { validator: i, signature: sm2Sign(key.privateKey, msg) };
      }),
    };
  }

  /** One call in a block of its own; throws with its error unless it succeeded. */
  async send(c: CallSpec, o: { at?: number; stepMs?: number } = {}): Promise<Receipt & { out: any }> {
    const [r] = await this.block([c], o);
    const receipt = r as Receipt;
    if (!receipt.success)
      throw new Error(`${c.to}.${c.method}: ${receipt.errorCode} ${receipt.errorMessage}`);
    const { decode } = await import("@custos/codec");
    const { plain } = await import("@custos/audit");
    return {
      ...receipt,
      out: receipt.output.byteLength ? plain(decode(receipt.output, "Output", 1 << 20)) : null,
    };
  }
}
