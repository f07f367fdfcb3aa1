import { decode, encode } from "@custos/codec";
import { nullLogger } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import { Executor } from "../../src/execution/executor.js";
import type { Ledger } from "../../src/ledger/ledger.js";
import { commitBlock, openLedger } from "../chain.js";
import { tempDir, testChain, tx } from "../helpers.js";

const CODE = `export function who(a) { return custos.memberOf(a); }
export function regulate(note) {
  const m = custos.memberOf(custos.env.caller);
  if (m === null || !m.roles.includes("regulator")) custos.revert("NOT_REGULATOR", "regulators only");
  custos.storage.set("note", note);
  return m.name;
}`;

describe("VM contracts read the member registry (memberOf)", () => {
  const chain = testChain();
  let ledger: Ledger;
  let cleanup: () => Promise<void>;
  afterAll(async () => {
    await ledger?.close();
    await cleanup?.();
  });

  it("sees names and roles as the registry has them, including a change made earlier in the block", async () => {
    const t = await tempDir("custos-vmmembers-");
    cleanup = t.cleanup;
    ledger = await openLedger(t.dir, chain);
    const out = (r: { output: Uint8Array }) => decode(r.output, "Output", 1 << 16) as any;
    const submitted = await commitBlock(ledger, chain, [
      tx(chain, "bank", "submit", ["roles", "1.0.0", "", [], "demo", CODE], { to: "templates" }),
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

    const executor = new Executor(chain.genesis, nullLogger);
    const env = { height: ledger.head.height + 1, timestamp: ledger.head.header.timestamp + 1000 };
    const q = (a: string) => executor.query(ledger, address, "who", encode([a]), env);
    const regulator = chain.keys.regulator?.address as string;
    expect(await q(regulator)).toEqual({ name: "regulator", roles: ["regulator"] });
    expect(await q(chain.keys.outsider?.address as string)).toBeNull();

    // the merchant is refused; then, in one block, governance makes it a regulator and its call passes
    const merchant = chain.keys.merchant?.address as string;
    const refused = await commitBlock(ledger, chain, [
      tx(chain, "merchant", "regulate", ["x"], { to: address }),
    ]);
    expect(refused.result.receipts[0]?.errorCode).toBe("NOT_REGULATOR");
    const p = await commitBlock(ledger, chain, [
      tx(
        chain,
        "committee-1",
        "propose",
        ["member.roles", JSON.stringify({ address: merchant, roles: ["merchant", "regulator"] })],
        { to: "governance" },
      ),
    ]);
    const id = out(p.result.receipts[0] as never).get("id") as number;
    const both = await commitBlock(ledger, chain, [
      tx(chain, "committee-2", "vote", [id, true], { to: "governance" }),
      tx(chain, "merchant", "regulate", ["y"], { to: address }),
    ]);
    expect(both.result.receipts.map((r) => r.errorCode)).toEqual([null, null]);
    expect(out(both.result.receipts[1] as never)).toBe("merchant");
  });
});
