// Governance as the chain records it: every proposal with its votes and the regulator's veto,
// and the contract templates with their code hashes, versions and the proposal that approved them.
// Read with custos_call on the governance and templates system contracts.
import { msgpackArgs } from "./args.js";
import { addrLink, card, csvButton, fields, h, link, put, table, time } from "./dom.js";
import { batch, type Json } from "./rpc.js";

/** msgpack of an empty argument list (0x90): the list queries take their defaults. */
const NO_ARGS = "0x90";

export async function governancePage(main: HTMLElement): Promise<void> {
  const [proposals, templates] = await batch([
    ["custos_call", "governance", "list", NO_ARGS],
    ["custos_call", "templates", "list", NO_ARGS],
  ]);
  const props: Json[] = proposals instanceof Error ? [] : proposals;
  const temps: Json[] =
    templates instanceof Error ? [] : Array.isArray(templates) ? templates : (templates.templates ?? []);
  const head = ["#", "Kind", "Status", "For", "Against", "Threshold", "Veto", "Proposer", "Created"];
  const cells = (p: Json) => [
    p.id,
    p.kind,
    p.status,
    p.approvals,
    p.rejections,
    p.threshold,
    p.veto ? `vetoed: ${p.veto.reason ?? ""}` : "-",
    p.proposer,
    time(p.createdTime),
  ];
  put(
    main,
    h("h1", {}, "Governance"),
    card(
      `Proposals (${props.length})`,
      proposals instanceof Error ? h("p", { class: "error" }, proposals.message) : null,
      csvButton("proposals.csv", head, () => props.map((p) => cells(p).map(String))),
      table(
        [...head, "Votes"],
        props.map((p) => [
          ...cells(p).slice(0, 7),
          addrLink(p.proposer),
          cells(p)[8],
          h(
            "details",
            {},
            h("summary", {}, `${p.votes?.length ?? 0} votes`),
            h(
              "pre",
              { class: "json" },
              JSON.stringify({ payload: p.payload, votes: p.votes, veto: p.veto }, null, 2),
            ),
          ),
        ]),
        { id: "proposals" },
      ),
    ),
    card(
      `Contract templates (${temps.length})`,
      templates instanceof Error ? h("p", { class: "error" }, templates.message) : null,
      table(
        ["Name", "Version", "Status", "Code hash (SM3)", "Proposal", "Creator"],
        temps.map((x) => [
          x.codeHash ? link(`#/template/${x.codeHash}`, x.name) : x.name,
          x.version,
          x.status,
          h("span", { class: "mono small" }, x.codeHash ?? x.id ?? "-"),
          x.proposalId !== undefined ? `#${x.proposalId}` : "-",
          addrLink(x.creator),
        ]),
        { id: "templates" },
      ),
    ),
  );
}

/** The approval trail of a proposal: each member's vote and the regulator's veto, with the block. */
export function approvalTrail(proposal: Json, id?: string): HTMLElement {
  return table(
    ["Member", "Decision", "Block"],
    [
      ...(proposal.votes ?? []).map((v: Json) => [
        addrLink(v.voter),
        v.approve ? "voted for" : "voted against",
        `#${v.height}`,
      ]),
      ...(proposal.veto ? [[addrLink(proposal.veto.by), `vetoed: ${proposal.veto.reason}`, ""]] : []),
    ],
    id ? { id } : {},
  );
}

/** Each query's answer by its key; queries the node refused are left out. */
export async function callEach<K extends string | number>(
  keys: readonly K[],
  contract: string,
  method: string,
): Promise<Map<K, Json>> {
  const answers = await batch(
    keys.map((k) => ["custos_call", contract, method, msgpackArgs(k)] as [string, ...unknown[]]),
  );
  const out = new Map<K, Json>();
  for (const [i, a] of answers.entries()) if (!(a instanceof Error)) out.set(keys[i] as K, a);
  return out;
}

/** A proposal's outcome in one line; `id` names one that could not be read. */
export function proposalSummary(proposal: Json | undefined, id?: number): string {
  if (!proposal) return id ? `proposal #${id}` : "-";
  return `proposal #${proposal.id}: ${proposal.status}, ${proposal.approvals} for, ${proposal.rejections} against (threshold ${proposal.threshold})${proposal.veto ? ", vetoed" : ""}`;
}

/**
 * A contract template: its code hash and metadata, the proposal that approved (or refused) it with
 * every vote, and the template's versions over time (every template of the same name).
 */
export async function templatePage(main: HTMLElement, codeHash: string): Promise<void> {
  const [t, all] = await batch([
    ["custos_call", "templates", "get", msgpackArgs(codeHash)],
    ["custos_call", "templates", "list", NO_ARGS],
  ]);
  if (t instanceof Error) throw t;
  const list: Json[] = all instanceof Error ? [] : Array.isArray(all) ? all : (all.templates ?? []);
  const versions = list
    .filter((x) => x.name === t.name)
    .sort((a, b) => (a.createdHeight ?? 0) - (b.createdHeight ?? 0));
  // every version's proposal, this template's among them
  const proposals = await callEach(
    [...new Set([t.proposalId, ...versions.map((v) => v.proposalId)])].filter(
      (x): x is number => typeof x === "number" && x > 0,
    ),
    "governance",
    "get",
  );
  const proposal = proposals.get(t.proposalId);
  put(
    main,
    h("h1", {}, `Template ${t.name} ${t.version}`),
    card(
      "Template",
      fields([
        ["Name", t.name],
        ["Version", t.version],
        ["Status", t.status],
        ["Code hash (SM3)", h("span", { class: "mono wrap", id: "template-hash" }, t.codeHash)],
        ["Category", t.category ?? "-"],
        ["Submitted by", addrLink(t.creator)],
        ["Submitted", `block #${t.createdHeight}, ${time(t.createdTime)}`],
        ["Approval", proposalSummary(proposal)],
      ]),
      proposal ? approvalTrail(proposal, "approval-trail") : null,
    ),
    card(
      `Versions of ${t.name} (${versions.length})`,
      table(
        ["Version", "Status", "Submitted", "Code hash (SM3)", "Approval"],
        versions.map((v) => [
          v.codeHash === t.codeHash ? h("b", {}, v.version) : link(`#/template/${v.codeHash}`, v.version),
          v.status,
          `#${v.createdHeight}, ${time(v.createdTime)}`,
          h("span", { class: "mono small" }, v.codeHash),
          proposalSummary(proposals.get(v.proposalId), v.proposalId),
        ]),
        { id: "template-versions" },
      ),
    ),
  );
}
