import { randomBytes } from "node:crypto";
import { encode } from "@custos/codec";
import type { Sm2KeyPair } from "@custos/crypto";
import { type SignedTx, signTx, TX_VERSION } from "@custos/types";
import { sleep } from "@custos/utils";
import type { CustosClient, ReceiptView, TxView } from "./client.js";

export interface Call {
  to: string;
  method: string;
  /** Encoded with msgpack as the call's argument array; amounts as bigint fen. */
  args: unknown[];
  value?: bigint;
  memo?: string | null;
}

export interface SendResult {
  hash: string;
  /** Present unless sent with `wait: false`. */
  receipt?: ReceiptView;
  view?: TxView;
}

const RETRIES = 8;

/**
 * Builds, signs and sends transactions for one key. It fills chainId, a random nonce and a
 * blockLimit from the node's height; on TX_BLOCK_LIMIT_EXPIRED it rebuilds with a fresh
 * blockLimit and signs again; on a retryable refusal (pool full) it backs off and retries.
 */
export class Wallet {
  constructor(
    readonly client: CustosClient,
    readonly key: Sm2KeyPair,
  ) {}

  get address(): string {
    return this.key.address;
  }

  /** A signed transaction valid from the node's current height. */
  async build(call: Call): Promise<SignedTx> {
    const s = await this.client.status();
    return signTx(
      {
        version: TX_VERSION,
        chainId: s.chainId,
        nonce: new Uint8Array(randomBytes(16)),
        blockLimit: s.height + Math.min(s.blockLimitWindow, 100),
        sender: this.key.publicKey,
        to: call.to,
        method: call.method,
        args: encode(call.args),
        value: call.value ?? 0n,
        memo: call.memo ?? null,
      },
      this.key.privateKey,
    );
  }

  async send(call: Call, o: { wait?: boolean; timeoutMs?: number } = {}): Promise<SendResult> {
    let stx = await this.build(call);
    for (let attempt = 0; ; attempt++) {
      try {
        const hash = await this.client.sendRawTx(stx.bytes);
        if (o.wait === false) return { hash };
        const view = await this.client.waitForTx(
          hash,
          o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs },
        );
        return { hash, view, ...(view.receipt ? { receipt: view.receipt } : {}) };
      } catch (err) {
        const e = err as { code?: string; retryable?: boolean };
        if (attempt >= RETRIES) throw err;
        if (e.code === "TX_BLOCK_LIMIT_EXPIRED") stx = await this.build(call);
        else if (e.retryable === true) await sleep(Math.min(2000, 50 * 2 ** attempt));
        else throw err;
      }
    }
  }
}
