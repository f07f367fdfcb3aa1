import { describe, expect, it } from "vitest";
import { A, ALICE, BOB, CAROL, events, ok, programme } from "../programme.js";

const m = { caller: A.merchant };

describe("products and per-person prices (the merchant)", () => {
  it("adds stored-value, count and period products within the programme's cap and term", async () => {
    const h = await programme({ cardCap: 200_000n, maxTermDays: 365 });
    const add = (spec: unknown, caller = A.merchant) => h.call("addProduct", [spec], { caller });
    const gift = ok(
      await add({ name: "1,000 yuan card", kind: "stored", faceValue: 100_000n, price: 95_000n }),
    );
    expect(gift).toMatchObject({ id: 1, kind: "stored", faceValue: 100_000n, price: 95_000n, termDays: 365 });
    const swims = ok(await add({ name: "10 swims", kind: "count", uses: 10, price: 50_000, validDays: 90 }));
    expect(swims).toMatchObject({ id: 2, uses: 10, price: 50_000n, termDays: 90 });
    const month = ok(
      await add({ name: "monthly", kind: "period", period: "month", price: "30000", usesPerDay: 1 }),
    );
    expect(month).toMatchObject({ id: 3, period: "month", periods: 1, termDays: 30, usesPerDay: 1 });
    const topUp = ok(
      await add({ name: "top-up", kind: "stored", open: true, minAmount: 1_000n, maxAmount: 50_000n }),
    );
    expect(topUp).toMatchObject({ id: 4, open: true, price: 0n, faceValue: 0n });

    const refused: [unknown, string][] = [
      [{ name: "big", kind: "stored", faceValue: 200_001n }, "OVER_CARD_CAP"],
      [{ name: "big", kind: "count", uses: 3, price: 300_000n }, "OVER_CARD_CAP"],
      [{ name: "big", kind: "stored", open: true, maxAmount: 300_000n }, "OVER_CARD_CAP"],
      [{ name: "long", kind: "period", period: "year", periods: 2, price: 1n }, "OVER_MAX_TERM"],
      [{ name: "long", kind: "count", uses: 3, price: 1n, validDays: 366 }, "OVER_MAX_TERM"],
      [{ name: "odd", kind: "stored", faceValue: 100n, price: 101n }, "INVALID_ARGUMENTS"],
      [{ name: "odd", kind: "stored", open: true, minAmount: 10n, maxAmount: 9n }, "INVALID_ARGUMENTS"],
      [{ name: "odd", kind: "voucher", price: 1n }, "INVALID_ARGUMENTS"],
      [{ name: "odd", kind: "period", period: "fortnight", price: 1n }, "INVALID_ARGUMENTS"],
      [{ name: "odd", kind: "count", uses: 0, price: 1n }, "INVALID_ARGUMENTS"],
      [{ name: "odd", kind: "count", uses: 2, price: 0n }, "INVALID_ARGUMENTS"],
      [{ name: "odd", kind: "count", uses: 2, price: 1.5 }, "INVALID_ARGUMENTS"],
      [{ name: "", kind: "count", uses: 2, price: 1n }, "INVALID_ARGUMENTS"],
      [{ name: "odd", kind: "count", uses: 2, price: 1n, colour: "red" }, "INVALID_ARGUMENTS"],
    ];
    for (const [spec, code] of refused)
      expect(
        (await add(spec)).error?.code,
        JSON.stringify(spec, (_k, v) => (typeof v === "bigint" ? String(v) : v)),
      ).toBe(code);
    expect((await add({ name: "x", kind: "count", uses: 1, price: 1n }, A.otherMerchant)).error?.code).toBe(
      "NOT_MERCHANT",
    );
    expect((await add({ name: "x", kind: "count", uses: 1, price: 1n }, ALICE)).error?.code).toBe(
      "NOT_MERCHANT",
    );
    expect(((await h.query("products")) as unknown[]).length).toBe(4);
  });

  it("a retired product sells no more; the list hides it unless asked", async () => {
    const h = await programme();
    ok(await h.call("addProduct", [{ name: "10 swims", kind: "count", uses: 10, price: 50_000n }], m));
    ok(await h.call("addProduct", [{ name: "5 swims", kind: "count", uses: 5, price: 26_000n }], m));
    expect((await h.call("retireProduct", [1], { caller: ALICE })).error?.code).toBe("NOT_MERCHANT");
    ok(await h.call("retireProduct", [1], m));
    expect((await h.call("retireProduct", [1], m)).error?.code).toBe("PRODUCT_RETIRED");
    expect((await h.call("retireProduct", [9], m)).error?.code).toBe("PRODUCT_NOT_FOUND");
    expect((await h.call("buy", [1], { caller: ALICE, value: 50_000n })).error?.code).toBe("PRODUCT_RETIRED");
    expect(((await h.query("products")) as { id: number }[]).map((p) => p.id)).toEqual([2]);
    expect(((await h.query("products", [0, 10, true])) as { id: number }[]).map((p) => p.id)).toEqual([1, 2]);
    expect(((await h.query("products", [1, 10, true])) as { id: number }[]).map((p) => p.id)).toEqual([2]);
  });

  it("一人一价: a named consumer's price beats its category's, which beats the list price; the card keeps the record", async () => {
    const h = await programme();
    ok(await h.call("addProduct", [{ name: "10 swims", kind: "count", uses: 10, price: 50_000n }], m));
    const student = ok(await h.call("setPrice", [1, { category: "student" }, 40_000n], m));
    expect(student).toMatchObject({ id: 1, product: 1, target: "category:student", price: 40_000n });
    const bob = ok(await h.call("setPrice", [1, { consumer: BOB }, 35_000n], m));
    expect(bob.id).toBe(2);
    ok(await h.call("setCategory", [ALICE, "student"], m));
    ok(await h.call("setCategory", [BOB, "student"], m));
    expect(await h.query("categoryOf", [ALICE])).toBe("student");
    expect(await h.query("quote", [1, ALICE])).toEqual({
      price: 40_000n,
      priceId: 1,
      basis: "category:student",
      transferable: false,
    });
    expect(await h.query("quote", [1, BOB])).toMatchObject({
      price: 35_000n,
      priceId: 2,
      basis: `consumer:${BOB}`,
    });
    expect(await h.query("quote", [1, CAROL])).toEqual({
      price: 50_000n,
      priceId: 0,
      basis: "list",
      transferable: true,
    });

    // the list price is the wrong amount for a student; the student price is right
    const before = h.balanceOf(ALICE);
    const wrong = await h.call("buy", [1], { caller: ALICE, value: 50_000n });
    expect(wrong.error?.code).toBe("WRONG_AMOUNT");
    expect(wrong.error?.message).toContain("40000");
    expect(h.balanceOf(ALICE)).toBe(before);
    const card = ok(await h.call("buy", [1], { caller: ALICE, value: 40_000n }));
    expect(card).toMatchObject({ paid: 40_000n, priceId: 1, basis: "category:student", transferable: false });

    // a later price change does not touch the card; the record it names is immutable
    ok(await h.call("setPrice", [1, { category: "student" }, 45_000n], m));
    expect(await h.query("card", [1])).toMatchObject({ paid: 40_000n, priceId: 1 });
    expect(await h.query("priceRecord", [1])).toMatchObject({ price: 40_000n, target: "category:student" });
    expect(await h.query("quote", [1, ALICE])).toMatchObject({ price: 45_000n, priceId: 3 });
    expect(((await h.query("prices", [1])) as { id: number }[]).map((p) => p.id)).toEqual([2, 3]);

    // a personal price stays with its holder
    expect((await h.call("transferCard", [1, CAROL], { caller: ALICE })).error?.code).toBe(
      "NOT_TRANSFERABLE",
    );
    // back to the list price
    ok(await h.call("clearPrice", [1, { consumer: BOB }], m));
    expect((await h.call("clearPrice", [1, { consumer: BOB }], m)).error?.code).toBe("PRICE_NOT_FOUND");
    expect(await h.query("quote", [1, BOB])).toMatchObject({ price: 45_000n, basis: "category:student" });
    ok(await h.call("setCategory", [BOB, null], m));
    expect(await h.query("quote", [1, BOB])).toMatchObject({ price: 50_000n, basis: "list" });
    expect(events(await h.call("setCategory", [CAROL, "senior"], m), "CategorySet")).toEqual([
      { consumer: CAROL, category: "senior" },
    ]);
  });

  it("refuses prices that cannot apply", async () => {
    const h = await programme({ cardCap: 100_000n });
    ok(await h.call("addProduct", [{ name: "gift", kind: "stored", faceValue: 50_000n }], m));
    ok(await h.call("addProduct", [{ name: "top-up", kind: "stored", open: true }], m));
    const set = (args: unknown[], caller = A.merchant) => h.call("setPrice", args, { caller });
    expect((await set([2, { category: "vip" }, 100n])).error?.code).toBe("PRICE_NOT_APPLICABLE");
    expect((await set([1, { category: "vip" }, 50_001n])).error?.code).toBe("INVALID_ARGUMENTS");
    expect((await set([1, { category: "VIP" }, 100n])).error?.code).toBe("INVALID_ARGUMENTS");
    expect((await set([1, { category: "vip", consumer: ALICE }, 100n])).error?.code).toBe(
      "INVALID_ARGUMENTS",
    );
    expect((await set([1, {}, 100n])).error?.code).toBe("INVALID_ARGUMENTS");
    expect((await set([1, { consumer: "alice" }, 100n])).error?.code).toBe("INVALID_ARGUMENTS");
    expect((await set([1, { consumer: ALICE }, 0n])).error?.code).toBe("INVALID_ARGUMENTS");
    expect((await set([3, { consumer: ALICE }, 10n])).error?.code).toBe("PRODUCT_NOT_FOUND");
    expect((await set([1, { consumer: ALICE }, 10n], ALICE)).error?.code).toBe("NOT_MERCHANT");
    expect((await h.call("setCategory", [A.regulator, "vip"], m)).error?.code).toBe("NOT_CONSUMER");
    expect((await h.call("setCategory", [ALICE, "vip"], { caller: BOB })).error?.code).toBe("NOT_MERCHANT");
  });
});
