// The explorer reads the chain only through the node's public JSON-RPC (the origin it was
// served from), sends an API key when the node wants one, and never calls a write method.

/** A JSON answer of the node; each page reads the fields it shows. */
// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field where shown
export type Json = any;

const KEY = "custos-explorer-key";
const WRITE = /^(custos_sendTx|admin_)/;

export class RpcError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export function apiKey(): string | null {
  return sessionStorage.getItem(KEY);
}

/** Shows the key form; resolves once a key was entered. */
let asking: Promise<void> | undefined;
function askForKey(reason: string): Promise<void> {
  asking ??= new Promise<void>((resolve) => {
    const dialog = document.getElementById("key-dialog") as HTMLDialogElement;
    const form = dialog.querySelector("form") as HTMLFormElement;
    (dialog.querySelector(".reason") as HTMLElement).textContent = reason;
    form.onsubmit = (e) => {
      e.preventDefault();
      const v = (form.elements.namedItem("key") as HTMLInputElement).value.trim();
      if (!v) return;
      sessionStorage.setItem(KEY, v);
      dialog.close();
      asking = undefined;
      resolve();
    };
    dialog.showModal();
  });
  return asking;
}

let nextId = 1;

async function post(body: unknown): Promise<unknown> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const key = apiKey();
    const res = await fetch("/", {
      method: "POST",
      headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(body),
    });
    if (res.status === 401) {
      await askForKey(
        key ? "The node refused this API key." : "This node needs an API key with the read scope.",
      );
      continue;
    }
    return res.json();
  }
  throw new RpcError("the node refused the API key", "UNAUTHORIZED");
}

interface Reply {
  result?: unknown;
  error?: { message: string; data?: { code?: string } };
}

function unwrap<T>(r: Reply): T {
  if (r.error) throw new RpcError(r.error.message, r.error.data?.code ?? "RPC_ERROR");
  return r.result as T;
}

export async function rpc<T = Json>(method: string, ...params: unknown[]): Promise<T> {
  if (WRITE.test(method)) throw new RpcError(`${method} is not read-only`, "READ_ONLY");
  return unwrap<T>((await post({ jsonrpc: "2.0", id: nextId++, method, params })) as Reply);
}

/** Several reads in one request (the node takes batches of up to 100); errors come back as RpcError. */
export async function batch<T = Json>(calls: [string, ...unknown[]][]): Promise<(T | RpcError)[]> {
  if (calls.length === 0) return [];
  const out: (T | RpcError)[] = [];
  for (let i = 0; i < calls.length; i += 100) {
    const part = calls.slice(i, i + 100);
    const first = nextId;
    nextId += part.length;
    const replies = (await post(
      part.map(([method, ...params], j) => ({ jsonrpc: "2.0", id: first + j, method, params })),
    )) as (Reply & { id: number })[];
    const byId = new Map((Array.isArray(replies) ? replies : [replies]).map((r) => [r.id, r]));
    for (let j = 0; j < part.length; j++) {
      const r = byId.get(first + j);
      try {
        out.push(unwrap<T>(r ?? { error: { message: "no reply" } }));
      } catch (e) {
        out.push(e as RpcError);
      }
    }
  }
  return out;
}

export async function metricsText(): Promise<string> {
  const key = apiKey();
  const res = await fetch("/metrics", { headers: key ? { authorization: `Bearer ${key}` } : {} });
  return res.ok ? res.text() : "";
}

/**
 * Calls `onBlock` with each block the node commits, over the WebSocket (reconnecting with a
 * bounded back-off). The key, when there is one, goes as a subprotocol: browsers cannot set headers.
 */
export function subscribeBlocks(onBlock: (b: Json) => void, onState: (live: boolean) => void): () => void {
  let ws: WebSocket | undefined;
  let closed = false;
  let delay = 500;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const open = () => {
    const key = apiKey();
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;
    ws = key ? new WebSocket(url, [`custos-key.${key}`]) : new WebSocket(url);
    ws.onopen = () => {
      delay = 500;
      ws?.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "custos_subscribe", params: ["newBlocks"] }));
      onState(true);
    };
    ws.onmessage = (m) => {
      const msg = JSON.parse(String(m.data));
      if (msg.method === "custos_subscription") onBlock(msg.params.result);
    };
    ws.onclose = () => {
      onState(false);
      if (closed) return;
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 10_000);
    };
  };
  open();
  return () => {
    closed = true;
    if (timer) clearTimeout(timer);
    ws?.close();
  };
}
