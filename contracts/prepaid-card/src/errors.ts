/**
 * Every refusal of the prepaid-card template, by its stable revert code (the receipt's
 * `errorCode`). A refused call changes nothing: the VM discards its writes, payouts and events,
 * and the chain returns any attached e-CNY. README.md says when each one is raised.
 */
export const ERRORS = {
  // who may do it
  NOT_INSTITUTION: "only a member with the institution role instantiates the programme",
  NOT_MERCHANT: "only the programme's merchant (holding the merchant role) may do this",
  NOT_REGULATOR: "only a member with the regulator role may do this",
  NOT_HOLDER: "only the card's holder may do this",
  NOT_CONSUMER: "cards are held by members with the consumer role",
  NOT_AUTHORIZED: "this caller may not do this in the programme's current state",
  // what was asked
  INVALID_PARAMS: "a programme parameter is missing or out of its range",
  INVALID_ARGUMENTS: "an argument is missing or malformed",
  VALUE_NOT_ACCEPTED: "only buy takes attached e-CNY",
  WRONG_AMOUNT: "the attached e-CNY is not the card's price",
  OVER_CARD_CAP: "more than the per-card value cap",
  OVER_MAX_TERM: "longer than the programme's maximum term",
  // products and prices
  PRODUCT_NOT_FOUND: "no such product",
  PRODUCT_RETIRED: "the product is retired: no more sales",
  PRICE_NOT_APPLICABLE: "open-amount products have no per-person prices",
  PRICE_NOT_FOUND: "no such per-person price",
  // cards
  CARD_NOT_FOUND: "no such card",
  CARD_LOST: "the card is reported lost: no use, transfer or refund until the report is cancelled",
  CARD_NOT_LOST: "the card is not reported lost",
  CARD_EXPIRED: "the card's term is over",
  CARD_REFUNDED: "the card was refunded",
  CARD_FINISHED: "the card is used up",
  CARD_REISSUED: "the card was replaced by a reissued one",
  INSUFFICIENT_BALANCE: "the card's stored value is less than the amount",
  NOT_ENOUGH_USES: "the card has fewer uses left",
  DAILY_LIMIT_REACHED: "the card's uses for today are used up",
  NOT_TRANSFERABLE: "a card bought at a per-person price stays with its holder",
  SAME_HOLDER: "the card already belongs to that consumer",
  // refunds
  ALREADY_REFUNDED: "the card was refunded already",
  COOLING_OFF_OVER: "the cooling-off period is over and no other refund ground applies",
  CARD_USED: "the card was used or transferred: no cooling-off refund",
  // the programme
  PROGRAMME_FROZEN: "the regulator froze the programme",
  ALREADY_FROZEN: "the programme is frozen already",
  PROGRAMME_NOT_FROZEN: "the programme is not frozen",
  PROGRAMME_CLOSING: "the merchant announced closure: no more sales",
  PROGRAMME_CLOSED: "the programme is closed",
  PROGRAMME_NOT_CLOSED: "the programme is not closed yet",
  ALREADY_CLOSING: "closure was announced already",
  NOTHING_TO_CLAIM: "nothing is due to the merchant",
} as const;

export type ErrorCode = keyof typeof ERRORS;
