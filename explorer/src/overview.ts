// The chain at a glance: status, the latest blocks and transactions, updated live over the
// node's WebSocket (custos_subscribe "newBlocks") without a reload.
import { describeTx } from "./describe.js";
import { addrLink, blockLink, card, h, put, short, stat, time, txLink } from "./dom.js";
import { batch, type Json, rpc, subscribeBlocks } from "./rpc.js";

const BLOCKS = 10;
const TXS = 10;

export async function overview(main: HTMLElement, onLeave: (fn: () => void) => void): Promise<void> {
  const status = await rpc("custos_status");
  const head: number = status.height;
  const heights = Array.from({ length: Math.min(BLOCKS, head + 1) }, (_, i) => head - i);
  const blocks = (await batch(heights.map((x) => ["custos_getBlock", x]))).filter(
    (b): b is Json => !(b instanceof Error),
  );
  const blockRows = h("tbody", { id: "latest-blocks" });
  const txRows = h("tbody", { id: "latest-txs" });
  const heightEl = h("span", { id: "head-height" }, String(head));
  const live = h("span", { class: "live off", id: "live" }, "connecting");
  put(
    main,
    h(
      "div",
      { class: "stats" },
      stat("Chain", status.chainId),
      stat("Height", heightEl),
      stat("Validators", String(status.validators)),
      stat("This node", `${status.role}, view ${status.view}, ${status.peers} peers`),
      stat("Pool", `${status.pool.size} txs`),
      stat("Live updates", live),
    ),
    h(
      "div",
      { class: "two" },
      card(
        "Latest blocks",
        h(
          "div",
          { class: "scroll" },
          h(
            "table",
            {},
            h(
              "thead",
              {},
              h("tr", {}, ...["Height", "Hash", "Txs", "Signers", "Time"].map((x) => h("th", {}, x))),
            ),
            blockRows,
          ),
        ),
      ),
      card(
        "Latest transactions",
        h(
          "div",
          { class: "scroll" },
          h(
            "table",
            {},
            h("thead", {}, h("tr", {}, ...["Tx", "What", "From", "Block"].map((x) => h("th", {}, x)))),
            txRows,
          ),
        ),
      ),
    ),
  );
  const addBlock = (b: Json, atTop: boolean) => {
    if (blockRows.querySelector(`tr[data-height="${b.height}"]`)) return;
    const row = h(
      "tr",
      { "data-height": b.height },
      h("td", {}, blockLink(b.height)),
      h("td", {}, h("a", { href: `#/block/${b.hash}`, class: "mono" }, short(b.hash))),
      h("td", {}, String(b.txCount)),
      h("td", {}, b.certificate ? String(b.certificate.signatures.length) : "-"),
      h("td", {}, time(b.timestamp)),
    );
    if (atTop) blockRows.prepend(row);
    else blockRows.append(row);
    while (blockRows.children.length > BLOCKS) blockRows.lastElementChild?.remove();
  };
  const addTxs = async (list: { hash: string; height: number }[], atTop: boolean) => {
    const txs = await batch(list.slice(0, TXS).map((t) => ["custos_getTx", t.hash]));
    const rows = txs.flatMap((t) => {
      if (t instanceof Error) return [];
      const d = describeTx(t.tx);
      return [
        h(
          "tr",
          { "data-tx": t.tx.hash },
          h("td", {}, txLink(t.tx.hash)),
          h("td", {}, h("span", { class: "tag" }, d.category), " ", d.text),
          h("td", {}, addrLink(t.tx.from)),
          h("td", {}, blockLink(t.blockHeight)),
        ),
      ];
    });
    if (atTop) txRows.prepend(...rows);
    else txRows.append(...rows);
    while (txRows.children.length > TXS) txRows.lastElementChild?.remove();
  };
  for (const b of blocks) addBlock(b, false);
  await addTxs(
    blocks.flatMap((b) => [...b.txs].reverse().map((hash: string) => ({ hash, height: b.height }))),
    false,
  );
  const stop = subscribeBlocks(
    (b) => {
      heightEl.textContent = String(b.height);
      addBlock(b, true);
      addTxs(
        [...b.txs].reverse().map((hash: string) => ({ hash, height: b.height })),
        true,
      ).catch(() => {});
    },
    (on) => {
      live.textContent = on ? "live" : "reconnecting";
      live.className = on ? "live on" : "live off";
    },
  );
  onLeave(stop);
}
