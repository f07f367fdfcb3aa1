import { describe, expect, it } from "vitest";
import { A, ALICE, harness, ok, programme } from "../programme.js";

describe("instantiation: parameters a regulator would set, checked once", () => {
  it("takes defaults: 100 % escrow, 5,000 yuan cap, 24 months, 7-day cooling-off, 30-day notice", async () => {
    const h = await programme();
    const p = (await h.query("programme")) as Record<string, any>;
    expect(p).toMatchObject({
      merchant: A.merchant,
      institution: A.institution,
      name: "Sunrise Gym",
      issuerClass: "other",
      escrowFloorBps: 4000,
      escrowShareBps: 10000,
      cardCap: 500_000n,
      maxTermDays: 730,
      coolingOffDays: 7,
      closureNoticeDays: 30,
      refund: { afterCoolingOff: false, feeBps: 0 },
      reminders: { lowBalance: 5_000n, usesLeft: 2, expiryDays: 7 },
      risk: { cardUsesPerDay: 10, programmeUsesPerHour: 1000 },
      status: "active",
    });
    expect(h.events.map((e) => e.name)).toEqual(["ProgrammeOpened"]);
  });

  it("only an institution instantiates, for a member holding the merchant role", async () => {
    const h = await harness();
    const as = (caller: string, params: unknown) => h.deploy(params, { caller });
    expect((await as(A.merchant, { merchant: A.merchant, name: "x" })).error?.code).toBe("NOT_INSTITUTION");
    expect((await as(A.regulator, { merchant: A.merchant, name: "x" })).error?.code).toBe("NOT_INSTITUTION");
    expect((await as(A.institution, { merchant: ALICE, name: "x" })).error?.code).toBe("NOT_MERCHANT");
    expect((await as(A.institution, { merchant: A.outsider, name: "x" })).error?.code).toBe("NOT_MERCHANT");
    expect(h.storage.size).toBe(0);
    expect((await as(A.institution, null)).error?.code).toBe("INVALID_PARAMS");
    expect((await as(A.institution, [A.merchant])).error?.code).toBe("INVALID_PARAMS");
    expect((await as(A.institution, { merchant: A.merchant, name: "x" })).ok).toBe(true);
    // init runs once
    expect((await as(A.institution, { merchant: A.merchant, name: "y" })).error?.code).toBe("NOT_AUTHORIZED");
  });

  it("refuses every parameter out of its range, naming it", async () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ merchant: null }, /merchant/],
      [{ merchant: "0x12" }, /merchant/],
      [{ name: null }, /name/],
      [{ name: "x".repeat(65) }, /name/],
      [{ issuerClass: "huge" }, /issuerClass/],
      // the national floor by issuer class: other 40 %, scale 30 %, group and brand 20 %
      [{ escrowFloorBps: 3999 }, /escrowFloorBps/],
      [{ issuerClass: "scale", escrowFloorBps: 2999 }, /escrowFloorBps/],
      [{ issuerClass: "group", escrowFloorBps: 1999 }, /escrowFloorBps/],
      [{ escrowFloorBps: 10001 }, /escrowFloorBps/],
      // the share held may not go below the programme's floor
      [{ escrowShareBps: 3999 }, /escrowShareBps/],
      [{ escrowFloorBps: 6000, escrowShareBps: 5000 }, /escrowShareBps/],
      [{ escrowShareBps: 7500.5 }, /escrowShareBps/],
      [{ cardCap: 0n }, /cardCap/],
      [{ cardCap: 12.5 }, /cardCap/],
      [{ cardCap: 10_000_001n }, /cardCap/],
      [{ maxTermDays: 0 }, /maxTermDays/],
      [{ maxTermDays: 3651 }, /maxTermDays/],
      [{ coolingOffDays: -1 }, /coolingOffDays/],
      [{ coolingOffDays: 91 }, /coolingOffDays/],
      [{ closureNoticeDays: 366 }, /closureNoticeDays/],
      [{ refund: { afterCoolingOff: "yes" } }, /afterCoolingOff/],
      [{ refund: { feeBps: 2001 } }, /feeBps/],
      [{ refund: { fee: 1 } }, /refund has no field fee/],
      [{ reminders: { lowBalance: 500_001n } }, /lowBalance/],
      [{ reminders: { usesLeft: -1 } }, /usesLeft/],
      [{ risk: { cardUsesPerDay: 0 } }, /cardUsesPerDay/],
      [{ risk: { programmeUsesPerHour: 0 } }, /programmeUsesPerHour/],
      [{ escrowShare: 5000 }, /params has no field escrowShare/],
    ];
    const h = await harness();
    for (const [params, message] of bad) {
      const r = await h.deploy(
        { merchant: A.merchant, name: "Sunrise Gym", ...params },
        { caller: A.institution },
      );
      expect(
        r.error?.code,
        JSON.stringify(params, (_k, v) => (typeof v === "bigint" ? `${v}n` : v)),
      ).toBe("INVALID_PARAMS");
      expect(r.error?.message).toMatch(message);
    }
    expect(h.storage.size).toBe(0); // a refused instantiation leaves nothing behind
  });

  it("accepts the strictest and the loosest legal settings", async () => {
    const strict = await programme({
      issuerClass: "group",
      escrowFloorBps: 2000,
      escrowShareBps: 2000,
      cardCap: "100000",
      maxTermDays: 90,
      coolingOffDays: 0,
      closureNoticeDays: 0,
      refund: { afterCoolingOff: true, feeBps: 2000 },
      reminders: { lowBalance: 0, usesLeft: 0, expiryDays: 0 },
      risk: { cardUsesPerDay: 1, programmeUsesPerHour: 1 },
    });
    expect(ok(await strict.call("programme"))).toMatchObject({ escrowShareBps: 2000, cardCap: 100_000n });
  });
});
