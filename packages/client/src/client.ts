import type { Sm2KeyPair } from "@custos/crypto";
import { signRpcRequest } from "@custos/types";
import { CustosError, sleep, toHex } from "@custos/utils";

/** A JSON-RPC error from the node, with its stable code. */
export class RpcClientError extends CustosError {
  constructor(
    code: string,
    message: string,
    readonly rpcCode: number,
    readonly retryable: boolean,
  ) {
    super(code, message, { rpcCode, retryable });
    this.name = "RpcClientError";
  }
}

export interface ClientOptions {
  apiKey?: string;
  timeoutMs?: number;
  /**
   * Signs every request with a member's SM2 key (the X-Custos-* headers, see @custos/types
   * rpcSignature.ts): the alternative to an API key on a node with rpc.memberSignatures enabled.
   */
  signer?: RequestSigner;
}

export interface RequestSigner {
  /** The member's key pair, or how to get it (loaded once, on the first request). */
  key: Sm2KeyPair | (() => Promise<Sm2KeyPair>);
  /** The chain the signatures are bound to; asked of the node's GET /health once when absent. */
  chainId?: string;
}

export interface NodeStatus {
  chainId: string;
  height: number;
  latestHash: string;
  latestTimestamp: number;
  role: string;
  view: number;
  peers: number;
  blockLimitWindow: number;
  pool: { size: number; bytes: number };
  sm2Backend: string;
}

export interface ReceiptView {
  txHash: string;
  success: boolean;
  gasUsed: string;
  output: unknown;
  events: { emitter: string; name: string; data: unknown }[];
  errorCode: string | null;
  errorMessage: string | null;
}

export interface TxView {
  status: "pending" | "committed";
  blockHeight?: number;
  blockHash?: string;
  index?: number;
  tx: Record<string, unknown>;
  receipt?: ReceiptView;
  txProof?: unknown;
  receiptProof?: unknown;
}

/** JSON-RPC over HTTP to one node. */
export class CustosClient {
  private nextId = 1;

  constructor(
    readonly url: string,
    private readonly opts: ClientOptions = {},
  ) {
    if (!/^https?:\/\//.test(url))
      throw new CustosError("INVALID_URL", `the RPC URL must be http(s)://HOST:PORT, not ${url}`);
    this.signer = opts.signer;
  }

  private signer: RequestSigner | undefined;
  private signing: Promise<{ key: Sm2KeyPair; chainId: string }> | undefined;

  private async signatureHeaders(
    signer: RequestSigner,
    body: string,
    signal: AbortSignal,
  ): Promise<Record<string, string>> {
    this.signing ??= (async () => {
      const key = typeof signer.key === "function" ? await signer.key() : signer.key;
      let chainId = signer.chainId;
      if (chainId === undefined) {
        const health = (await (await fetch(new URL("/health", this.url), { signal })).json()) as {
          chainId?: unknown;
        };
        if (typeof health.chainId !== "string")
          throw new CustosError(
            "SIGNER_NO_CHAIN_ID",
            `the node at ${this.url} does not name its chain at /health: give the signer its chainId`,
          );
        chainId = health.chainId;
      }
      return { key, chainId };
    })();
    this.signing.catch(() => {
      this.signing = undefined; // asked again on the next request
    });
    const { key, chainId } = await this.signing;
    return signRpcRequest(key, chainId, new TextEncoder().encode(body));
  }

  async request<T>(method: string, params: unknown[] = [], o: { signal?: AbortSignal } = {}): Promise<T> {
    const timeout = AbortSignal.timeout(this.opts.timeoutMs ?? 30_000);
    const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
    const payload = JSON.stringify({ jsonrpc: "2.0", id: this.nextId++, method, params });
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {}),
          ...(this.signer ? await this.signatureHeaders(this.signer, payload, signal) : {}),
        },
        body: payload,
        signal,
      });
    } catch (cause) {
      throw new CustosError(
        "NODE_UNREACHABLE",
        `cannot reach the node at ${this.url}: ${(cause as Error).message}`,
        {},
        { cause },
      );
    }
    let body: {
      result?: T;
      error?: { code: number; message: string; data?: { code?: string; retryable?: boolean } };
    };
    try {
      body = (await res.json()) as typeof body;
    } catch {
      throw new CustosError(
        "BAD_RESPONSE",
        `the node at ${this.url} answered HTTP ${res.status} without JSON`,
      );
    }
    if (body.error) {
      const e = body.error;
      throw new RpcClientError(e.data?.code ?? "RPC_ERROR", e.message, e.code, e.data?.retryable === true);
    }
    return body.result as T;
  }

  status(): Promise<NodeStatus> {
    return this.request("custos_status");
  }

  getBlock(ref: number | string): Promise<Record<string, unknown>> {
    return this.request("custos_getBlock", [ref]);
  }

  getTx(hash: string): Promise<TxView> {
    return this.request("custos_getTx", [hash]);
  }

  async sendRawTx(bytes: Uint8Array): Promise<string> {
    return (await this.request<{ hash: string }>("custos_sendTx", [`0x${toHex(bytes)}`])).hash;
  }

  call<T = unknown>(to: string, method: string, args: Uint8Array): Promise<T> {
    return this.request("custos_call", [to, method, `0x${toHex(args)}`]);
  }

  /**
   * Contract events of committed blocks from `fromHeight` (to `toHeight`, default the head),
   * as subscribers get them. One call covers at most 1,000 blocks and about 10,000 events, whole
   * blocks only: when `toHeight` in the answer is below `head`, ask again from `toHeight + 1`.
   */
  getEvents(
    fromHeight: number,
    o: { toHeight?: number; emitter?: string; name?: string; signal?: AbortSignal } = {},
  ): Promise<{ fromHeight: number; toHeight: number; head: number; events: Record<string, unknown>[] }> {
    const filter = { ...(o.emitter ? { emitter: o.emitter } : {}), ...(o.name ? { name: o.name } : {}) };
    return this.request(
      "custos_getEvents",
      [fromHeight, o.toHeight ?? null, filter],
      o.signal ? { signal: o.signal } : {},
    );
  }

  ecnyBalance(address: string): Promise<{ address: string; balance: string; frozen: string | null }> {
    return this.request("ecny_balance", [address]);
  }

  /** Polls until the transaction is committed; TX_WAIT_TIMEOUT after `timeoutMs`. */
  async waitForTx(hash: string, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TxView> {
    const deadline = Date.now() + (o.timeoutMs ?? 60_000);
    let delay = 50;
    for (;;) {
      try {
        const v = await this.getTx(hash);
        if (v.status === "committed") return v;
      } catch (err) {
        if ((err as { code?: string }).code !== "TX_NOT_FOUND") throw err;
      }
      if (Date.now() >= deadline) {
        throw new CustosError(
          "TX_WAIT_TIMEOUT",
          `transaction ${hash} was not committed within ${o.timeoutMs ?? 60_000} ms`,
        );
      }
      await sleep(delay, o.signal ? { signal: o.signal } : {});
      delay = Math.min(delay * 2, 500);
    }
  }
}
