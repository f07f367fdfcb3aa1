import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "@custos/utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { MethodSpec } from "../../src/rpc/methods.js";
import { RpcServer } from "../../src/rpc/server.js";

const quiet: Logger = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => quiet,
};

const methods: Record<string, MethodSpec> = {
  custos_status: { scope: "read", fn: async () => ({ height: 7 }) },
};
const KEY = "explorer-test-key-0123456789";

let dir: string;
let built: RpcServer;
let bare: RpcServer;
let builtUrl: string;
let bareUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "custos-explorer-assets-"));
  await mkdir(join(dir, "dist", "chunks"), { recursive: true });
  await writeFile(join(dir, "dist", "index.html"), "<!doctype html><title>x</title>");
  await writeFile(join(dir, "dist", "app.js"), "export {};");
  await writeFile(join(dir, "dist", "style.css"), "body{}");
  await writeFile(join(dir, "dist", "chunks", "verify-1.js"), "export {};");
  await writeFile(join(dir, "secret.txt"), "not an asset");
  const opts = { host: "127.0.0.1", port: 0, maxBodyBytes: 4096, maxBatch: 10, rateLimit: 0 };
  built = new RpcServer(
    { ...opts, explorerDir: join(dir, "dist"), apiKeys: [{ key: KEY, scopes: ["read"] }] },
    methods,
    quiet,
  );
  bare = new RpcServer({ ...opts, explorerDir: join(dir, "missing") }, methods, quiet);
  builtUrl = await built.start();
  bareUrl = await bare.start();
});

afterAll(async () => {
  await built?.close();
  await bare?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("the explorer's assets on the RPC port", () => {
  it("serves the page and its scripts with their content types, without a key", async () => {
    for (const [path, type] of [
      ["/explorer", "text/html"],
      ["/explorer/", "text/html"],
      ["/explorer/app.js", "text/javascript"],
      ["/explorer/style.css", "text/css"],
      ["/explorer/chunks/verify-1.js", "text/javascript"],
    ]) {
      const res = await fetch(`${builtUrl}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type"), path).toContain(type);
      expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    }
  });

  it("serves nothing outside its folder, and the RPC still wants its key", async () => {
    // raw paths, as an attacker sends them (fetch would normalise the dots away)
    const raw = (path: string) =>
      new Promise<number>((resolve, reject) =>
        get({ hostname: "127.0.0.1", port: new URL(builtUrl).port, path }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on("error", reject),
      );
    for (const path of [
      "/explorer/../secret.txt",
      "/explorer/%2e%2e/secret.txt",
      "/explorer/..%2fsecret.txt",
    ])
      expect(await raw(path), path).toBe(404);
    expect(await raw("/explorer/%E0%A4%A"), "a malformed escape").toBe(400);
    expect((await fetch(`${builtUrl}/explorer/nothing.js`)).status).toBe(404);
    const rpc = (headers: Record<string, string>) =>
      fetch(builtUrl, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "custos_status", params: [] }),
      });
    expect((await rpc({})).status).toBe(401);
    expect(await (await rpc({ authorization: `Bearer ${KEY}` })).json()).toMatchObject({
      result: { height: 7 },
    });
  });

  it("takes the key of a browser's WebSocket as its subprotocol", async () => {
    const open = (protocols?: string[]) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(builtUrl.replace("http", "ws"), protocols);
        ws.on("open", () => {
          ws.close();
          resolve("open");
        });
        ws.on("error", (e) => resolve(`refused: ${e.message}`));
      });
    expect(await open()).toMatch(/refused: .*401/);
    expect(await open(["custos-key.wrong-key-0123456789"])).toMatch(/refused: .*401/);
    expect(await open([`custos-key.${KEY}`])).toBe("open");
  });

  it("answers a clear 404 page naming the build command when the explorer is not built", async () => {
    const res = await fetch(`${bareUrl}/explorer/`);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain("npm install");
    const rpc = await fetch(bareUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "custos_status", params: [] }),
    });
    expect(await rpc.json()).toMatchObject({ result: { height: 7 } });
  });
});
