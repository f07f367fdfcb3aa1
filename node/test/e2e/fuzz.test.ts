import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { CustosClient, Wallet } from "@custos/client";
import { encode } from "@custos/codec";
import { decodeEnvelope, encodeEnvelope, prepareBody } from "@custos/consensus";
import { loadKeystoreFile } from "@custos/crypto";
import { decodeCertificate, decodeSignedTx } from "@custos/types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import {
  decodeSyncBlock,
  decodeSyncHead,
  decodeSyncRequest,
  encodeSyncRequest,
} from "../../src/chain/syncProtocol.js";
import { CustosNode, initHome } from "../../src/index.js";
import { tempDir } from "../helpers.js";

/**
 * Seeded, time-bounded fuzzing (issue 17): JSON-RPC over HTTP and WebSocket against a running
 * node, and the decoders of every p2p frame (consensus envelopes, sync requests and answers,
 * certificates, gossiped transactions). Afterwards the node answers, its chain is unchanged and
 * every answer was a clean JSON-RPC error. CUSTOS_FUZZ_SEED and CUSTOS_FUZZ_MS change the seed
 * and the time per target; a failure names the seed and the input.
 */
const SEED = Number(process.env.CUSTOS_FUZZ_SEED ?? 1717);
const BUDGET_MS = Number(process.env.CUSTOS_FUZZ_MS ?? 4000);
const MAX_CASES = 20_000;

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const METHODS = [
  "custos_status",
  "custos_getBlock",
  "custos_getTx",
  "custos_sendTx",
  "custos_call",
  "custos_getEvents",
  "ecny_balance",
  "custos_subscribe",
  "custos_unsubscribe",
  "admin_backupStatus",
  "admin_snapshots",
  "nope",
  "",
];

/** A random JSON value, nested at most `depth`. */
function value(r: () => number, depth = 3): unknown {
  const k = Math.floor(r() * (depth > 0 ? 12 : 9));
  switch (k) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return Math.floor(r() * 2 ** 53) * (r() < 0.5 ? -1 : 1);
    case 3:
      return [0, -1, 1e308, -0, 2 ** 64, 0.5, Number.MAX_SAFE_INTEGER + 2][Math.floor(r() * 7)];
    case 4:
      return `0x${Array.from({ length: Math.floor(r() * 70) }, () => "0123456789abcdefg"[Math.floor(r() * 17)]).join("")}`;
    case 5:
      return ["latest", "ecny", "Transfer", "newBlocks", "events", "transfer", "\u0000", "💥"][
        Math.floor(r() * 8)
      ];
    case 6:
      return "x".repeat(Math.floor(r() * 3000));
    case 7:
      return String(Math.floor(r() * 1000));
    case 8:
      return "";
    case 9:
    case 10:
      return Array.from({ length: Math.floor(r() * 5) }, () => value(r, depth - 1));
    default:
      return Object.fromEntries(
        Array.from({ length: Math.floor(r() * 4) }, () => [
          ["emitter", "name", "__proto__", "constructor", "to", "method", "args"][Math.floor(r() * 7)],
          value(r, depth - 1),
        ]),
      );
  }
}

/** A request body: mostly well-formed JSON-RPC with wrong params, sometimes broken JSON or a batch. */
function body(r: () => number): string {
  const req = () => {
    const o: Record<string, unknown> = { jsonrpc: r() < 0.9 ? "2.0" : value(r, 0), id: value(r, 0) };
    if (r() < 0.95) o.method = METHODS[Math.floor(r() * METHODS.length)];
    if (r() < 0.9) o.params = r() < 0.8 ? (value(r, 2) as unknown[]) : [value(r), value(r), value(r)];
    return o;
  };
  const k = r();
  if (k < 0.7) return JSON.stringify(req());
  if (k < 0.8) return JSON.stringify(Array.from({ length: Math.floor(r() * 4) }, req));
  const s = JSON.stringify(req());
  // broken: cut, a byte flipped, or noise
  if (k < 0.9) return s.slice(0, Math.floor(r() * s.length));
  if (k < 0.95) {
    const i = Math.floor(r() * s.length);
    return s.slice(0, i) + String.fromCharCode(Math.floor(r() * 256)) + s.slice(i + 1);
  }
  return Array.from({ length: Math.floor(r() * 200) }, () =>
    String.fromCharCode(Math.floor(r() * 65536)),
  ).join("");
}

/** What any answer must look like: a JSON-RPC 2.0 result or an error with a stable string code. */
function cleanAnswer(json: unknown): string | undefined {
  const one = (a: unknown): string | undefined => {
    const o = a as {
      jsonrpc?: unknown;
      error?: { code?: unknown; message?: unknown; data?: { code?: unknown } };
    };
    if (!o || typeof o !== "object" || o.jsonrpc !== "2.0")
      return `not JSON-RPC 2.0: ${JSON.stringify(a)?.slice(0, 200)}`;
    if (!o.error) return undefined;
    if (typeof o.error.code !== "number" || typeof o.error.message !== "string" || o.error.message === "")
      return `error without code or message: ${JSON.stringify(o.error).slice(0, 200)}`;
    if (typeof o.error.data?.code !== "string" || !/^[A-Z][A-Z0-9_]+$/.test(o.error.data.code))
      return `error without a stable string code: ${JSON.stringify(o.error).slice(0, 200)}`;
    if (/TypeError|RangeError|Cannot read|undefined is not|at .*\.ts:\d+/.test(o.error.message))
      return `an internal error leaked: ${o.error.message.slice(0, 200)}`;
    return undefined;
  };
  if (Array.isArray(json)) {
    for (const a of json) {
      const bad = one(a);
      if (bad) return bad;
    }
    return undefined;
  }
  return one(json);
}

let node: CustosNode;
let client: CustosClient;
let cleanup: () => Promise<void>;
let before: { height: number; latestHash: string; balance: string };
let consumer = "";

beforeAll(async () => {
  const t = await tempDir("custos-fuzz-");
  cleanup = t.cleanup;
  const r = await initHome({ home: t.dir, dev: true, kdfIterations: 1000 });
  const password = (await readFile(join(t.dir, "dev-password"), "utf8")).trim();
  const op = r.accounts?.find((a) => a.name === "operator") as { keyFile: string };
  consumer = r.accounts?.find((a) => a.name === "consumer-1")?.address ?? "";
  node = await CustosNode.start({ home: t.dir, rpcListen: "127.0.0.1:0" });
  client = new CustosClient(node.rpcUrl);
  await new Wallet(client, await loadKeystoreFile(op.keyFile, password)).send({
    to: "ecny",
    method: "issue",
    args: [consumer, 1000n, "fuzz-1"],
  });
  const s = await client.status();
  before = {
    height: s.height,
    latestHash: s.latestHash,
    balance: (await client.ecnyBalance(consumer)).balance,
  };
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await cleanup?.();
});

async function unchanged(): Promise<void> {
  const s = await client.status();
  expect({
    height: s.height,
    latestHash: s.latestHash,
    balance: (await client.ecnyBalance(consumer)).balance,
  }).toEqual(before);
  expect((await fetch(`${node.rpcUrl}/health`)).status).toBe(200);
}

describe(`fuzzing (seed ${SEED}, ${BUDGET_MS} ms per target)`, () => {
  it("JSON-RPC over HTTP: every answer is a clean JSON-RPC error or result; the node and its chain are unchanged", async () => {
    const r = rng(SEED);
    const end = Date.now() + BUDGET_MS;
    let n = 0;
    for (; n < MAX_CASES && Date.now() < end; n++) {
      const b = body(r);
      const res = await fetch(node.rpcUrl, {
        method: "POST",
        headers: { "content-type": r() < 0.9 ? "application/json" : "text/plain" },
        body: b,
      });
      expect(res.status, `case ${n}: ${b.slice(0, 300)}`).toBeLessThan(500);
      const text = await res.text();
      if (text === "") continue; // a batch of notifications has no answer
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new Error(`case ${n} (seed ${SEED}): not JSON: ${text.slice(0, 200)} for ${b.slice(0, 300)}`);
      }
      expect(cleanAnswer(json), `case ${n} (seed ${SEED}): ${b.slice(0, 300)}`).toBeUndefined();
    }
    expect(n).toBeGreaterThan(50);
    await unchanged();
  }, 60_000);

  it("JSON-RPC over WebSocket: text, binary and broken frames get clean errors or a closed socket; the node and its chain are unchanged", async () => {
    const r = rng(SEED + 1);
    const end = Date.now() + BUDGET_MS;
    let n = 0;
    let sockets = 0;
    while (n < MAX_CASES && Date.now() < end && sockets < 200) {
      sockets++;
      const ws = new WebSocket(node.rpcUrl.replace("http", "ws"));
      const problems: string[] = [];
      ws.on("message", (data) => {
        let json: unknown;
        try {
          json = JSON.parse(String(data));
        } catch {
          problems.push(`not JSON: ${String(data).slice(0, 200)}`);
          return;
        }
        // subscriptions push notifications that are not answers
        if ((json as { method?: string }).method === "custos_subscription") return;
        const bad = cleanAnswer(json);
        if (bad) problems.push(bad);
      });
      const opened = await new Promise<boolean>((ok) => {
        ws.once("open", () => ok(true));
        ws.once("error", () => ok(false));
      });
      if (!opened) continue;
      for (let k = 0; k < 50 && n < MAX_CASES && Date.now() < end && ws.readyState === ws.OPEN; k++, n++) {
        if (r() < 0.1)
          ws.send(Buffer.from(Array.from({ length: Math.floor(r() * 300) }, () => Math.floor(r() * 256))));
        else ws.send(body(r));
      }
      // a request that must still be answered on this socket, unless the node closed it
      if (ws.readyState === ws.OPEN) {
        const answered = await new Promise<boolean>((ok) => {
          const timer = setTimeout(() => ok(false), 10_000);
          ws.on("message", (d) => {
            if (String(d).includes('"id":"last"')) {
              clearTimeout(timer);
              ok(true);
            }
          });
          ws.once("close", () => {
            clearTimeout(timer);
            ok(true);
          });
          ws.send(JSON.stringify({ jsonrpc: "2.0", id: "last", method: "custos_status", params: [] }));
        });
        expect(answered, `socket ${sockets} (seed ${SEED + 1})`).toBe(true);
      }
      ws.terminate();
      expect(problems, `socket ${sockets} (seed ${SEED + 1})`).toEqual([]);
    }
    expect(n).toBeGreaterThan(50);
    await unchanged();
  }, 60_000);

  it("p2p frames: the consensus, sync, certificate and transaction decoders refuse random and mutated bytes with a coded error, never anything else", () => {
    const r = rng(SEED + 2);
    const bytes = (len: number) => Uint8Array.from({ length: len }, () => Math.floor(r() * 256));
    const mutate = (b: Uint8Array): Uint8Array => {
      const out = Uint8Array.from(b);
      const k = r();
      if (k < 0.4)
        for (let i = 0; i < 1 + r() * 4; i++) out[Math.floor(r() * out.length)] = Math.floor(r() * 256);
      else if (k < 0.7) return out.slice(0, Math.floor(r() * out.length));
      else return Uint8Array.from([...out, ...bytes(Math.floor(r() * 40))]);
      return out;
    };
    const seeds: Uint8Array[] = [
      encodeEnvelope(prepareBody("custos-dev", 5, 0, bytes(32)), 1, bytes(64)),
      encodeSyncRequest({ kind: "blocks", from: 1, count: 10 }),
      encodeSyncRequest({ kind: "head" }),
      encode([7, bytes(32)]),
      encode([bytes(200), bytes(300)]),
      encode([[encode([bytes(120), bytes(64)])], 0]),
    ];
    const decoders: [string, (b: Uint8Array) => unknown][] = [
      ["consensus envelope", (b) => decodeEnvelope(b, 1024 * 1024)],
      ["sync request", decodeSyncRequest],
      ["sync head", decodeSyncHead],
      ["sync block", decodeSyncBlock],
      ["certificate", decodeCertificate],
      ["signed tx", decodeSignedTx],
    ];
    const end = Date.now() + BUDGET_MS;
    let n = 0;
    for (; n < MAX_CASES && Date.now() < end; n++) {
      const input =
        r() < 0.3
          ? bytes(Math.floor(r() * 200))
          : mutate(seeds[Math.floor(r() * seeds.length)] as Uint8Array);
      for (const [name, decode] of decoders) {
        try {
          decode(input);
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          expect(
            typeof code === "string" && /^[A-Z][A-Z0-9_]+$/.test(code),
            `${name} threw ${String(err)} for ${Buffer.from(input).toString("hex").slice(0, 400)} (seed ${SEED + 2}, case ${n})`,
          ).toBe(true);
        }
      }
    }
    expect(n).toBeGreaterThan(100);
  }, 60_000);
});
