import { decode, encode } from "@custos/codec";
import { nullLogger } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import { Executor } from "../../src/execution/executor.js";
import type { Ledger } from "../../src/ledger/ledger.js";
import { commitBlock, openLedger } from "../chain.js";
import { tempDir, testChain, tx } from "../helpers.js";

const CODE = `export function put(k, v) { custos.storage.set(k, v); return custos.storage.scan("", { limit: 10 }).length; }
export function get(k) { return custos.storage.get(k); }`;

describe("contract gas does not depend on what this node has cached or run", () => {
  const chain = testChain();
  let ledger: Ledger;
  let cleanup: () => Promise<void>;
  afterAll(async () => {
    await ledger?.close();
    await cleanup?.();
  });

  it("a fresh executor and one that served queries and other blocks write the same receipts", async () => {
    const t = await tempDir("custos-vmgas-");
    cleanup = t.cleanup;
    ledger = await openLedger(t.dir, chain);
    const out = (r: { output: Uint8Array }) => decode(r.output, "Output", 1 << 16) as Map<string, any>;
    const submitted = await commitBlock(ledger, chain, [
      tx(chain, "bank", "submit", ["kv", "1.0.0", "", [], "demo", CODE], { to: "templates" }),
    ]);
    const { codeHash, proposalId } = Object.fromEntries(out(submitted.result.receipts[0] as never));
    await commitBlock(ledger, chain, [
      tx(chain, "committee-1", "vote", [proposalId, true], { to: "governance" }),
    ]);
    await commitBlock(ledger, chain, [
      tx(chain, "committee-2", "vote", [proposalId, true], { to: "governance" }),
    ]);
    const created = await commitBlock(ledger, chain, [
      tx(chain, "bank", "instantiate", [codeHash, null], { to: "templates" }),
    ]);
    const address = out(created.result.receipts[0] as never).get("address") as string;
    expect(address).toMatch(/^0x[0-9a-f]{40}$/);

    const block = [
      tx(chain, "consumer-1", "put", ["a", "1"], { to: address }),
      tx(chain, "consumer-3", "put", ["b", "2"], { to: address }),
      tx(chain, "consumer-1", "get", ["a"], { to: address }),
    ];
    const env = { height: ledger.head.height + 1, timestamp: ledger.head.header.timestamp + 1000 };
    const warm = new Executor(chain.genesis, nullLogger);
    await warm.query(ledger, address, "get", encode(["a"]), env); // loads the code and the engine
    await warm.executeBlock([tx(chain, "consumer-1", "put", ["z", "9"], { to: address })], env, ledger);
    const cold = new Executor(chain.genesis, nullLogger);
    const a = await cold.executeBlock(block, env, ledger);
    const b = await warm.executeBlock(block, env, ledger);
    expect(a.receipts.every((r) => r.success)).toBe(true);
    expect(b.receipts.map((r) => r.gasUsed)).toEqual(a.receipts.map((r) => r.gasUsed));
    expect(b.receipts).toEqual(a.receipts);
    expect([...b.writes.keys()].sort()).toEqual([...a.writes.keys()].sort());
  });
});
