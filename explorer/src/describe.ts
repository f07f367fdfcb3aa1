// A transaction in business words: what an e-CNY transfer, a governance vote, a template or a
// prepaid-card call means to the people involved, from its method and its decoded arguments.

import { yuan } from "./dom.js";
import type { Json } from "./rpc.js";

const a = (args: Json, i: number): Json => (Array.isArray(args) ? args[i] : undefined);
const who = (v: Json) =>
  typeof v === "string" && v.startsWith("0x") && v.length === 42 ? v : String(v ?? "?");

/** One sentence saying what `tx` does, and the category it belongs to. */
export function describeTx(tx: Json): { category: string; text: string } {
  const { to, method, args, value } = tx;
  const paid = value && value !== "0" ? ` paying ${yuan(value)}` : "";
  if (to === "ecny") {
    const c = "e-CNY";
    if (method === "issue")
      return {
        category: c,
        text: `Operator issues ${yuan(a(args, 1))} e-CNY to ${who(a(args, 0))} (recharge ${a(args, 2)})`,
      };
    if (method === "transfer")
      return { category: c, text: `Transfer of ${yuan(a(args, 1))} e-CNY to ${who(a(args, 0))}` };
    if (method === "freeze") return { category: c, text: `Freeze of the e-CNY wallet ${who(a(args, 0))}` };
    if (method === "unfreeze")
      return { category: c, text: `Unfreeze of the e-CNY wallet ${who(a(args, 0))}` };
  }
  if (to === "governance") {
    const c = "Governance";
    if (method === "vote")
      return {
        category: c,
        text: `Vote ${a(args, 1) === false ? "against" : "for"} proposal #${a(args, 0)}`,
      };
    if (method === "veto") return { category: c, text: `Regulator's veto of proposal #${a(args, 0)}` };
    if (method === "propose") return { category: c, text: `New proposal: ${String(a(args, 0) ?? "")}` };
  }
  if (to === "templates") {
    const c = "Contract templates";
    if (method === "submit")
      return {
        category: c,
        text: `Submits template "${a(args, 0)}" version ${a(args, 1)} (${a(args, 2)}) for the committee's approval`,
      };
    if (method === "instantiate") {
      let name = "";
      try {
        const p = JSON.parse(String(a(args, 1)));
        name = p.name ? ` "${p.name}" for merchant ${p.merchant}` : "";
      } catch {}
      return {
        category: c,
        text: `Opens a supervised programme${name} from template ${String(a(args, 0)).slice(0, 12)}…`,
      };
    }
    if (method === "upgrade")
      return { category: c, text: `Proposes an upgrade of contract ${who(a(args, 0))}` };
  }
  if (to === "complaints") {
    if (method === "file")
      return { category: "Complaints", text: `Files a complaint about programme ${who(a(args, 0))}` };
    if (method === "classify")
      return { category: "Complaints", text: `Classifies complaint #${a(args, 0)} as ${a(args, 1)}` };
  }
  if (to === "members") return { category: "Members", text: `Membership: ${method}` };
  if (to === "validators") return { category: "Validators", text: `Validator set: ${method}` };
  if (typeof to === "string" && to.startsWith("0x")) {
    const c = "Prepaid card";
    const card = `card #${a(args, 0)}`;
    switch (method) {
      case "buy":
        return {
          category: c,
          text: `Buys a prepaid card of product #${a(args, 0)}${paid}, into the programme's escrow`,
        };
      case "consume":
        return {
          category: c,
          text: `Uses ${card}${a(args, 1) !== undefined ? ` for ${/^\d+$/.test(String(a(args, 1))) && Number(a(args, 1)) > 99 ? yuan(a(args, 1)) : `${a(args, 1)} unit(s)`}` : ""}: the escrow releases it to the merchant`,
        };
      case "refund":
        return { category: c, text: `Refund of the unused value of ${card} from escrow to the holder` };
      case "transferCard":
        return { category: c, text: `Transfers ${card} to ${who(a(args, 1))}` };
      case "reportLost":
        return { category: c, text: `Reports ${card} lost` };
      case "cancelLoss":
        return { category: c, text: `Cancels the loss report of ${card}` };
      case "reissue":
        return { category: c, text: `Reissues ${card}` };
      case "addProduct": {
        const p = a(args, 0) ?? {};
        return {
          category: c,
          text: `Merchant adds product "${p.name}" (${p.kind} card${p.faceValue ? `, face value ${yuan(p.faceValue)}` : ""}${p.price ? `, price ${yuan(p.price)}` : ""})`,
        };
      }
      case "claim":
        return { category: c, text: "Merchant claims the released funds from escrow" };
      case "freeze":
        return { category: c, text: `Regulator freezes the programme: ${a(args, 0)}` };
      case "unfreeze":
        return { category: c, text: "Regulator unfreezes the programme" };
      case "forceRefund":
        return { category: c, text: "Regulator forces refunds of the programme's cards" };
      case "announceClosure":
        return { category: c, text: `Merchant announces closure: ${a(args, 0)}` };
      default:
        return { category: "Contract call", text: `Calls ${method} on contract ${to}${paid}` };
    }
  }
  return { category: "System call", text: `${to}.${method}${paid}` };
}
