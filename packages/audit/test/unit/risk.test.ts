import { describe, expect, it } from "vitest";
import { type RiskInput, riskOf } from "../../src/index.js";

const calm: RiskInput = {
  refundRateBps: 0,
  fulfilmentRateBps: 10_000,
  complaintsCounted: 0,
  seriousComplaints: 0,
  frozen: false,
  forcedRefunds: false,
  closureAnnounced: false,
  riskFlags: 0,
};

describe("merchant risk levels (risk.ts rules)", () => {
  it("a merchant that delivers and is not complained about is low, rated A", () => {
    expect(riskOf(calm)).toEqual({ score: 0, level: "low", rating: "A", reasons: [] });
    expect(riskOf({ ...calm, refundRateBps: null, fulfilmentRateBps: null }).score).toBe(0);
  });

  it("each rule gives its points at its threshold, not below", () => {
    const score = (x: Partial<RiskInput>) => riskOf({ ...calm, ...x }).score;
    expect([999, 1000, 2999, 3000].map((b) => score({ refundRateBps: b }))).toEqual([0, 1, 1, 2]);
    expect([8000, 7999, 5000, 4999].map((b) => score({ fulfilmentRateBps: b }))).toEqual([0, 1, 1, 2]);
    expect([1, 2, 4, 5].map((n) => score({ complaintsCounted: n }))).toEqual([0, 1, 1, 2]);
    expect(score({ seriousComplaints: 1 })).toBe(1);
    expect(score({ frozen: true })).toBe(2);
    expect(score({ forcedRefunds: true })).toBe(2);
    expect(score({ closureAnnounced: true })).toBe(1);
    expect(score({ riskFlags: 3 })).toBe(1);
  });

  it("levels and ratings follow the score; the reasons say why", () => {
    const levels = [0, 1, 2, 3, 4, 5].map((n) => {
      const r = riskOf({
        ...calm,
        complaintsCounted: n >= 2 ? 5 : n >= 1 ? 2 : 0,
        frozen: n >= 4,
        riskFlags: n === 3 || n === 5 ? 1 : 0,
      });
      return [r.score, r.level, r.rating];
    });
    expect(levels).toEqual([
      [0, "low", "A"],
      [1, "low", "B"],
      [2, "medium", "B"],
      [3, "medium", "C"],
      [4, "high", "C"],
      [5, "high", "D"],
    ]);
    expect(riskOf({ ...calm, refundRateBps: 3500, complaintsCounted: 6 }).reasons).toEqual([
      "refund-rate +2 (35.00 % of sales)",
      "complaints +2 (6 complaints)",
    ]);
  });
});
