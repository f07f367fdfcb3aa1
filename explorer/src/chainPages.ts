// Block, transaction and account pages. A block or transaction shows a "verified" mark that the
// browser computes itself (verify.ts, loaded on demand), never one the node asserts.
import { msgpackArgs } from "./args.js";
import { describeTx } from "./describe.js";
import {
  addrLink,
  blockLink,
  card,
  csvButton,
  fields,
  h,
  link,
  put,
  short,
  table,
  time,
  txLink,
  yuan,
} from "./dom.js";
import { approvalTrail, callEach, proposalSummary } from "./governance.js";
import { batch, type Json, rpc } from "./rpc.js";
import type { TxProof } from "./verify.js";

const json = (v: unknown) => h("pre", { class: "json" }, JSON.stringify(v, null, 2));

/** The verification panel: runs the checks in the browser and shows the result with each check. */
function verification(height: number, blockHash: string, tx?: TxProof): HTMLElement {
  const mark = h(
    "div",
    { class: "verify pending", id: "verify-mark", "data-verified": "pending" },
    "Verifying in your browser…",
  );
  const list = h("ul", { class: "checks" });
  const panel = card("Verified in this browser", mark, list);
  (async () => {
    const [{ verifyEvidence }, ev, history] = await Promise.all([
      import("./verify.js"),
      rpc("custos_getBlockEvidence", height),
      rpc("custos_getValidatorSetHistory"),
    ]);
    const checks = verifyEvidence(ev, blockHash, tx, history);
    const ok = checks.every((c) => c.ok);
    mark.className = `verify ${ok ? "ok" : "bad"}`;
    mark.dataset.verified = String(ok);
    mark.textContent = ok
      ? `✔ Verified: ${tx ? "this transaction is in" : ""} block #${height}, certified by a quorum of its validators`
      : `✘ Not verified: ${checks.find((c) => !c.ok)?.detail}`;
    for (const c of checks)
      list.append(
        h("li", { class: c.ok ? "ok" : "bad" }, h("b", {}, `${c.ok ? "✔" : "✘"} ${c.name}: `), c.detail),
      );
  })().catch((e) => {
    mark.className = "verify bad";
    mark.dataset.verified = "false";
    mark.textContent = `✘ Not verified: ${(e as Error).message}`;
  });
  return panel;
}

export async function blockPage(main: HTMLElement, ref: string): Promise<void> {
  const b = await rpc("custos_getBlock", /^\d+$/.test(ref) ? Number(ref) : ref);
  const ev = await rpc("custos_getBlockEvidence", b.height).catch(() => undefined);
  const names: string[] = ev ? ev.validators.map((v: Json) => v.name) : [];
  const txs = await batch(b.txs.slice(0, 100).map((x: string) => ["custos_getTx", x]));
  put(
    main,
    h("h1", {}, `Block #${b.height}`),
    h(
      "div",
      { class: "pager" },
      b.height > 0 ? link(`#/block/${b.height - 1}`, "← previous") : null,
      link(`#/block/${b.height + 1}`, "next →"),
    ),
    card(
      "Header",
      fields([
        ["Hash", h("span", { class: "mono" }, b.hash)],
        ["Height", String(b.height)],
        ["Time", time(b.timestamp)],
        [
          "Previous",
          b.height > 0 ? h("a", { href: `#/block/${b.prevHash}`, class: "mono" }, b.prevHash) : b.prevHash,
        ],
        ["Proposer", `${names[b.proposer] ?? "validator"} (#${b.proposer}), view ${b.view}`],
        ["Tx root", h("span", { class: "mono" }, b.txRoot)],
        ["Receipt root", h("span", { class: "mono" }, b.receiptRoot)],
        ["State root", h("span", { class: "mono" }, b.stateRoot)],
        ["Validator set", h("span", { class: "mono" }, b.validatorSetHash)],
      ]),
    ),
    card(
      `Transactions (${b.txCount})`,
      table(
        ["Tx", "What", "From", "Result"],
        txs.map((t) =>
          t instanceof Error
            ? ["-", t.message, "", ""]
            : [
                txLink(t.tx.hash),
                describeTx(t.tx).text,
                addrLink(t.tx.from),
                t.receipt?.success ? "success" : `failed ${t.receipt?.errorCode ?? ""}`,
              ],
        ),
      ),
    ),
    card(
      "Commit certificate",
      b.certificate
        ? [
            h(
              "p",
              {},
              `${b.certificate.signatures.length} of ${names.length || "?"} validators signed block ${short(b.hash)} in view ${b.certificate.view}.`,
            ),
            table(
              ["Validator", "Name", "SM2 signature"],
              b.certificate.signatures.map((s: Json) => [
                `#${s.validator}`,
                names[s.validator] ?? "?",
                h("span", { class: "mono" }, short(s.signature, 16)),
              ]),
              { id: "signers" },
            ),
          ]
        : h("p", {}, "The genesis block has no certificate."),
    ),
    b.certificate ? verification(b.height, b.hash) : null,
  );
}

export async function txPage(main: HTMLElement, hash: string): Promise<void> {
  const t = await rpc("custos_getTx", hash);
  const tx = t.tx;
  const d = describeTx(tx);
  put(
    main,
    h("h1", {}, "Transaction"),
    h("p", { class: "mono wrap" }, tx.hash),
    card(
      d.category,
      h("p", { class: "business", id: "business" }, d.text),
      fields([
        [
          "Status",
          t.status === "committed" ? `committed in block #${t.blockHeight}, position ${t.index}` : "pending",
        ],
        ["From", addrLink(tx.from)],
        ["To", tx.to.startsWith("0x") ? addrLink(tx.to) : tx.to],
        ["Method", h("code", {}, tx.method)],
        ["Value", yuan(tx.value)],
        ["Memo", tx.memo ?? "-"],
        ["Block limit", String(tx.blockLimit)],
        ["Block", t.blockHeight !== undefined ? blockLink(t.blockHeight) : "-"],
      ]),
      h("details", {}, h("summary", {}, "Arguments (decoded)"), json(tx.args)),
    ),
    t.receipt
      ? card(
          "Receipt",
          fields([
            [
              "Result",
              t.receipt.success
                ? "success"
                : `failed: ${t.receipt.errorCode} ${t.receipt.errorMessage ?? ""}`,
            ],
            ["Gas used", t.receipt.gasUsed],
          ]),
          h("details", {}, h("summary", {}, "Output"), json(t.receipt.output)),
          h("h3", {}, `Events (${t.receipt.events.length})`),
          table(
            ["Emitter", "Event", "Data"],
            t.receipt.events.map((e: Json) => [
              e.emitter.startsWith("0x") ? addrLink(e.emitter) : e.emitter,
              e.name,
              h("code", { class: "small" }, JSON.stringify(e.data)),
            ]),
          ),
        )
      : null,
    t.status === "committed"
      ? [
          verification(t.blockHeight, t.blockHash, {
            txHash: tx.hash,
            proof: t.txProof,
            raw: t.raw,
            shown: { from: tx.from, to: tx.to, method: tx.method, value: tx.value, args: tx.args },
          }),
          card(
            "Inclusion proof",
            fields([
              ["Leaf", `${t.txProof.leafIndex} of ${t.txProof.treeSize}`],
              ["Path", h("div", {}, ...t.txProof.path.map((p: string) => h("div", { class: "mono" }, p)))],
              ["Tx root", h("span", { class: "mono" }, t.txProof.root)],
            ]),
          ),
        ]
      : null,
  );
}

export async function accountPage(main: HTMLElement, address: string): Promise<void> {
  const [balance, trace, txs, instance] = await batch([
    ["ecny_balance", address],
    ["audit_trace", { account: address }],
    ["audit_txs", { account: address, limit: 200 }],
    ["custos_call", "templates", "instance", msgpackArgs(address)],
  ]);
  const contract = instance instanceof Error ? undefined : await contractCard(instance);
  const rows: Json[] = trace instanceof Error ? [] : trace.rows;
  const cards = new Map<string, { programme: string; card: number }>();
  for (const r of rows)
    if (r.programme && r.card)
      cards.set(`${r.programme}/${r.card}`, { programme: r.programme, card: r.card });
  const txList: Json[] = txs instanceof Error ? [] : (txs.txs ?? txs.rows ?? []);
  const head = ["Time", "Kind", "Amount", "Balance", "Counterparty", "Tx", "Note"];
  const cells = (r: Json) => [
    time(r.time),
    r.kind,
    yuan(r.delta),
    yuan(r.balance),
    r.counterparty ?? "",
    r.txHash,
    r.note,
  ];
  put(
    main,
    h("h1", {}, contract ? "Contract" : "Account"),
    h("p", { class: "mono wrap" }, address),
    contract,
    card(
      "e-CNY",
      fields([
        [
          "Balance",
          h(
            "span",
            { id: "balance" },
            balance instanceof Error
              ? balance.message
              : yuan(typeof balance === "object" ? balance.balance : balance),
          ),
        ],
        ["Movements", String(rows.length)],
      ]),
    ),
    card(
      `Prepaid cards (${cards.size})`,
      cards.size === 0
        ? h("p", {}, "No cards in this account's history.")
        : h(
            "ul",
            {},
            ...[...cards.values()].map((c) =>
              h(
                "li",
                {},
                link(`#/card/${c.programme}/${c.card}`, `card #${c.card}`),
                " of programme ",
                addrLink(c.programme),
              ),
            ),
          ),
    ),
    card(
      "History (audit index)",
      trace instanceof Error ? h("p", {}, trace.message) : null,
      csvButton(`${address}.csv`, head, () => rows.map((r) => cells(r).map(String))),
      table(
        head,
        rows.map((r) => {
          const c = cells(r);
          return [...c.slice(0, 4), addrLink(r.counterparty), txLink(r.txHash), r.note];
        }),
      ),
    ),
    txList.length > 0
      ? card(
          `Transactions sent (${txList.length})`,
          table(
            ["Tx", "Method", "Result", "Block"],
            txList.map((x: Json) => [
              txLink(x.txHash ?? x.hash),
              `${x.to ?? ""}.${x.method ?? ""}`,
              x.success === false ? "failed" : "success",
              x.height ?? x.blockHeight ?? "",
            ]),
          ),
        )
      : null,
  );
}

/** A contract instance: its template, code hash, status, its versions over time and each one's approval trail. */
async function contractCard(instance: Json): Promise<HTMLElement> {
  const history: Json[] = instance.history ?? [];
  const templates = await callEach(
    [...new Set<string>([instance.codeHash, ...history.map((x) => x.codeHash)])],
    "templates",
    "get",
  );
  const template = templates.get(instance.codeHash);
  // the proposals: the current template's approval, and each upgrade's
  const proposals = await callEach(
    [...new Set([template?.proposalId, ...history.map((x) => x.proposalId)])].filter(
      (x): x is number => typeof x === "number" && x > 0,
    ),
    "governance",
    "get",
  );
  const proposal = proposals.get(template?.proposalId);
  const versionOf = (codeHash: string) => {
    const t = templates.get(codeHash);
    return t
      ? link(`#/template/${codeHash}`, `${t.name} ${t.version}`)
      : h("span", { class: "mono small" }, codeHash);
  };
  return card(
    "Contract",
    fields([
      ["Template", template ? versionOf(instance.codeHash) : String(instance.template ?? "-")],
      ["Code hash (SM3)", h("span", { class: "mono", id: "code-hash" }, instance.codeHash)],
      ["Status", `${instance.status}${instance.frozenReason ? ` (${instance.frozenReason})` : ""}`],
      ["Created", `block #${instance.createdHeight}, ${time(instance.createdTime)}`],
      ["Creator", addrLink(instance.creator)],
      ["Approval of its template", proposalSummary(proposal)],
    ]),
    proposal ? approvalTrail(proposal, "approval-trail") : null,
    history.length > 0
      ? h(
          "div",
          {},
          h("h3", {}, "Version history"),
          table(
            ["Block", "Version", "Code hash (SM3)", "How"],
            history.map((x) => [
              `#${x.height}`,
              versionOf(x.codeHash),
              h("span", { class: "mono small" }, x.codeHash),
              x.proposalId > 0
                ? `upgraded by ${proposalSummary(proposals.get(x.proposalId), x.proposalId)}`
                : "instantiated",
            ]),
            { id: "version-history" },
          ),
        )
      : null,
    h("details", {}, h("summary", {}, "Parameters"), json({ params: instance.params })),
  );
}
