import { encode } from "@custos/codec";
import { describe, expect, it } from "vitest";
import {
  auditEvents,
  balanceCheck,
  clearing,
  issuances,
  matchRecharges,
  parseRechargeRecords,
} from "../../src/index.js";

const A = `0x${"a".repeat(40)}`;
const B = `0x${"b".repeat(40)}`;
const C = `0x${"c".repeat(40)}`;
const D = `0x${"d".repeat(40)}`;
let height = 0;
const day = Date.UTC(2026, 4, 1, 2); // 10:00 CST, 1 May
function ecny(name: string, data: unknown[], topics: string[], time = day) {
  height++;
  return auditEvents(
    { height, tx: 0, time, txHash: `0x${height.toString(16).padStart(64, "0")}`, sender: A },
    [{ emitter: "ecny", name, data: encode(data), topics }],
  );
}

describe("recharges matched one to one", () => {
  const chain = issuances([
    ...ecny("Issued", [A, 100n, "rc-1"], [A]),
    ...ecny("Issued", [B, 200n, "rc-2"], [B]),
    ...ecny("Issued", [C, 300n, "rc-3"], [C]),
  ]);

  it("matches, and names what is missing on either side, what differs, and duplicates", () => {
    const m = matchRecharges(
      [
        { rechargeId: "rc-1", account: A, amount: 100n },
        { rechargeId: "rc-2", account: B, amount: 201n },
        { rechargeId: "rc-2", account: B, amount: 200n },
        { rechargeId: "rc-4", account: D, amount: 5n },
      ],
      chain,
    );
    expect(m.matched.map((x) => x.rechargeId)).toEqual(["rc-1"]);
    expect(m.mismatched).toEqual([expect.objectContaining({ rechargeId: "rc-2", fields: ["amount"] })]);
    expect(m.duplicateRecords).toEqual(["rc-2"]);
    expect(m.missingOnChain.map((x) => x.rechargeId)).toEqual(["rc-4"]);
    expect(m.notInRecords.map((x) => x.rechargeId)).toEqual(["rc-3"]);
    expect(m.ok).toBe(false);
    expect(
      matchRecharges(
        chain.map((i) => ({ rechargeId: i.rechargeId, account: i.account, amount: i.amount })),
        chain,
      ).ok,
    ).toBe(true);
  });

  it("reads CSV and JSON records, refusing a bad line with its number", () => {
    expect(
      parseRechargeRecords(`rechargeId,account,amount\nrc-1,${A.toUpperCase().replace("0X", "0x")},100\n`),
    ).toEqual([{ rechargeId: "rc-1", account: A, amount: 100n }]);
    expect(
      parseRechargeRecords(JSON.stringify([{ rechargeId: "rc-1", account: A, amount: "100" }]))[0]?.amount,
    ).toBe(100n);
    expect(() => parseRechargeRecords(`rechargeId,account,amount\nrc-1,${A},1.5`)).toThrow(/line 2: amount/);
    expect(() => parseRechargeRecords("id,who,fen\n")).toThrow(
      expect.objectContaining({ code: "AUDIT_RECHARGES_INVALID" }),
    );
  });
});

describe("clearing between institutions", () => {
  it("nets per institution per day, bilaterally, leaving out payments within one institution", () => {
    const inst: Record<string, string> = { [A]: "bank-a", [B]: "bank-b", [C]: "bank-a" };
    const events = [
      ...ecny("Transfer", [A, B, 500n], [A, B]),
      ...ecny("Transfer", [B, C, 200n], [B, C]),
      ...ecny("Transfer", [A, C, 999n], [A, C]), // within bank-a
      ...ecny("Transfer", [A, D, 7n], [A, D]), // D has no institution
      ...ecny("Transfer", [B, A, 50n], [B, A], day + 86_400_000),
    ];
    const days = clearing(events, (a) => inst[a] ?? null);
    expect(days.map((d) => d.day)).toEqual(["2026-05-01", "2026-05-02"]);
    const [d1, d2] = days;
    expect(d1?.positions).toEqual([
      { institution: "bank-a", paid: 500n, received: 200n, net: -300n },
      { institution: "bank-b", paid: 200n, received: 500n, net: 300n },
    ]);
    expect(d1?.bilateral).toEqual([{ a: "bank-a", b: "bank-b", net: 300n }]);
    expect(d1?.unassigned).toEqual({ count: 1, amount: 7n });
    expect(d1?.total).toBe(0n);
    expect(d2?.bilateral).toEqual([{ a: "bank-a", b: "bank-b", net: -50n }]);
  });
});

describe("balance check", () => {
  it("every fen issued is in a wallet or a contract; an account counted twice counts once", () => {
    const ok = balanceCheck(9, 600n, [
      { account: A, balance: 100n, contract: false },
      { account: B, balance: 500n, contract: true },
      { account: A, balance: 100n, contract: false },
    ]);
    expect(ok).toMatchObject({
      sum: 600n,
      wallets: 100n,
      contracts: 500n,
      accounts: 2,
      difference: 0n,
      ok: true,
    });
    expect(balanceCheck(9, 601n, [{ account: A, balance: 600n, contract: false }])).toMatchObject({
      difference: 1n,
      ok: false,
    });
  });
});
