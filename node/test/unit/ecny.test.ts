import { decode } from "@custos/codec";
import type { Receipt } from "@custos/types";
import { nullLogger, toHex } from "@custos/utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Executor } from "../../src/execution/executor.js";
import type { Ledger } from "../../src/ledger/ledger.js";
import { commitBlock, openLedger } from "../chain.js";
import { type TestChain, tempDir, testChain, tx } from "../helpers.js";

let ledger: Ledger;
let chain: TestChain;
let cleanup: () => Promise<void>;
const addr = (name: string) => chain.keys[name]?.address as string;

beforeAll(async () => {
  const t = await tempDir("custos-ecny-");
  cleanup = t.cleanup;
  chain = testChain();
  ledger = await openLedger(t.dir, chain);
});
afterAll(async () => {
  await ledger.close();
  await cleanup();
});

async function run(...txs: ReturnType<typeof tx>[]): Promise<Receipt[]> {
  return (await commitBlock(ledger, chain, txs)).result.receipts;
}

async function balance(name: string): Promise<bigint> {
  const r = (await new Executor(chain.genesis, nullLogger).query(
    ledger,
    "ecny",
    "balance",
    (await import("@custos/codec")).encode([addr(name)]),
    {
      height: ledger.head.height,
      timestamp: ledger.head.header.timestamp,
    },
  )) as { balance: bigint };
  return r.balance;
}

const codes = (rs: Receipt[]) => rs.map((r) => (r.success ? "ok" : r.errorCode));

describe("e-CNY system contract", () => {
  it("issues once per recharge id, only by the operator", async () => {
    const rs = await run(
      tx(chain, "operator", "issue", [addr("consumer-1"), 8_000_000n, "rc-100"]),
      tx(chain, "operator", "issue", [addr("consumer-1"), 8_000_000n, "rc-100"]),
      tx(chain, "merchant", "issue", [addr("merchant"), 1n, "rc-101"]),
      tx(chain, "operator", "issue", [addr("consumer-3"), 1_000_000n, "rc-102"]),
    );
    expect(codes(rs)).toEqual(["ok", "ECNY_DUPLICATE_RECHARGE", "NOT_AUTHORIZED", "ok"]);
    expect(rs[0]?.events.map((e) => e.name)).toEqual(["Issued"]);
    expect(rs[1]?.events).toEqual([]);
    expect(await balance("consumer-1")).toBe(8_000_000n);
  });

  it("transfers within balance and tier limits, with a large-transaction event", async () => {
    const rs = await run(
      tx(chain, "consumer-1", "transfer", [addr("merchant"), 5_000_000n]), // tier 2 single limit, large
      tx(chain, "consumer-1", "transfer", [addr("merchant"), 5_000_001n]), // over single limit
      tx(chain, "consumer-3", "transfer", [addr("merchant"), 200_001n]), // tier 4 single limit is 200,000
      tx(chain, "consumer-3", "transfer", [addr("merchant"), 200_000n]),
      tx(chain, "consumer-3", "transfer", [addr("merchant"), 200_000n]),
      tx(chain, "consumer-3", "transfer", [addr("merchant"), 200_000n]), // daily 500,000 reached
      tx(chain, "merchant", "transfer", [addr("consumer-1"), 999_999_999n]), // more than it has
      tx(chain, "outsider", "transfer", [addr("merchant"), 1n]),
      tx(chain, "consumer-1", "transfer", ["0x12", 1n]),
      tx(chain, "consumer-1", "transfer", [addr("merchant"), 0n]),
      tx(chain, "consumer-1", "nosuch", []),
    );
    expect(codes(rs)).toEqual([
      "ok",
      "ECNY_SINGLE_LIMIT_EXCEEDED",
      "ECNY_SINGLE_LIMIT_EXCEEDED",
      "ok",
      "ok",
      "ECNY_DAILY_LIMIT_EXCEEDED",
      "ECNY_INSUFFICIENT_BALANCE",
      "TX_SENDER_NOT_MEMBER",
      "INVALID_ARGUMENTS",
      "INVALID_AMOUNT",
      "METHOD_NOT_FOUND",
    ]);
    expect(rs[0]?.events.map((e) => e.name)).toEqual(["Transfer", "LargeTransaction"]);
    expect(rs[3]?.events.map((e) => e.name)).toEqual(["Transfer"]);
    expect(decode(rs[0]?.output as Uint8Array, "out", 100)).toEqual([3_000_000n]);
    expect(await balance("merchant")).toBe(5_400_000n);
    expect(await balance("consumer-1")).toBe(3_000_000n);
    expect(await balance("consumer-3")).toBe(600_000n);
  });

  it("a regulator's freeze stops both sending and receiving until unfrozen", async () => {
    const rs = await run(
      tx(chain, "merchant", "freeze", [addr("consumer-1"), "not the regulator"]),
      tx(chain, "regulator", "freeze", [addr("consumer-1"), "court order 2026-17"]),
      tx(chain, "consumer-1", "transfer", [addr("merchant"), 1n]),
      tx(chain, "merchant", "transfer", [addr("consumer-1"), 1n]),
      tx(chain, "operator", "issue", [addr("consumer-1"), 1n, "rc-200"]),
      tx(chain, "regulator", "unfreeze", [addr("consumer-1")]),
      tx(chain, "consumer-1", "transfer", [addr("merchant"), 1n]),
    );
    expect(codes(rs)).toEqual([
      "NOT_AUTHORIZED",
      "ok",
      "ECNY_ACCOUNT_FROZEN",
      "ECNY_ACCOUNT_FROZEN",
      "ECNY_ACCOUNT_FROZEN",
      "ok",
      "ok",
    ]);
  });

  it("e-CNY goes only to members (or contract instances): an address nobody holds is refused", async () => {
    const nobody = addr("outsider"); // a valid key's address, but not a member of this chain
    const before = await balance("consumer-1");
    const rs = await run(
      tx(chain, "consumer-1", "transfer", [nobody, 100n]),
      tx(chain, "consumer-1", "transfer", [`0x${"ab".repeat(20)}`, 100n]),
      tx(chain, "operator", "issue", [nobody, 100n, "rc-300"]),
      tx(chain, "consumer-1", "transfer", [addr("merchant"), 100n]),
    );
    expect(codes(rs)).toEqual([
      "ECNY_RECIPIENT_NOT_MEMBER",
      "ECNY_RECIPIENT_NOT_MEMBER",
      "ECNY_RECIPIENT_NOT_MEMBER",
      "ok",
    ]);
    expect(rs[0]?.errorMessage).toContain(nobody);
    expect(await balance("consumer-1")).toBe(before - 100n);
    expect(await balance("outsider")).toBe(0n);
  });

  it("a repeated recharge id names the first transaction's hash with 0x", async () => {
    const first = tx(chain, "operator", "issue", [addr("merchant"), 1n, "rc-400"]);
    const rs = await run(first, tx(chain, "operator", "issue", [addr("merchant"), 1n, "rc-400"]));
    expect(codes(rs)).toEqual(["ok", "ECNY_DUPLICATE_RECHARGE"]);
    expect(rs[1]?.errorMessage).toContain(`in tx 0x${toHex(first.hash)}`);
  });

  it("a block of only failures writes nothing, and execution is deterministic", async () => {
    const before = toHex(ledger.head.header.stateRoot);
    const failing = [
      tx(chain, "consumer-3", "transfer", [addr("merchant"), 999_999n]),
      tx(chain, "outsider", "issue", [addr("merchant"), 1n, "x"]),
    ];
    const exec = new Executor(chain.genesis, nullLogger);
    const env = { height: ledger.head.height + 1, timestamp: ledger.head.header.timestamp + 1 };
    const a = await exec.executeBlock(failing, env, ledger);
    const b = await exec.executeBlock(failing, env, ledger);
    expect(a.writes.size).toBe(0);
    expect(a.receipts).toEqual(b.receipts);
    expect(a.receipts.every((r) => r.gasUsed > 0n)).toBe(true);
    const { block } = await commitBlock(ledger, chain, failing);
    expect(toHex(block.header.stateRoot)).toBe(before); // the state root is the state's: nothing written, nothing changed
  });
});
