import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CustosClient, subscribe, Wallet } from "@custos/client";
import { encode } from "@custos/codec";
import { loadKeystoreFile, type Sm2KeyPair } from "@custos/crypto";
import { signTx } from "@custos/types";
import { toHex } from "@custos/utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { CustosNode, initHome } from "../../src/index.js";
import { tempDir } from "../helpers.js";

let node: CustosNode;
let client: CustosClient;
let cleanup: () => Promise<void>;
let home: string;
const keys: Record<string, Sm2KeyPair> = {};
const wallet = (name: string) => new Wallet(client, keys[name] as Sm2KeyPair);

beforeAll(async () => {
  const t = await tempDir("custos-rpc-");
  cleanup = t.cleanup;
  home = t.dir;
  const r = await initHome({ home, dev: true, kdfIterations: 1000 });
  const password = (await readFile(join(home, "dev-password"), "utf8")).trim();
  for (const a of r.accounts ?? []) keys[a.name] = await loadKeystoreFile(a.keyFile, password);
  node = await CustosNode.start({ home, rpcListen: "127.0.0.1:0" });
  client = new CustosClient(node.rpcUrl);
  await wallet("operator").send({
    to: "ecny",
    method: "issue",
    args: [keys["consumer-1"]?.address, 1_000_000n, "rc-setup"],
  });
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await cleanup?.();
});

async function raw(
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any }> {
  const res = await fetch(node.rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function rpcError(
  method: string,
  params: unknown[],
): Promise<{ code: number; data: { code: string } }> {
  const r = await raw(JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }));
  return r.json.error;
}

describe("bad input never harms the node", () => {
  it("each kind of bad input gets its own error code, the node keeps serving, nothing changes", async () => {
    const before = await client.status();
    const balanceBefore = await client.ecnyBalance(keys["consumer-1"]?.address as string);
    const c1 = keys["consumer-1"] as Sm2KeyPair;
    const body = (over: Record<string, unknown> = {}) => ({
      version: 1 as const,
      chainId: before.chainId,
      nonce: new Uint8Array(16).fill(7),
      blockLimit: before.height + 10,
      sender: c1.publicKey,
      to: "ecny",
      method: "transfer",
      args: encode([keys["merchant-1"]?.address, 1n]),
      value: 0n,
      memo: null,
      ...over,
    });
    const hexOf = (b: Uint8Array) => `0x${toHex(b)}`;
    const good = signTx(body(), c1.privateKey);
    const badSig = encode([good.body, new Uint8Array(64).fill(1)]);
    const otherKeySig = signTx(body(), (keys["consumer-2"] as Sm2KeyPair).privateKey);
    const forged = encode([good.body, otherKeySig.signature]);

    // malformed JSON, wrong shapes and params
    expect((await raw("{not json")).json.error).toMatchObject({
      code: -32700,
      data: { code: "PARSE_ERROR" },
    });
    expect((await raw(JSON.stringify({ id: 1, method: "custos_status" }))).json.error.data.code).toBe(
      "INVALID_REQUEST",
    );
    expect(
      (await raw(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "custos_status", params: { a: 1 } }))).json
        .error.data.code,
    ).toBe("INVALID_PARAMS");
    expect((await rpcError("custos_nothing", [])).data.code).toBe("METHOD_NOT_FOUND");
    expect((await rpcError("custos_getBlock", [{}])).data.code).toBe("INVALID_PARAMS");
    expect((await rpcError("custos_getTx", [42])).data.code).toBe("INVALID_PARAMS");
    expect((await rpcError("custos_sendTx", [12345])).data.code).toBe("INVALID_PARAMS");
    // not hex of whole bytes: no prefix, an odd digit count, a non-digit at the start, the middle and the end
    for (const bad of ["c1c1", "0xc1c", "0xzzc1", "0xc1zzc1", "0xc1c1zz", "0x c1"])
      expect((await rpcError("custos_sendTx", [bad])).data.code, bad).toBe("INVALID_PARAMS");
    expect((await rpcError("ecny_balance", ["0x12"])).data.code).toBe("INVALID_ARGUMENTS");
    expect((await raw("x".repeat(2 * 1024 * 1024))).status).toBe(413);
    // transactions
    expect((await rpcError("custos_sendTx", [hexOf(new Uint8Array(70_000))])).data.code).toBe("TX_TOO_LARGE");
    expect((await rpcError("custos_sendTx", ["0xdeadbeef00"])).data.code).toBe("TX_MALFORMED");
    expect((await rpcError("custos_sendTx", [hexOf(badSig)])).data.code).toBe("TX_BAD_SIGNATURE");
    expect((await rpcError("custos_sendTx", [hexOf(forged)])).data.code).toBe("TX_BAD_SIGNATURE");
    expect(
      (
        await rpcError("custos_sendTx", [
          hexOf(signTx(body({ blockLimit: before.height }), c1.privateKey).bytes),
        ])
      ).data.code,
    ).toBe("TX_BLOCK_LIMIT_EXPIRED");
    expect(
      (
        await rpcError("custos_sendTx", [
          hexOf(signTx(body({ blockLimit: before.height + 601 }), c1.privateKey).bytes),
        ])
      ).data.code,
    ).toBe("TX_BLOCK_LIMIT_TOO_FAR");
    expect(
      (
        await rpcError("custos_sendTx", [
          hexOf(signTx(body({ chainId: "other-chain" }), c1.privateKey).bytes),
        ])
      ).data.code,
    ).toBe("TX_WRONG_CHAIN");
    const stranger = (await import("@custos/crypto")).generateKeyPair();
    expect(
      (
        await rpcError("custos_sendTx", [
          hexOf(signTx(body({ sender: stranger.publicKey }), stranger.privateKey).bytes),
        ])
      ).data.code,
    ).toBe("TX_SENDER_NOT_MEMBER");

    const after = await client.status();
    expect(after.height).toBe(before.height);
    expect(after.latestHash).toBe(before.latestHash);
    expect(await client.ecnyBalance(c1.address)).toEqual(balanceBefore);
  });

  it("a replayed transaction is refused, pending or committed, and runs once", async () => {
    const w = wallet("consumer-1");
    const stx = await w.build({ to: "ecny", method: "transfer", args: [keys["merchant-1"]?.address, 100n] });
    const hash = await client.sendRawTx(stx.bytes);
    await expect(client.sendRawTx(stx.bytes)).rejects.toMatchObject({ code: "TX_DUPLICATE" });
    const done = await client.waitForTx(hash);
    expect(done.receipt?.success).toBe(true);
    await expect(client.sendRawTx(stx.bytes)).rejects.toMatchObject({ code: "TX_ALREADY_COMMITTED" });
    expect((await client.ecnyBalance(keys["merchant-1"]?.address as string)).balance).toBe("100");
  });

  it("business-rule failures commit as failed receipts with their codes and change no balance", async () => {
    const m1 = keys["merchant-1"]?.address as string;
    const c3 = keys["consumer-3"]?.address as string;
    // within consumer-1's tier-2 limits (5,000,000 single) but above its balance
    const over = await wallet("consumer-1").send({ to: "ecny", method: "transfer", args: [m1, 4_000_000n] });
    expect(over.receipt).toMatchObject({ success: false, errorCode: "ECNY_INSUFFICIENT_BALANCE" });
    await wallet("operator").send({ to: "ecny", method: "issue", args: [c3, 300_000n, "rc-c3"] });
    const tier = await wallet("consumer-3").send({ to: "ecny", method: "transfer", args: [m1, 200_001n] });
    expect(tier.receipt).toMatchObject({ success: false, errorCode: "ECNY_SINGLE_LIMIT_EXCEEDED" });
    const freeze = await wallet("regulator").send({
      to: "ecny",
      method: "freeze",
      args: [c3, "investigation"],
    });
    expect(freeze.receipt?.success).toBe(true);
    const frozen = await wallet("consumer-3").send({ to: "ecny", method: "transfer", args: [m1, 1n] });
    expect(frozen.receipt).toMatchObject({ success: false, errorCode: "ECNY_ACCOUNT_FROZEN" });
    expect(await client.ecnyBalance(c3)).toEqual({ address: c3, balance: "300000", frozen: "investigation" });
  });
});

describe("queries", () => {
  it("a committed tx comes with its receipt and inclusion proofs that verify against the block", async () => {
    const r = await wallet("consumer-1").send({
      to: "ecny",
      method: "transfer",
      args: [keys["merchant-2"]?.address, 5n],
      memo: "card 42",
    });
    const v = await client.getTx(r.hash);
    expect(v.status).toBe("committed");
    expect(v.tx).toMatchObject({
      from: keys["consumer-1"]?.address,
      to: "ecny",
      method: "transfer",
      memo: "card 42",
    });
    const block = await client.getBlock(v.blockHeight as number);
    expect(block.hash).toBe(v.blockHash);
    const { verifyMerkleProof } = await import("@custos/codec");
    const p = v.txProof as { leafIndex: number; treeSize: number; path: string[]; root: string };
    expect(p.root).toBe(block.txRoot);
    const fromHex = (h: string) => Buffer.from(h.slice(2), "hex");
    expect(
      verifyMerkleProof(
        fromHex(r.hash),
        { leafIndex: p.leafIndex, treeSize: p.treeSize, path: p.path.map(fromHex) },
        fromHex(p.root),
      ),
    ).toBe(true);
    expect((await client.getBlock(v.blockHash as string)).height).toBe(v.blockHeight);
    await expect(client.getBlock(10_000)).rejects.toMatchObject({ code: "BLOCK_NOT_FOUND" });
    await expect(client.getTx(`0x${"ab".repeat(32)}`)).rejects.toMatchObject({ code: "TX_NOT_FOUND" });
  });

  it("serves Prometheus metrics", async () => {
    const text = await (await fetch(`${node.rpcUrl}/metrics`)).text();
    const height = (await client.status()).height;
    expect(text).toContain(`custos_block_height ${height}`);
    expect(text).toMatch(/custos_txs_committed_total [1-9]/);
    expect(text).toMatch(/custos_tx_rejected_total\{code="TX_BAD_SIGNATURE"\} [1-9]/);
    expect(text).toMatch(/custos_block_interval_seconds_count [1-9]/);
    expect(text).toMatch(/process_resident_memory_bytes [1-9]/);
    expect(text).toMatch(/custos_ledger_disk_bytes [1-9]/);
  });
});

describe("WebSocket subscriptions", () => {
  it("delivers new blocks and contract events matching a filter", async () => {
    const ws = new WebSocket(node.rpcUrl.replace("http", "ws"));
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const messages: any[] = [];
    ws.on("message", (m) => messages.push(JSON.parse(String(m))));
    const call = (id: number, method: string, params: unknown[]) =>
      ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    call(1, "custos_subscribe", ["newBlocks"]);
    call(2, "custos_subscribe", ["events", { emitter: "ecny", name: "Transfer" }]);
    call(3, "custos_subscribe", ["bogus"]);
    const until = async (pred: () => boolean) => {
      for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 25));
    };
    await until(() => messages.filter((m) => m.id).length === 3);
    const subBlocks = messages.find((m) => m.id === 1).result;
    const subEvents = messages.find((m) => m.id === 2).result;
    expect(messages.find((m) => m.id === 3).error.data.code).toBe("INVALID_PARAMS");
    const r = await wallet("consumer-1").send({
      to: "ecny",
      method: "transfer",
      args: [keys["merchant-2"]?.address, 7n],
    });
    await until(() => messages.some((m) => m.params?.subscription === subEvents));
    const ev = messages.find((m) => m.params?.subscription === subEvents).params.result;
    expect(ev).toMatchObject({
      emitter: "ecny",
      name: "Transfer",
      txHash: r.hash,
      data: [keys["consumer-1"]?.address, keys["merchant-2"]?.address, "7"],
    });
    const blk = messages.find((m) => m.params?.subscription === subBlocks).params.result;
    expect(blk.txs).toContain(r.hash);
    ws.close();
  });
});

describe("client SDK", () => {
  it("subscribes to events through the SDK", async () => {
    const seen: Record<string, unknown>[] = [];
    const sub = await subscribe(node.rpcUrl, "events", { emitter: "ecny", name: "Issued" }, (e) =>
      seen.push(e),
    );
    const r = await wallet("operator").send({
      to: "ecny",
      method: "issue",
      args: [keys["merchant-2"]?.address, 3n, "rc-sdk-sub"],
    });
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    sub.close();
    expect(seen[0]).toMatchObject({
      name: "Issued",
      txHash: r.hash,
      data: [keys["merchant-2"]?.address, "3", "rc-sdk-sub"],
    });
    await expect(subscribe(node.rpcUrl, "bogus" as "events", undefined, () => {})).rejects.toMatchObject({
      code: "INVALID_PARAMS",
    });
  });

  it("rebuilds and signs again when the node says the blockLimit has expired", async () => {
    // a client whose view of the chain lags: its first status() reports an old height
    class LaggingClient extends CustosClient {
      lag = true;
      override async status() {
        const s = await super.status();
        if (this.lag) {
          this.lag = false;
          return { ...s, height: Math.max(0, s.height - 200), blockLimitWindow: 1 };
        }
        return s;
      }
    }
    const lagging = new LaggingClient(node.rpcUrl);
    const before = await client.status();
    expect(before.height).toBeGreaterThan(2); // so that the lagging blockLimit really is expired
    const r = await new Wallet(lagging, keys["consumer-1"] as Sm2KeyPair).send({
      to: "ecny",
      method: "transfer",
      args: [keys["merchant-2"]?.address, 1n],
    });
    expect(r.receipt?.success).toBe(true);
    expect(lagging.lag).toBe(false);
    expect((r.view?.tx as { blockLimit: number } | undefined)?.blockLimit).toBeGreaterThan(before.height);
  });
});

describe("API keys, scopes and rate limits", () => {
  it("refuses requests without a key, and writes with a read-only key; limits request rates", async () => {
    const t = await tempDir("custos-auth-");
    try {
      await initHome({ home: t.dir, dev: true, kdfIterations: 1000 });
      const cfgPath = join(t.dir, "config.json");
      const cfg = JSON.parse(await readFile(cfgPath, "utf8"));
      cfg.rpc.apiKeys = [
        { name: "reader", key: "read-only-key-0123456789", scopes: ["read"] },
        { name: "writer", key: "read-write-key-0123456789", scopes: ["read", "write"] },
      ];
      cfg.rpc.rateLimit = 5;
      await writeFile(cfgPath, JSON.stringify(cfg));
      const n = await CustosNode.start({ home: t.dir, rpcListen: "127.0.0.1:0" });
      try {
        await expect(new CustosClient(n.rpcUrl).status()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
        await expect(
          new CustosClient(n.rpcUrl, { apiKey: "wrong-key-0000000000000" }).status(),
        ).rejects.toMatchObject({ code: "UNAUTHORIZED" });
        const reader = new CustosClient(n.rpcUrl, { apiKey: "read-only-key-0123456789" });
        expect((await reader.status()).chainId).toBe("custos-dev");
        await expect(reader.sendRawTx(new Uint8Array([1]))).rejects.toMatchObject({ code: "FORBIDDEN" });
        const writer = new CustosClient(n.rpcUrl, { apiKey: "read-write-key-0123456789" });
        await expect(writer.sendRawTx(new Uint8Array([1]))).rejects.toMatchObject({ code: "TX_MALFORMED" });
        const results = await Promise.allSettled(Array.from({ length: 30 }, () => writer.status()));
        const limited = results.filter(
          (r) => r.status === "rejected" && (r.reason as { code?: string }).code === "RATE_LIMITED",
        );
        expect(limited.length).toBeGreaterThan(10);
        expect(results.some((r) => r.status === "fulfilled")).toBe(true);
      } finally {
        await n.stop();
      }
    } finally {
      await t.cleanup();
    }
  });

  it("serves RPC over TLS when configured", async () => {
    const t = await tempDir("custos-tls-");
    try {
      await initHome({ home: t.dir, dev: true, kdfIterations: 1000 });
      const { execFileSync } = await import("node:child_process");
      execFileSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:P-256",
          "-nodes",
          "-days",
          "1",
          "-subj",
          "/CN=127.0.0.1",
          "-addext",
          "subjectAltName=IP:127.0.0.1",
          "-keyout",
          join(t.dir, "key.pem"),
          "-out",
          join(t.dir, "cert.pem"),
        ],
        { stdio: "ignore" },
      );
      const cfgPath = join(t.dir, "config.json");
      const cfg = JSON.parse(await readFile(cfgPath, "utf8"));
      cfg.rpc.tls = { certFile: "cert.pem", keyFile: "key.pem" };
      await writeFile(cfgPath, JSON.stringify(cfg));
      const n = await CustosNode.start({ home: t.dir, rpcListen: "127.0.0.1:0" });
      try {
        expect(n.rpcUrl).toMatch(/^https:\/\//);
        const { request } = await import("node:https");
        const ca = await readFile(join(t.dir, "cert.pem"));
        const body = await new Promise<string>((resolve, reject) => {
          const req = request(
            n.rpcUrl,
            { method: "POST", ca, headers: { "content-type": "application/json" } },
            (res) => {
              let text = "";
              res.on("data", (d) => {
                text += String(d);
              });
              res.on("end", () => resolve(text));
            },
          );
          req.on("error", reject);
          req.end(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "custos_status" }));
        });
        expect(JSON.parse(body).result.chainId).toBe("custos-dev");
        // plain HTTP to the TLS port does not get an answer
        await expect(
          fetch(n.rpcUrl.replace("https", "http"), { method: "POST", body: "{}" }),
        ).rejects.toThrow();
      } finally {
        await n.stop();
      }
    } finally {
      await t.cleanup();
    }
  });
});
