import { CustosError } from "@custos/utils";

export type SubscriptionKind = "newBlocks" | "events";

export interface EventFilter {
  emitter?: string;
  name?: string;
}

export interface Subscription {
  readonly id: string;
  close(): void;
}

/**
 * Subscribes over the node's WebSocket endpoint (the RPC URL with ws:// or wss://). `onItem`
 * gets each new block (newBlocks) or each matching contract event (events) as the node's JSON
 * view. Resolves once the node has confirmed the subscription.
 */
export async function subscribe(
  rpcUrl: string,
  kind: SubscriptionKind,
  filter: EventFilter | undefined,
  onItem: (item: Record<string, unknown>) => void,
  opts: { apiKey?: string; onClose?: (err?: Error) => void } = {},
): Promise<Subscription> {
  // loaded here: most commands never subscribe, and `ws` (with TLS) adds ~0.08 s to every start
  const { WebSocket } = await import("ws");
  const ws = new WebSocket(
    rpcUrl.replace(/^http/, "ws"),
    opts.apiKey ? { headers: { authorization: `Bearer ${opts.apiKey}` } } : {},
  );
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", (e) =>
      reject(new CustosError("NODE_UNREACHABLE", `cannot open a WebSocket to ${rpcUrl}: ${e.message}`)),
    );
  });
  const id = await new Promise<string>((resolve, reject) => {
    ws.on("message", function first(data) {
      const msg = JSON.parse(String(data));
      if (msg.id !== 1) return;
      ws.off("message", first);
      if (msg.error) reject(new CustosError(msg.error.data?.code ?? "RPC_ERROR", msg.error.message));
      else resolve(msg.result as string);
    });
    ws.send(
      JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "custos_subscribe",
        params: filter ? [kind, filter] : [kind],
      }),
    );
  }).catch((err) => {
    ws.close();
    throw err;
  });
  ws.on("message", (data) => {
    const msg = JSON.parse(String(data));
    if (msg.method === "custos_subscription" && msg.params?.subscription === id) onItem(msg.params.result);
  });
  ws.on("close", () => opts.onClose?.());
  ws.on("error", (e) => opts.onClose?.(e));
  return { id, close: () => ws.close() };
}
