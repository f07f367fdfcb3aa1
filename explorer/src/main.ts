// The Custos explorer: hash routes, a search box, and the pages. Read-only: it calls the node's
// read methods and nothing else (rpc.ts refuses write and admin methods).
import { accountPage, blockPage, txPage } from "./chainPages.js";
import { h, link } from "./dom.js";
import { governancePage, templatePage } from "./governance.js";
import { opsPage } from "./ops.js";
import { overview } from "./overview.js";
import { batch, type Json, rpc } from "./rpc.js";
import { cardPage, programmePage, supervisionPage } from "./supervision.js";

const main = document.getElementById("main") as HTMLElement;
let leaving: (() => void)[] = [];
let generation = 0;

async function searchFor(q: string): Promise<string | HTMLElement> {
  const v = q.trim();
  if (/^\d+$/.test(v)) return `#/block/${v}`;
  if (/^0x[0-9a-fA-F]{40}$/.test(v)) return `#/account/${v.toLowerCase()}`;
  if (/^0x[0-9a-fA-F]{64}$/.test(v)) {
    const [tx, block] = await batch([
      ["custos_getTx", v.toLowerCase()],
      ["custos_getBlock", v.toLowerCase()],
    ]);
    if (!(tx instanceof Error)) return `#/tx/${v.toLowerCase()}`;
    if (!(block instanceof Error)) return `#/block/${v.toLowerCase()}`;
    return h("p", {}, `No transaction or block ${v} on this chain.`);
  }
  const c = /^(?:card\s*[:#]?\s*)(\d+)$/i.exec(v);
  if (c) {
    const id = Number(c[1]);
    const progs: Json[] = (await rpc("audit_programmes")).programmes ?? [];
    const traces = await batch(
      progs.map((p) => ["audit_trace", { programme: p.address ?? p.programme, card: id }]),
    );
    const found = progs.filter((_, i) => {
      const t = traces[i];
      return !(t instanceof Error) && t.rows.length > 0;
    });
    if (found.length === 1) return `#/card/${found[0].address ?? found[0].programme}/${id}`;
    if (found.length === 0) return h("p", {}, `No programme has a card #${id}.`);
    return h(
      "ul",
      {},
      ...found.map((p) =>
        h(
          "li",
          {},
          link(`#/card/${p.address ?? p.programme}/${id}`, `card #${id} of ${p.name ?? p.address}`),
        ),
      ),
    );
  }
  return h(
    "p",
    {},
    "Search by block height, block or transaction hash (0x + 64 hex), address (0x + 40 hex), or card id (card 12).",
  );
}

async function route(): Promise<void> {
  for (const fn of leaving) fn();
  leaving = [];
  const mine = ++generation;
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const page = h("div", { class: "page" });
  main.replaceChildren(page);
  for (const a of document.querySelectorAll("nav a"))
    a.classList.toggle("active", a.getAttribute("href") === `#/${parts[0] ?? ""}`);
  try {
    const [what, x, y] = parts;
    if (!what) await overview(page, (fn) => leaving.push(fn));
    else if (what === "block" && x) await blockPage(page, x);
    else if (what === "tx" && x) await txPage(page, x);
    else if (what === "account" && x) await accountPage(page, x);
    else if (what === "card" && x && y) await cardPage(page, x, Number(y));
    else if (what === "programme" && x) await programmePage(page, x);
    else if (what === "supervision") await supervisionPage(page);
    else if (what === "ops") await opsPage(page);
    else if (what === "governance") await governancePage(page);
    else if (what === "template" && x) await templatePage(page, x);
    else if (what === "search" && x) {
      const r = await searchFor(decodeURIComponent(x));
      if (typeof r === "string") location.replace(r);
      else page.append(h("h1", {}, "Search"), r);
    } else page.append(h("p", {}, "No such page."));
  } catch (e) {
    if (mine === generation)
      page.append(h("p", { class: "error" }, `The node answered: ${(e as Error).message}`));
  }
}

(document.getElementById("search") as HTMLFormElement).addEventListener("submit", (e) => {
  e.preventDefault();
  const input = (e.target as HTMLFormElement).elements.namedItem("q") as HTMLInputElement;
  if (input.value.trim()) location.hash = `#/search/${encodeURIComponent(input.value.trim())}`;
});
window.addEventListener("hashchange", () => void route());
void route();
