import { CustosClient } from "@custos/client";
import { generateKeyPair, type Sm2KeyPair } from "@custos/crypto";
import { signRpcRequest } from "@custos/types";
import { nullLogger, toHex } from "@custos/utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemberSignatures } from "../../src/rpc/memberAuth.js";
import type { MethodSpec } from "../../src/rpc/methods.js";
import { RpcServer } from "../../src/rpc/server.js";

/**
 * Requests signed with a member's SM2 key as the alternative to an API key: a real server on a
 * kernel-chosen port, the real client SDK, and hand-made requests for every refusal.
 */
const CHAIN = "custos-signed-rpc";
const member = generateKeyPair();
const stranger = generateKeyPair();
const registry = new Map<string, Uint8Array>([[member.address, member.publicKey]]);
const sent: string[] = [];
const methods: Record<string, MethodSpec> = {
  custos_status: { scope: "read", fn: async () => ({ chainId: CHAIN }) },
  custos_sendTx: {
    scope: "write",
    fn: async ([raw]) => {
      sent.push(String(raw));
      return { hash: `0x${"ab".repeat(32)}` };
    },
  },
  custos_shutdown: { scope: "admin", fn: async () => true },
};
const READ_KEY = "read-only-key-0123456789";
let url: string;
let strict: RpcServer;
let closed: RpcServer;
let closedUrl: string;
let now = Date.now();

beforeAll(async () => {
  strict = new RpcServer(
    {
      host: "127.0.0.1",
      port: 0,
      maxBodyBytes: 64 * 1024,
      maxBatch: 10,
      rateLimit: 0,
      apiKeys: [{ key: READ_KEY, scopes: ["read"], name: "reader" }],
      chainId: CHAIN,
      memberSignatures: new MemberSignatures(
        { chainId: CHAIN, windowMs: 60_000, maxNonces: 50 },
        async (address) => registry.get(address),
        () => now,
      ),
    },
    methods,
    nullLogger,
  );
  url = await strict.start();
  closed = new RpcServer(
    { host: "127.0.0.1", port: 0, maxBodyBytes: 4096, maxBatch: 10, rateLimit: 0, chainId: CHAIN },
    methods,
    nullLogger,
  );
  closedUrl = await closed.start();
});
afterAll(async () => {
  await strict?.close();
  await closed?.close();
});

async function post(
  body: string,
  headers: Record<string, string> = {},
  to = url,
): Promise<{
  status: number;
  json: { result?: unknown; error?: { data: { code: string }; message: string } };
}> {
  const r = await fetch(to, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  return { status: r.status, json: await r.json() };
}

const request = (method: string, params: unknown[] = [], id = 1) =>
  JSON.stringify({ jsonrpc: "2.0", id, method, params });
const signed = (
  key: Sm2KeyPair,
  body: string,
  o: { chainId?: string; timestamp?: number; nonce?: string } = {},
) =>
  signRpcRequest(key, o.chainId ?? CHAIN, new TextEncoder().encode(body), {
    timestamp: o.timestamp ?? now,
    ...o,
  });

describe("requests signed with a member's SM2 key", () => {
  it("the SDK signs, learning the chain id from /health: reads and writes pass without an API key", async () => {
    now = Date.now();
    expect(await (await fetch(`${url}/health`)).json()).toEqual({ ok: true, chainId: CHAIN });
    // unsigned and keyless: refused; a read key cannot write
    await expect(new CustosClient(url).status()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(
      new CustosClient(url, { apiKey: READ_KEY }).sendRawTx(new Uint8Array([1])),
    ).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    const client = new CustosClient(url, { signer: { key: async () => member } });
    expect(await client.status()).toEqual({ chainId: CHAIN });
    expect(await client.sendRawTx(new Uint8Array([7, 7]))).toBe(`0x${"ab".repeat(32)}`);
    expect(sent.at(-1)).toBe("0x0707");
    // a member is not an administrator
    await expect(client.request("custos_shutdown")).rejects.toMatchObject({ code: "FORBIDDEN" });
  });

  it("the same signed request twice is a replay", async () => {
    const body = request("custos_sendTx", ["0x01"]);
    const h = signed(member, body);
    expect((await post(body, h)).json.result).toBeDefined();
    const again = await post(body, h);
    expect(again.status).toBe(401);
    expect(again.json.error?.data.code).toBe("SIGNATURE_REPLAYED");
  });

  it("another body under the same headers, another chain's signature, a stranger: refused", async () => {
    const body = request("custos_sendTx", ["0x01"]);
    const h = signed(member, body);
    const tampered = await post(request("custos_sendTx", ["0x02"]), h);
    expect([tampered.status, tampered.json.error?.data.code]).toEqual([401, "SIGNATURE_INVALID"]);
    const otherChain = await post(body, signed(member, body, { chainId: "another-chain" }));
    expect(otherChain.json.error?.data.code).toBe("SIGNATURE_INVALID");
    const notMember = await post(body, signed(stranger, body));
    expect(notMember.json.error?.data.code).toBe("SIGNATURE_UNKNOWN_MEMBER");
    // claiming to be the member with a stranger's signature
    const forged = { ...signed(stranger, body), "x-custos-member": member.address };
    expect((await post(body, forged)).json.error?.data.code).toBe("SIGNATURE_INVALID");
  });

  it("outside the time window either way: refused, saying to check the clock", async () => {
    const body = request("custos_status");
    for (const skew of [-61_000, 61_000]) {
      const r = await post(body, signed(member, body, { timestamp: now + skew }));
      expect(r.json.error?.data.code).toBe("SIGNATURE_EXPIRED");
      expect(r.json.error?.message).toMatch(/clock/);
    }
    expect((await post(body, signed(member, body, { timestamp: now + 59_000 }))).json.result).toBeDefined();
  });

  it("malformed headers are named; a node that does not accept signatures says so", async () => {
    const body = request("custos_status");
    const h = signed(member, body);
    const { "x-custos-nonce": _nonce, ...noNonce } = h;
    const r = await post(body, noNonce);
    expect([r.status, r.json.error?.data.code]).toEqual([401, "SIGNATURE_MALFORMED"]);
    expect(r.json.error?.message).toMatch(/X-Custos-Nonce/);
    const upper = { ...h, "x-custos-member": member.address.toUpperCase().replace("0X", "0x") };
    expect((await post(body, upper)).json.error?.data.code).toBe("SIGNATURE_MALFORMED");
    const off = await post(body, signed(member, body), closedUrl);
    expect([off.status, off.json.error?.data.code]).toEqual([401, "SIGNATURES_NOT_ACCEPTED"]);
  });

  it("nonces are forgotten after the window; a full nonce cache refuses with a retryable RATE_LIMITED", async () => {
    now += 200_000; // every nonce so far is out of the window
    const body = request("custos_status");
    let limited: { status: number; json: { error?: { data: { code: string } } } } | undefined;
    for (let i = 0; i < 60 && !limited; i++) {
      const r = await post(body, signed(member, body, { nonce: toHex(new Uint8Array(16).fill(i)) }));
      if (r.status !== 200) limited = r;
    }
    expect(limited?.status).toBe(429);
    expect(limited?.json.error?.data.code).toBe("RATE_LIMITED");
    now += 200_000;
    expect((await post(body, signed(member, body))).json.result).toBeDefined();
  });
});
