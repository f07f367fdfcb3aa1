/**
 * Merchant risk levels and ratings (风险预警, 商户评级): points from what happened in the report's
 * range, summed; the rules are here and nowhere else, and the README of this package states them.
 *
 * | rule               | points                                                              |
 * |--------------------|---------------------------------------------------------------------|
 * | refund-rate        | 2 if refunds are >= 30 % of sales in the range, 1 if >= 10 %        |
 * | fulfilment         | 2 if the fulfilment rate is < 50 %, 1 if < 80 % (when defined)     |
 * | complaints         | 2 for >= 5 complaints filed in the range, 1 for >= 2 (not counting  |
 * |                    | those the regulator classified invalid or duplicate)               |
 * | serious-complaint  | 1 if the regulator classified one of them serious or major         |
 * | frozen             | 2 if the regulator froze a programme of the merchant in the range  |
 * | forced-refunds     | 2 if the regulator (or closure) forced refunds in the range        |
 * | closure            | 1 if the merchant announced a closure in the range                 |
 * | risk-flags         | 1 if the programme raised RiskFlagged (abnormal use) in the range  |
 *
 * Level: low (0-1 points), medium (2-3), high (4 or more). Rating: A (0), B (1-2), C (3-4), D (5+).
 * Rates are those of the report: fulfilment = consumed / (consumed + refunded), refund rate =
 * refunded / sold, both in basis points of the range's figures.
 */
export interface RiskInput {
  refundRateBps: number | null;
  fulfilmentRateBps: number | null;
  complaintsCounted: number;
  seriousComplaints: number;
  frozen: boolean;
  forcedRefunds: boolean;
  closureAnnounced: boolean;
  riskFlags: number;
}

export type RiskLevel = "low" | "medium" | "high";
export type Rating = "A" | "B" | "C" | "D";

export interface Risk {
  score: number;
  level: RiskLevel;
  rating: Rating;
  /** Each rule that gave points: "refund-rate +2 (35.00 % of sales)". */
  reasons: string[];
}

const pct = (b: number) => `${(b / 100).toFixed(2)} %`;

export function riskOf(r: RiskInput): Risk {
  const reasons: string[] = [];
  let score = 0;
  const add = (points: number, rule: string, why: string) => {
    if (points <= 0) return;
    score += points;
    reasons.push(`${rule} +${points} (${why})`);
  };
  if (r.refundRateBps !== null)
    add(
      r.refundRateBps >= 3000 ? 2 : r.refundRateBps >= 1000 ? 1 : 0,
      "refund-rate",
      `${pct(r.refundRateBps)} of sales`,
    );
  if (r.fulfilmentRateBps !== null)
    add(
      r.fulfilmentRateBps < 5000 ? 2 : r.fulfilmentRateBps < 8000 ? 1 : 0,
      "fulfilment",
      `${pct(r.fulfilmentRateBps)} fulfilled`,
    );
  add(
    r.complaintsCounted >= 5 ? 2 : r.complaintsCounted >= 2 ? 1 : 0,
    "complaints",
    `${r.complaintsCounted} complaints`,
  );
  add(r.seriousComplaints > 0 ? 1 : 0, "serious-complaint", `${r.seriousComplaints} serious or major`);
  add(r.frozen ? 2 : 0, "frozen", "frozen by the regulator");
  add(r.forcedRefunds ? 2 : 0, "forced-refunds", "refunds forced");
  add(r.closureAnnounced ? 1 : 0, "closure", "closure announced");
  add(r.riskFlags > 0 ? 1 : 0, "risk-flags", `${r.riskFlags} RiskFlagged events`);
  const level: RiskLevel = score >= 4 ? "high" : score >= 2 ? "medium" : "low";
  const rating: Rating = score === 0 ? "A" : score <= 2 ? "B" : score <= 4 ? "C" : "D";
  return { score, level, rating, reasons };
}
