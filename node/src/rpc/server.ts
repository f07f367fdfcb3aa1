import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { hasRpcSignature } from "@custos/types";
import { CustosError, errorMessage, isCustosError, type Logger } from "@custos/utils";
import { type WebSocket, WebSocketServer } from "ws";
import type { CommittedBlock } from "../chain/pbftDriver.js";
import type { RpcErrorName } from "./errors.js";
import { RpcCode, type RpcErrorObject, toRpcError } from "./errors.js";
import { explorerAsset } from "./explorerAssets.js";
import type { MemberSignatureError, MemberSignatures } from "./memberAuth.js";
import type { MethodSpec, Scope } from "./methods.js";
import { blockEvents, blockJson } from "./views.js";

export interface ApiKey {
  key: string;
  scopes: Scope[];
  name?: string;
}

export interface RpcServerOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  maxBatch: number;
  /** When set, every request needs `Authorization: Bearer <key>` (or `x-api-key`). */
  apiKeys?: ApiKey[];
  /** Requests per second per client (API key, else remote address); burst = 2x. 0 = unlimited. */
  rateLimit: number;
  tls?: { certFile: string; keyFile: string };
  /**
   * Requests signed with a member's SM2 key (X-Custos-* headers, HTTP only): when set, such a
   * request is let in as that member with the read and write scopes, API keys or not; when
   * absent, a signed request is refused (SIGNATURES_NOT_ACCEPTED).
   */
  memberSignatures?: MemberSignatures;
  /** Named by GET /health, so that a client that signs requests can bind them to the chain. */
  chainId?: string;
  /** Serves GET /metrics (read scope when API keys are set) and counts requests. */
  metrics?: { render(): Promise<string>; rpcRequest(method: string, outcome: RpcOutcome): void };
  /**
   * The built block explorer (explorer/dist), served at GET /explorer with no key: the page
   * itself holds no chain data and asks for a key when the RPC wants one. Absent: no explorer.
   */
  explorerDir?: string;
}

/**
 * What became of a request, the `outcome` label of custos_rpc_requests_total: `ok` (a result),
 * `error` (the method answered with an error: bad params, not found, a refused transaction),
 * `refused` (it never ran: malformed, unknown method, no key, wrong scope, rate limit, too
 * large), `aborted` (the client hung up before its request was complete).
 */
export type RpcOutcome = "ok" | "error" | "refused" | "aborted";

/** The `method` label of requests that name no method of this node (bounded label values). */
const OTHER = "other";

/** Errors of a request stream that the client caused by going away (not the node's fault). */
const CLIENT_GONE = new Set(["ECONNRESET", "ECONNABORTED", "EPIPE", "ERR_STREAM_PREMATURE_CLOSE"]);

function clientCaused(req: IncomingMessage, e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (
    req.destroyed ||
    req.aborted ||
    (typeof code === "string" && CLIENT_GONE.has(code)) ||
    (e instanceof Error && e.message === "aborted")
  );
}

const TOO_LARGE = Symbol("too large");

/**
 * A request's body, or TOO_LARGE as soon as it passes `max` bytes (the rest is not read). Rejects
 * like a stream when the client goes away first. Listeners, not `for await`: the async
 * iterator's machinery (end-of-stream watch, promise per chunk) is paid on every request.
 */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | typeof TOO_LARGE> {
  const gone = () =>
    Object.assign(new Error("the client closed the request before its body ended"), {
      code: "ERR_STREAM_PREMATURE_CLOSE",
    });
  return new Promise((resolve, reject) => {
    if (req.destroyed) return reject(gone()); // no event would come
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > max) {
        done();
        resolve(TOO_LARGE);
      } else chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    };
    const onError = (e: Error) => {
      done();
      reject(e);
    };
    const onClose = () => {
      done();
      reject(gone());
    };
    req.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
  });
}

/**
 * A browser cannot set headers on a WebSocket, so the explorer offers its API key as the
 * subprotocol `custos-key.<key>` (keys are 16+ characters of a token's alphabet).
 */
function subprotocolKey(req: IncomingMessage): string | undefined {
  const offered = req.headers["sec-websocket-protocol"];
  if (typeof offered !== "string") return undefined;
  for (const p of offered.split(",")) {
    const t = p.trim();
    if (t.startsWith("custos-key.")) return t.slice("custos-key.".length);
  }
  return undefined;
}

interface Request {
  jsonrpc: "2.0";
  method: string;
  params?: unknown;
  id?: string | number | null;
}

type Response = { jsonrpc: "2.0"; id: string | number | null } & (
  | { result: unknown }
  | { error: RpcErrorObject }
);

const err = (id: Response["id"], code: number, dataCode: string, message: string): Response => ({
  jsonrpc: "2.0",
  id,
  error: { code, message, data: { code: dataCode } },
});

interface Bucket {
  tokens: number;
  at: number;
}

interface Client {
  id: string;
  scopes: Set<Scope>;
}

const keyDigest = (key: string): Buffer => createHash("sha256").update(key).digest();

interface Subscription {
  kind: "newBlocks" | "events";
  emitter?: string;
  name?: string;
}

/**
 * JSON-RPC 2.0 over HTTP(S) POST and WebSocket (same methods, plus subscriptions on the
 * socket). Requests are untrusted: size-limited, parsed, shape-checked, authorised by scope and
 * rate-limited before a method runs; a bad request is answered with an error and costs the node
 * nothing else.
 */
export class RpcServer {
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private readonly buckets = new Map<string, Bucket>();
  private readonly sockets = new Map<WebSocket, Map<string, Subscription>>();
  private nextSub = 1;

  constructor(
    private readonly opts: RpcServerOptions,
    private readonly methods: Record<string, MethodSpec>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handleHttp(req, res).catch((e) => {
        if (clientCaused(req, e)) {
          // a client that hangs up is not the node's failure: anyone could fill the error log
          this.count(OTHER, "aborted");
          this.log.debug("rpc request aborted by the client", {
            remote: req.socket.remoteAddress,
            cause: errorMessage(e),
          });
          res.destroy();
          return;
        }
        this.log.error("rpc handler failed", { error: errorMessage(e) });
        if (!res.headersSent) res.writeHead(500).end();
      });
    };
    this.server = this.opts.tls
      ? createHttpsServer(
          { cert: readFileSync(this.opts.tls.certFile), key: readFileSync(this.opts.tls.keyFile) },
          handler,
        )
      : createHttpServer(handler);
    this.server.headersTimeout = 10_000;
    // clients (the SDK, load balancers) keep connections open between bursts
    this.server.keepAliveTimeout = 30_000;
    this.server.requestTimeout = 30_000;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.opts.maxBodyBytes });
    this.server.on("upgrade", (req, socket, head) => {
      const client = this.authenticate(req);
      if (isCustosError(client)) {
        socket.end("HTTP/1.1 401 Unauthorized\r\n\r\n");
        return;
      }
      this.wss?.handleUpgrade(req, socket, head, (ws) => this.handleSocket(ws, client));
    });
    await new Promise<void>((resolve, reject) => {
      this.server?.once("error", (e: NodeJS.ErrnoException) => {
        const where = `${this.opts.host}:${this.opts.port}`;
        if (e.code === "EADDRINUSE")
          reject(
            new CustosError<RpcErrorName>(
              "RPC_PORT_IN_USE",
              `cannot listen for RPC on ${where}: the port is in use (another node or testnet?); choose another with --rpc-listen HOST:PORT or config.json rpc.listen`,
              { listen: where },
              { cause: e },
            ),
          );
        else
          reject(
            new CustosError<RpcErrorName>(
              "RPC_LISTEN_FAILED",
              `cannot listen for RPC on ${where}: ${e.message}`,
              {},
              { cause: e },
            ),
          );
      });
      this.server?.listen(this.opts.port, this.opts.host, () => resolve());
    });
    const addr = this.server.address() as AddressInfo;
    const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
    return `${this.opts.tls ? "https" : "http"}://${host}:${addr.port}`;
  }

  /** Pushes a committed block to subscribers. */
  publish(c: CommittedBlock): void {
    if (this.sockets.size === 0) return;
    const blockView = blockJson(c.block, c.certificate);
    for (const [ws, subs] of this.sockets) {
      for (const [id, sub] of subs) {
        if (sub.kind === "newBlocks") this.notify(ws, id, blockView);
        else for (const e of blockEvents(c.block.header.height, c.receipts, sub)) this.notify(ws, id, e);
      }
    }
  }

  async close(): Promise<void> {
    for (const ws of this.sockets.keys()) ws.terminate();
    this.sockets.clear();
    this.wss?.close();
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private notify(ws: WebSocket, subscription: string, result: unknown): void {
    if (ws.readyState === ws.OPEN) {
      ws.send(
        JSON.stringify({ jsonrpc: "2.0", method: "custos_subscription", params: { subscription, result } }),
      );
    }
  }

  /** The configured keys' digests, computed once each (authenticate runs on every request). */
  private readonly keyDigests = new Map<string, Buffer>();
  private digestOf(key: string): Buffer {
    const known = this.keyDigests.get(key);
    if (known) return known;
    const d = keyDigest(key);
    this.keyDigests.set(key, d);
    return d;
  }

  private authenticate(req: IncomingMessage): Client | CustosError {
    const keys = this.opts.apiKeys;
    const remote = req.socket.remoteAddress ?? "unknown";
    if (!keys || keys.length === 0) {
      // no keys configured: operators' methods (backups) only from the node's own machine
      const local = remote === "127.0.0.1" || remote === "::1" || remote === "::ffff:127.0.0.1";
      return { id: remote, scopes: new Set<Scope>(local ? ["read", "write", "admin"] : ["read", "write"]) };
    }
    const auth = req.headers.authorization;
    const presented = auth?.startsWith("Bearer ")
      ? auth.slice(7).trim()
      : ((req.headers["x-api-key"] as string | undefined) ?? subprotocolKey(req));
    // compared in constant time over digests: how long a refusal takes says nothing of a key
    const want = presented ? keyDigest(presented) : undefined;
    const match = want ? keys.find((k) => timingSafeEqual(this.digestOf(k.key), want)) : undefined;
    if (!match)
      return new CustosError<RpcErrorName>(
        "UNAUTHORIZED",
        "a valid API key is required (Authorization: Bearer <key>)",
      );
    return { id: `key:${match.name ?? match.key.slice(0, 6)}`, scopes: new Set(match.scopes) };
  }

  private allow(client: Client): boolean {
    const rate = this.opts.rateLimit;
    if (rate <= 0) return true;
    const now = Date.now();
    const b = this.buckets.get(client.id) ?? { tokens: rate * 2, at: now };
    b.tokens = Math.min(rate * 2, b.tokens + ((now - b.at) * rate) / 1000);
    b.at = now;
    this.buckets.set(client.id, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private async handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown) => {
      // with its length: writeHead before end() would otherwise frame the one piece as chunks
      const text = JSON.stringify(body);
      res
        .writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) })
        .end(text);
    };
    if (req.method === "GET" && req.url === "/health")
      return send(200, { ok: true, ...(this.opts.chainId ? { chainId: this.opts.chainId } : {}) });
    if (
      req.method === "GET" &&
      this.opts.explorerDir &&
      (req.url === "/explorer" || req.url?.startsWith("/explorer/") || req.url?.startsWith("/explorer?"))
    ) {
      const a = await explorerAsset(this.opts.explorerDir, req.url);
      res.writeHead(a.status, a.headers).end(a.body);
      return;
    }
    if (req.method === "GET" && req.url === "/metrics" && this.opts.metrics) {
      const who = this.authenticate(req);
      if (isCustosError(who) || !who.scopes.has("read"))
        return send(401, err(null, RpcCode.unauthorized, "UNAUTHORIZED", "metrics need the read scope"));
      res
        .writeHead(200, { "content-type": "text/plain; version=0.0.4" })
        .end(await this.opts.metrics.render());
      return;
    }
    if (req.method !== "POST")
      return send(
        405,
        err(null, RpcCode.invalidRequest, "METHOD_NOT_ALLOWED", "use POST with a JSON-RPC 2.0 body"),
      );
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(",") : v;
    };
    // a request signed with a member's key is checked once its body (what is signed) is in
    const signed = hasRpcSignature(header);
    let client = signed ? undefined : this.authenticate(req);
    if (isCustosError(client)) {
      this.count(OTHER, "refused");
      return send(401, err(null, RpcCode.unauthorized, client.code, client.message));
    }
    const body = await readBody(req, this.opts.maxBodyBytes);
    if (body === TOO_LARGE) {
      this.count(OTHER, "refused");
      send(
        413,
        err(null, RpcCode.tooLarge, "REQUEST_TOO_LARGE", `request body over ${this.opts.maxBodyBytes} bytes`),
      );
      req.destroy();
      return;
    }
    if (signed) {
      try {
        if (!this.opts.memberSignatures)
          throw new CustosError<MemberSignatureError>(
            "SIGNATURES_NOT_ACCEPTED",
            "this node does not accept requests signed with a member's key (rpc.memberSignatures in config.json); use an API key",
          );
        const member = await this.opts.memberSignatures.verify(header, body);
        client = { id: `member:${member}`, scopes: new Set<Scope>(["read", "write"]) };
      } catch (e) {
        if (!isCustosError(e)) throw e;
        this.count(OTHER, "refused");
        const limited = e.code === "RATE_LIMITED";
        return send(
          limited ? 429 : 401,
          err(null, limited ? RpcCode.rateLimited : RpcCode.unauthorized, e.code, e.message),
        );
      }
    }
    const out = await this.handleText(body.toString("utf8"), client as Client);
    if (out === undefined) res.writeHead(204).end();
    else send(200, out);
  }

  private async handleText(
    text: string,
    client: Client,
    ws?: WebSocket,
  ): Promise<Response | Response[] | undefined> {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      this.count(OTHER, "refused");
      return err(null, RpcCode.parseError, "PARSE_ERROR", "the request is not valid JSON");
    }
    if (Array.isArray(body)) {
      if (body.length === 0) {
        this.count(OTHER, "refused");
        return err(null, RpcCode.invalidRequest, "INVALID_REQUEST", "an empty batch");
      }
      if (body.length > this.opts.maxBatch) {
        this.count(OTHER, "refused");
        return err(
          null,
          RpcCode.invalidRequest,
          "BATCH_TOO_LARGE",
          `a batch holds at most ${this.opts.maxBatch} requests`,
        );
      }
      const results = await Promise.all(body.map((r) => this.handleOne(r, client, ws)));
      const replies = results.filter((r): r is Response => r !== undefined);
      return replies.length > 0 ? replies : undefined;
    }
    return this.handleOne(body, client, ws);
  }

  private count(method: string, outcome: RpcOutcome): void {
    this.opts.metrics?.rpcRequest(method, outcome);
  }

  /** The `method` label: a method this node serves, else "other" (clients choose the names). */
  private label(method: unknown): string {
    return typeof method === "string" &&
      (Object.hasOwn(this.methods, method) ||
        method === "custos_subscribe" ||
        method === "custos_unsubscribe")
      ? method
      : OTHER;
  }

  /** Answers one request and counts it by method and outcome. */
  private async handleOne(raw: unknown, client: Client, ws?: WebSocket): Promise<Response | undefined> {
    const { response, outcome } = await this.answer(raw, client, ws);
    this.count(this.label((raw as Request | null)?.method), outcome);
    return response;
  }

  private async answer(
    raw: unknown,
    client: Client,
    ws?: WebSocket,
  ): Promise<{ response: Response | undefined; outcome: RpcOutcome }> {
    const refused = (response: Response) => ({ response, outcome: "refused" as const });
    const r = raw as Request;
    const idOk =
      r !== null &&
      typeof r === "object" &&
      (r.id === undefined || r.id === null || typeof r.id === "string" || typeof r.id === "number");
    const id = idOk && r.id !== undefined ? (r.id as Response["id"]) : null;
    if (!idOk || r.jsonrpc !== "2.0" || typeof r.method !== "string") {
      return refused(
        err(
          id,
          RpcCode.invalidRequest,
          "INVALID_REQUEST",
          'a request is {"jsonrpc":"2.0","method":string,"params"?:array,"id"?}',
        ),
      );
    }
    const isNotification = r.id === undefined;
    if (r.params !== undefined && !Array.isArray(r.params)) {
      return refused(err(id, RpcCode.invalidParams, "INVALID_PARAMS", "params must be an array"));
    }
    if (!this.allow(client))
      return refused(err(id, RpcCode.rateLimited, "RATE_LIMITED", "too many requests; slow down and retry"));
    const params = (r.params as unknown[] | undefined) ?? [];
    try {
      let result: unknown;
      if (r.method === "custos_subscribe" || r.method === "custos_unsubscribe") {
        if (!ws)
          throw new CustosError<RpcErrorName>(
            "SUBSCRIPTIONS_NEED_WEBSOCKET",
            "subscriptions are available over WebSocket only",
          );
        result = r.method === "custos_subscribe" ? this.subscribe(ws, params) : this.unsubscribe(ws, params);
      } else {
        const spec = Object.hasOwn(this.methods, r.method) ? this.methods[r.method] : undefined;
        if (!spec)
          return refused(
            err(id, RpcCode.methodNotFound, "METHOD_NOT_FOUND", `no method ${r.method.slice(0, 64)}`),
          );
        if (!client.scopes.has(spec.scope)) {
          return refused(
            err(id, RpcCode.forbidden, "FORBIDDEN", `${r.method} needs the ${spec.scope} scope`),
          );
        }
        result = await spec.fn(params);
      }
      return { response: isNotification ? undefined : { jsonrpc: "2.0", id, result }, outcome: "ok" };
    } catch (e) {
      return {
        response: isNotification
          ? undefined
          : {
              jsonrpc: "2.0",
              id,
              error: toRpcError(e, (errorId, err) =>
                this.log.error("rpc method failed", { method: r.method, errorId, error: errorMessage(err) }),
              ),
            },
        outcome: "error",
      };
    }
  }

  private subscribe(ws: WebSocket, params: unknown[]): string {
    const [kind, filter] = params;
    if (kind !== "newBlocks" && kind !== "events") {
      throw new CustosError<RpcErrorName>(
        "INVALID_PARAMS",
        'subscribe to "newBlocks" or "events" (with an optional {emitter, name} filter)',
      );
    }
    const f = (filter ?? {}) as { emitter?: unknown; name?: unknown };
    if (
      typeof f !== "object" ||
      (f.emitter !== undefined && typeof f.emitter !== "string") ||
      (f.name !== undefined && typeof f.name !== "string")
    ) {
      throw new CustosError<RpcErrorName>(
        "INVALID_PARAMS",
        "the events filter is {emitter?: string, name?: string}",
      );
    }
    const subs = this.sockets.get(ws) as Map<string, Subscription>;
    if (subs.size >= 32)
      throw new CustosError<RpcErrorName>(
        "TOO_MANY_SUBSCRIPTIONS",
        "at most 32 subscriptions per connection",
      );
    const id = `0x${(this.nextSub++).toString(16)}`;
    subs.set(id, {
      kind,
      ...(f.emitter ? { emitter: f.emitter as string } : {}),
      ...(f.name ? { name: f.name as string } : {}),
    });
    return id;
  }

  private unsubscribe(ws: WebSocket, params: unknown[]): boolean {
    return this.sockets.get(ws)?.delete(String(params[0])) ?? false;
  }

  private handleSocket(ws: WebSocket, client: Client): void {
    this.sockets.set(ws, new Map());
    ws.on("message", (data) => {
      this.handleText(String(data), client, ws)
        .then((out) => {
          if (out !== undefined && ws.readyState === ws.OPEN) ws.send(JSON.stringify(out));
        })
        .catch((e) => this.log.warn("websocket request failed", { error: String(e) }));
    });
    ws.on("close", () => this.sockets.delete(ws));
    ws.on("error", () => ws.terminate());
  }
}
