// A few DOM helpers instead of a framework: the pages are tables, cards and a form.

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | ((e: Event) => void) | undefined>;

/** Creates an element: h("a", { href: "#/" }, "text", child). Strings are text, never HTML. */
export function h(tag: string, attrs: Attrs = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(typeof c === "object" ? c : String(c));
  }
}

const SVG = "http://www.w3.org/2000/svg";

export function s(tag: string, attrs: Record<string, string | number> = {}, ...children: (Node | string)[]) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

/** fen (decimal string or bigint) -> "¥1,234.56" */
export function yuan(fen: string | bigint | number | null | undefined): string {
  if (fen === null || fen === undefined) return "-";
  let v = BigInt(fen);
  const neg = v < 0n;
  if (neg) v = -v;
  const whole = (v / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${neg ? "-" : ""}¥${whole}.${(v % 100n).toString().padStart(2, "0")}`;
}

export function short(hex: string | null | undefined, n = 8): string {
  if (!hex) return "-";
  return hex.length > 2 + n * 2 ? `${hex.slice(0, 2 + n)}…${hex.slice(-4)}` : hex;
}

export function time(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "-";
  const d = new Date(ms);
  const p = (x: number) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export const link = (href: string, text: string, title?: string) =>
  h("a", { href, ...(title ? { title } : {}) }, text);

export const blockLink = (height: number) => link(`#/block/${height}`, `#${height}`);
export const txLink = (hash: string) => h("a", { href: `#/tx/${hash}`, class: "mono" }, short(hash));
export function addrLink(addr: string | null | undefined): Node {
  if (!addr) return document.createTextNode("-");
  if (!/^0x[0-9a-f]{40}$/.test(addr)) return h("span", { class: "mono" }, addr);
  return h("a", { href: `#/account/${addr}`, class: "mono", title: addr }, short(addr, 6));
}

/** A table: headers, then rows of cells. */
export function table(head: string[], rows: Child[][], attrs: Attrs = {}): HTMLElement {
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      attrs,
      h("thead", {}, h("tr", {}, ...head.map((x) => h("th", {}, x)))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c))))),
    ),
  );
}

/** Key-value pairs as a definition list. */
export function fields(pairs: [string, Child][]): HTMLElement {
  return h("dl", { class: "fields" }, ...pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function card(title: string, ...body: Child[]): HTMLElement {
  return h("section", { class: "card" }, h("h2", {}, title), ...body);
}

export function stat(label: string, value: Child, id?: string): HTMLElement {
  return h(
    "div",
    { class: "stat" },
    h("div", { class: "label" }, label),
    h("div", { class: "value", id }, value),
  );
}

/** Offers `rows` as a CSV file named `name` (what the page shows, as the page shows it). */
export function csvButton(name: string, head: string[], rows: () => (string | number)[][]): HTMLElement {
  return h(
    "button",
    {
      class: "csv",
      type: "button",
      onclick: () => {
        const q = (v: string | number) => {
          const t = String(v);
          return /[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
        };
        const text = [head, ...rows()].map((r) => r.map(q).join(",")).join("\n");
        const a = h("a", {
          href: URL.createObjectURL(new Blob([`${text}\n`], { type: "text/csv" })),
          download: name,
        });
        document.body.append(a);
        a.click();
        a.remove();
      },
    },
    "Download CSV",
  );
}

/** Appends children to `el`, skipping null, undefined and false. */
export function put(el: Element, ...children: Child[]): void {
  append(el, children);
}
