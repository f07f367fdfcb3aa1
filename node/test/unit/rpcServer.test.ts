import { connect } from "node:net";
import { CustosError, type LogFields, type Logger } from "@custos/utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Metrics } from "../../src/metrics.js";
import type { MethodSpec } from "../../src/rpc/methods.js";
import { RpcServer } from "../../src/rpc/server.js";
import { until } from "../helpers.js";

/** Every line the server logs, with its level, as a recording Logger. */
const lines: { level: string; msg: string; fields: LogFields }[] = [];
function recorder(): Logger {
  const at =
    (level: string) =>
    (msg: string, fields: LogFields = {}) =>
      lines.push({ level, msg, fields });
  const log: Logger = {
    trace: at("trace"),
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: () => log,
  };
  return log;
}

const methods: Record<string, MethodSpec> = {
  custos_status: { scope: "read", fn: async () => ({ ok: true }) },
  custos_getBlock: {
    scope: "read",
    fn: async () => {
      throw new CustosError("BLOCK_NOT_FOUND", "no such block");
    },
  },
};

let server: RpcServer;
let url: string;
let metrics: Metrics;

beforeAll(async () => {
  metrics = new Metrics({ height: () => 0, poolSize: () => 0, poolBytes: () => 0 }, "/nonexistent");
  server = new RpcServer(
    { host: "127.0.0.1", port: 0, maxBodyBytes: 4096, maxBatch: 10, rateLimit: 0, metrics },
    methods,
    recorder(),
  );
  url = await server.start();
});
afterAll(async () => {
  await server?.close();
});

const post = (body: unknown) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  }).then((r) => r.json());

async function counter(method: string, outcome: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(
    `^custos_rpc_requests_total\\{method="${method}",outcome="${outcome}"\\} (\\d+)$`,
    "m",
  ).exec(text);
  return m ? Number(m[1]) : 0;
}

describe("RPC server", () => {
  it("counts requests by method and outcome; unknown method names share one label", async () => {
    await post({ jsonrpc: "2.0", id: 1, method: "custos_status" });
    await post({ jsonrpc: "2.0", id: 2, method: "custos_status" });
    await post({ jsonrpc: "2.0", id: 3, method: "custos_getBlock", params: [1] });
    await post([
      { jsonrpc: "2.0", id: 4, method: `no_such_${Math.random()}` },
      { jsonrpc: "2.0", id: 5, method: "custos_status" },
    ]);
    await post("{not json");
    expect(await counter("custos_status", "ok")).toBe(3);
    expect(await counter("custos_getBlock", "error")).toBe(1);
    expect(await counter("other", "refused")).toBe(2);
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).not.toMatch(/no_such_/);
    expect(text).toContain("# TYPE custos_rpc_requests_total counter");
  });

  it("a body over the limit is refused with 413 REQUEST_TOO_LARGE, and one in pieces is read whole", async () => {
    const refusedBefore = await counter("other", "refused");
    const big = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "custos_status",
      params: ["x".repeat(5000)],
    });
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: big,
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { data: { code: "REQUEST_TOO_LARGE" } } });
    expect(await counter("other", "refused")).toBe(refusedBefore + 1);
    // under the limit but sent in three writes: answered as one request
    const socket = connect(Number(new URL(url).port), "127.0.0.1");
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 7,
      method: "custos_status",
      params: ["y".repeat(3000)],
    });
    let answer = "";
    socket.on("data", (d) => {
      answer += String(d);
    });
    socket.write(
      `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    for (const part of [body.slice(0, 1000), body.slice(1000, 2500), body.slice(2500)]) {
      await new Promise<void>((resolve) => socket.write(part, () => resolve()));
      await new Promise((r) => setImmediate(r));
    }
    await until(async () => answer.includes('"id":7'));
    expect(answer).toMatch(/^HTTP\/1.1 200/);
    expect(answer).toContain('"result":{"ok":true}');
    socket.destroy();
  });

  it("a client that hangs up in the middle of its body costs a debug line with the cause, never an error", async () => {
    const before = lines.length;
    const socket = connect(Number(new URL(url).port), "127.0.0.1");
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    // "Expect: 100-continue": the server answers "100 Continue" as it hands the request to the
    // handler, so the test knows the handler is reading the body when the client hangs up
    const continued = new Promise<void>((resolve) =>
      socket.on("data", (d) => {
        if (String(d).includes("100 Continue")) resolve();
      }),
    );
    socket.write(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n",
    );
    await continued;
    socket.write('{"jsonrpc":');
    socket.destroy();
    await until(async () => lines.length > before);
    const mine = lines.slice(before);
    expect(mine.filter((l) => l.level === "error")).toEqual([]);
    const line = mine.find((l) => l.msg.includes("abort"));
    expect(line?.level).toBe("debug");
    expect(String(line?.fields.cause)).toMatch(/abort|reset|closed/i);
    expect(await counter("other", "aborted")).toBe(1);
    // and the server goes on serving
    expect((await post({ jsonrpc: "2.0", id: 9, method: "custos_status" })).result).toEqual({ ok: true });
  });
});
