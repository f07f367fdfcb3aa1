// Governance as the chain records it: every proposal with its votes and the regulator's veto,
// and the contract templates with their code hashes, versions and the proposal that approved them.
// Read with custos_call on the governance and templates system contracts.
import { addrLink, card, csvButton, h, put, table, time } from "./dom.js";
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
          x.name,
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
