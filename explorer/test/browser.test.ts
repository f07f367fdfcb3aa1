import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CustosClient, PrepaidProgramme, Wallet } from "@custos/client";
import { loadKeystoreFile, type Sm2KeyPair } from "@custos/crypto";
import { RpcServer } from "@custos/node";
import * as testnet from "@custos/testnet";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Issue 16's acceptance in a real browser (Debian's chromium, driven by playwright-core) against
 * a local testnet of 4 validator processes and an observer, as the other e2e tests start it: the
 * explorer served by a node at /explorer, live blocks, a transaction found by its hash with its
 * business meaning and a "verified" mark computed in the page, a tampered certificate shown as
 * not verified, a card's fund-flow picture, the operations view, no console errors, phone and
 * desktop screenshots kept in explorer/test-output/, and the first page's asset budget.
 */
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const OUT = join(ROOT, "test-output");
const CLI = [process.execPath, fileURLToPath(new URL("../../cli/bin/custos.js", import.meta.url))];
const CHROMIUM = "/usr/bin/chromium";
const BUDGET = 200 * 1024;

let dir: string;
let t: testnet.TestnetFile;
let keys: Map<string, Sm2KeyPair>;
let client: CustosClient;
let base: string;
let browser: Browser;
let desktop: BrowserContext;
let buyTx: string;
let school: string;
let cardId: number;
const consoleErrors: string[] = [];
/** Every JSON-RPC method the pages called: the explorer is read-only. */
const called = new Set<string>();

const wallet = (name: string) => new Wallet(client, keys.get(name) as Sm2KeyPair);

async function send(from: string, to: string, method: string, args: unknown[] = [], value = 0n) {
  const r = await wallet(from).send({ to, method, args, value });
  if (!r.receipt?.success)
    throw new Error(`${to}.${method}: ${r.receipt?.errorCode} ${r.receipt?.errorMessage}`);
  return {
    hash: r.hash,
    height: r.view?.blockHeight as number,
    receipt: r.receipt as NonNullable<typeof r.receipt> & { output: any },
  };
}

function watch(page: Page): Page {
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
  page.on("request", (req) => {
    if (req.method() !== "POST") return;
    const body = JSON.parse(req.postData() ?? "null");
    for (const r of Array.isArray(body) ? body : [body]) called.add(r.method);
  });
  return page;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    execFileSync("sh", [join(ROOT, "scripts", "install-chromium.sh")], { stdio: "inherit" });
  // always rebuilt (esbuild, about a second): a dist left from older sources would test old code
  execFileSync(process.execPath, [join(ROOT, "scripts", "build.mjs")], { stdio: "inherit" });
  await mkdir(OUT, { recursive: true });
  dir = await mkdtemp(join(tmpdir(), "custos-explorer-net-"));
  t = await testnet.up({
    dir,
    nodes: 4,
    observers: 1,
    basePort: await testnet.freeBasePort(5),
    command: CLI,
    blockIntervalMs: 50,
  });
  const password = readFileSync(t.passwordFile, "utf8").trim();
  keys = new Map();
  for (const a of t.accounts) keys.set(a.name, await loadKeystoreFile(a.keyFile, password));
  client = new CustosClient(t.nodes[0]?.rpc as string);
  const demo = await testnet.setUpPrepaidDemo({
    rpc: t.nodes[0]?.rpc as string,
    accounts: t.accounts,
    password,
  });
  school = (demo.programmes.find((p) => p.slug === "bright-future-school") as testnet.DemoProgramme).address;
  // a card's journey: bought at its quoted price (into escrow), used for 120 yuan (released to
  // the merchant), the rest refunded (this programme refunds after the cooling-off period too)
  const consumer = new PrepaidProgramme(client, school).as(wallet("consumer-1"));
  const bought = await consumer.buy(1);
  buyTx = bought.hash;
  cardId = bought.output.id;
  await consumer.consume(cardId, 120_00n);
  await consumer.refund(cardId);
  // a complaint about the school, classified by the regulator: the programme page lists it
  await send("consumer-1", "complaints", "file", [school, "refund-refused", `0x${"ab".repeat(32)}`]);
  await send("regulator", "complaints", "classify", [1, "valid", "serious"]);
  // the browser opens the observer's explorer once it has the validators' head
  const head = (await client.status()).height;
  const observer = new CustosClient(t.nodes[4]?.rpc as string);
  for (let i = 0; i < 300 && (await observer.status()).height < head; i++)
    await new Promise((r) => setTimeout(r, 100));
  base = `${t.nodes[4]?.rpc}/explorer/`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"], headless: true });
  desktop = await browser.newContext({ viewport: { width: 1366, height: 900 } });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  if (dir) {
    await testnet.down(dir).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}, 60_000);

describe("the explorer in a browser, served by a testnet node", () => {
  it("loads the first page within the asset budget, from the node alone", async () => {
    const page = watch(await desktop.newPage());
    const assets: { url: string; bytes: number }[] = [];
    const elsewhere: string[] = [];
    page.on("requestfinished", async (req) => {
      const url = new URL(req.url());
      if (url.origin !== new URL(base).origin) elsewhere.push(req.url());
      if (url.pathname.startsWith("/explorer")) {
        const res = await req.response();
        assets.push({ url: url.pathname, bytes: (await res?.body())?.byteLength ?? 0 });
      }
    });
    await page.goto(base);
    await page.waitForSelector("#latest-blocks tr");
    await page.waitForSelector("#latest-txs tr");
    await page.waitForLoadState("networkidle");
    const total = assets.reduce((a, b) => a + b.bytes, 0);
    console.log(`explorer first page: ${total} bytes of assets`, assets);
    expect(assets.map((a) => a.url)).toContain("/explorer/app.js");
    expect(total).toBeLessThan(BUDGET);
    expect(elsewhere).toEqual([]);
    await page.close();
  });

  it("shows a new block and its transaction without a reload", async () => {
    const page = watch(await desktop.newPage());
    await page.goto(base);
    await page.waitForSelector("#live.on");
    const before = Number(await page.textContent("#head-height"));
    const tx = await send("consumer-1", "ecny", "transfer", [keys.get("consumer-2")?.address, 1_00n]);
    const height = tx.height;
    await page.waitForSelector(`#latest-blocks tr[data-height="${height}"]`, { timeout: 30_000 });
    await page.waitForSelector(`#latest-txs tr[data-tx="${tx.hash}"]`, { timeout: 30_000 });
    expect(height).toBeGreaterThan(before);
    expect(await page.textContent(`#latest-txs tr[data-tx="${tx.hash}"]`)).toContain(
      "Transfer of ¥1.00 e-CNY",
    );
    await page.screenshot({ path: join(OUT, "desktop-overview.png"), fullPage: true });
    await page.close();
  });

  it("finds a transaction by its hash, says what it did and verifies it in the page", async () => {
    const page = watch(await desktop.newPage());
    await page.goto(base);
    await page.fill("#search input[name=q]", buyTx);
    await page.press("#search input[name=q]", "Enter");
    await page.waitForSelector("#business");
    expect(await page.textContent("#business")).toMatch(
      /Buys a prepaid card of product #1 paying ¥[1-9][\d,]*\.\d\d, into the programme's escrow/,
    );
    await page.waitForSelector('#verify-mark[data-verified="true"]', { timeout: 60_000 });
    const checks = await page.textContent("ul.checks");
    expect(checks).toContain("commit certificate");
    expect(checks).toContain("it holds what is shown");
    expect(checks).toContain("walked from the genesis set");
    expect(checks).toContain("inclusion proof");
    await page.screenshot({ path: join(OUT, "desktop-tx.png"), fullPage: true });
    await page.close();
  });

  it("shows a tampered certificate as not verified", async () => {
    const page = watch(await desktop.newPage());
    await page.route(
      (url) => url.pathname === "/",
      async (route) => {
        const body = route.request().postData() ?? "";
        if (!body.includes("custos_getBlockEvidence")) return route.continue();
        const res = await route.fetch();
        const reply = await res.json();
        const cert: string = reply.result.certificate;
        // flip the last byte of the last signature
        const last = (Number.parseInt(cert.slice(-2), 16) ^ 0x01).toString(16).padStart(2, "0");
        reply.result.certificate = cert.slice(0, -2) + last;
        await route.fulfill({ response: res, json: reply });
      },
    );
    await page.goto(`${base}#/tx/${buyTx}`);
    await page.waitForSelector('#verify-mark[data-verified="false"]', { timeout: 60_000 });
    expect(await page.textContent("#verify-mark")).toMatch(/Not verified: .*bad signature from validator/);
    await page.screenshot({ path: join(OUT, "desktop-tampered.png"), fullPage: true });
    await page.close();
    // a node that shows another amount than the sender signed is caught too
    const lying = watch(await desktop.newPage());
    await lying.route(
      (url) => url.pathname === "/",
      async (route) => {
        const body = route.request().postData() ?? "";
        if (!body.includes("custos_getTx")) return route.continue();
        const res = await route.fetch();
        const reply = await res.json();
        reply.result.tx.value = "1";
        await route.fulfill({ response: res, json: reply });
      },
    );
    await lying.goto(`${base}#/tx/${buyTx}`);
    await lying.waitForSelector('#verify-mark[data-verified="false"]', { timeout: 60_000 });
    expect(await lying.textContent("#verify-mark")).toContain(
      "the page shows another value than the signed bytes hold",
    );
    await lying.close();
    // and a node that names another genesis validator set than the one the block's set descends from
    const forged = watch(await desktop.newPage());
    await forged.route(
      (url) => url.pathname === "/",
      async (route) => {
        const body = route.request().postData() ?? "";
        if (!body.includes("custos_getValidatorSetHistory")) return route.continue();
        const res = await route.fetch();
        const reply = await res.json();
        reply.result.genesis.reverse();
        await route.fulfill({ response: res, json: reply });
      },
    );
    await forged.goto(`${base}#/block/1`);
    await forged.waitForSelector('#verify-mark[data-verified="false"]', { timeout: 60_000 });
    expect(await forged.textContent("#verify-mark")).toContain(
      "not the one the history from genesis leads to",
    );
    await forged.close();
  });

  it("draws a card's fund flow, and the supervision, operations and governance views", async () => {
    const page = watch(await desktop.newPage());
    await page.goto(`${base}#/card/${school}/${cardId}`);
    await page.waitForSelector("#fund-flow");
    const flow = await page.textContent("#fund-flow");
    expect(flow).toMatch(/purchase ¥[1-9]/);
    expect(flow).toMatch(/released ¥[1-9]/);
    expect(flow).toMatch(/refunded ¥[1-9]/);
    // the figures under the picture add up, as the contract accounts the card's money: what was
    // paid went to the merchant (with any refund fee, and the part this programme does not
    // escrow), back to the holder, or is still in escrow
    const figures = await page.$$eval("dl.fields dt", (dts) =>
      Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent ?? ""])),
    );
    const fen = (text: string | undefined) => {
      const m = /¥([\d,]+)\.(\d{2})/.exec(text ?? "¥0.00") as RegExpExecArray;
      return BigInt((m[1] as string).replaceAll(",", "")) * 100n + BigInt(m[2] as string);
    };
    const view = await new PrepaidProgramme(client, school).card(cardId);
    expect(fen(figures.Paid)).toBe(view.paid);
    expect(fen(figures["In escrow"])).toBe(view.escrow);
    expect(fen(figures.Paid)).toBe(
      fen(figures["Released to the merchant"]) + fen(figures.Refunded) + fen(figures["In escrow"]),
    );
    // the school escrows 70 % of each price: the page says so, and what the card's open value is
    expect(await page.textContent("#fund-flow-note")).toMatch(/escrows 70\.00 % of each price/);
    await page.screenshot({ path: join(OUT, "desktop-card-flow.png"), fullPage: true });
    // the programme: its money as the contract accounts it, and the complaint about it
    await page.goto(`${base}#/programme/${school}`);
    await page.waitForSelector("#complaints tbody tr");
    const complaint = await page.textContent("#complaints tbody tr");
    expect(complaint).toContain("refund-refused");
    expect(complaint).toContain("valid");
    expect(complaint).toContain("serious");
    const money = await page.$$eval("dl.fields dt", (dts) =>
      Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent ?? ""])),
    );
    // the programme account holds what is in escrow and what is due to the merchant
    expect(fen(money["Programme account (e-CNY)"])).toBe(
      fen(money["In escrow"]) + fen(money["Due to the merchant (released, not yet claimed)"]),
    );
    await page.goto(`${base}#/supervision`);
    await page.waitForSelector("#programmes tbody tr");
    expect(await page.textContent("#programmes")).toContain("Bright Future School");
    await page.screenshot({ path: join(OUT, "desktop-supervision.png"), fullPage: true });
    await page.goto(`${base}#/ops`);
    await page.waitForSelector("#validators tbody tr");
    expect(await page.locator("#validators tbody tr").count()).toBe(4);
    expect(await page.textContent("#ops-stats")).toContain("observer");
    // every node, the observer serving the page first, each with the figures it reported: height,
    // CPU, memory and disk of all four validators too
    const nodes = await page.$$eval("#nodes tbody tr", (trs) =>
      trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")),
    );
    expect(nodes.length).toBe(5);
    expect(nodes[0]?.[0]).toBe("observer-0 (this node)");
    expect(nodes.filter((n) => n[1] === "validator").length).toBe(4);
    for (const n of nodes) {
      expect(n[3]).toMatch(/^#\d+$/); // height
      expect(n[10]).toMatch(/\d+\.\d s$/); // CPU time
      expect(n[11]).toMatch(/MB$/); // memory
      expect(n[12]).toMatch(/MB$/); // ledger on disk
    }
    expect(await page.locator("#nodes tbody tr", { hasText: "yes" }).count()).toBe(4);
    // custos_peers (the same node list, with the height each peer last showed) from the observer
    const peers = await new CustosClient(t.nodes[4]?.rpc as string).request<any[]>("custos_peers");
    expect(peers.map((p) => [p.name, p.role, p.connected])).toEqual(
      [0, 1, 2, 3].map((i) => [`validator-${i}`, "validator", true]),
    );
    for (const p of peers) expect(p.height).toBeGreaterThan(0);
    await page.waitForSelector("#tps-chart");
    await page.screenshot({ path: join(OUT, "desktop-ops.png"), fullPage: true });
    await page.goto(`${base}#/governance`);
    await page.waitForSelector("#proposals tbody tr");
    expect(await page.textContent("#templates")).toContain("prepaid-card");
    await page.screenshot({ path: join(OUT, "desktop-governance.png"), fullPage: true });
    // a programme's address is a contract: its template, code hash and the committee's approval
    await page.goto(`${base}#/account/${school}`);
    await page.waitForSelector("#approval-trail tbody tr");
    expect(await page.textContent("main")).toContain("prepaid-card 1.0.0");
    expect(await page.textContent("#approval-trail")).toContain("voted for");
    await page.screenshot({ path: join(OUT, "desktop-contract.png"), fullPage: true });
    expect(await page.textContent("#version-history")).toContain("instantiated");
    // its template's page: the versions of prepaid-card and each one's approval
    await page.click("#version-history a[href^='#/template/']");
    await page.waitForSelector("#template-versions tbody tr");
    expect(await page.textContent("#template-versions")).toMatch(/1\.0\.0.*executed/s);
    expect(await page.textContent("#approval-trail")).toContain("voted for");
    await page.close();
  });

  it("fits a phone's screen", async () => {
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
    });
    const page = watch(await phone.newPage());
    for (const [route, name, ready] of [
      ["", "phone-overview.png", "#latest-txs tr"],
      [`#/tx/${buyTx}`, "phone-tx.png", '#verify-mark[data-verified="true"]'],
      [`#/card/${school}/${cardId}`, "phone-card-flow.png", "#fund-flow"],
      ["#/ops", "phone-ops.png", "#validators tbody tr"],
    ] as const) {
      await page.goto(`${base}${route}`);
      await page.waitForSelector(ready, { timeout: 60_000 });
      await page.screenshot({ path: join(OUT, name), fullPage: true });
      // wide tables scroll inside their card; the page itself does not scroll sideways
      const overflow = await page.evaluate(() => {
        const wide = [...document.querySelectorAll("body *")].find(
          (e) => e.getBoundingClientRect().right > 392 && !e.closest(".scroll"),
        );
        return { width: document.documentElement.scrollWidth, wide: wide?.outerHTML.slice(0, 120) };
      });
      expect(overflow.width, `${name}: ${overflow.wide}`).toBeLessThanOrEqual(392);
    }
    await phone.close();
  });

  it("looks up blocks, accounts and cards from the search box", async () => {
    const page = watch(await desktop.newPage());
    const tx = await client.getTx(buyTx);
    await page.goto(`${base}#/block/${tx.blockHeight}`);
    await page.waitForSelector('#verify-mark[data-verified="true"]', { timeout: 60_000 });
    expect(await page.locator("#signers tbody tr").count()).toBeGreaterThanOrEqual(3);
    await page.screenshot({ path: join(OUT, "desktop-block.png"), fullPage: true });
    await page.fill("#search input[name=q]", keys.get("consumer-1")?.address as string);
    await page.press("#search input[name=q]", "Enter");
    await page.waitForSelector("#balance");
    expect(await page.textContent("#balance")).toMatch(/^¥[\d,]+\.\d\d$/);
    expect(await page.textContent("main")).toContain(`card #${cardId}`);
    await page.screenshot({ path: join(OUT, "desktop-account.png"), fullPage: true });
    await page.fill("#search input[name=q]", `card ${cardId}`);
    await page.press("#search input[name=q]", "Enter");
    await page.waitForSelector("#fund-flow, main li a[href^='#/card/']");
    // the search led to the card itself, not to the account page still showing its card list
    await page.waitForURL(/#\/card\//, { timeout: 30_000 });
    await page.waitForSelector("#fund-flow", { timeout: 30_000 });
    await page.close();
  });

  it("asks for an API key when the node wants one, and sends it (HTTP and WebSocket)", async () => {
    // a node of its own with API keys, answering from the observer's chain
    const KEY = "explorer-browser-test-key-42";
    const observer = t.nodes[4]?.rpc as string;
    const forward = (method: string) => ({
      scope: "read" as const,
      fn: async (params: unknown[]) => {
        const r = await fetch(observer, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
        }).then((x) => x.json());
        if (r.error) throw Object.assign(new Error(r.error.message), { code: r.error.data?.code });
        return r.result;
      },
    });
    const names = [
      "custos_status",
      "custos_getBlock",
      "custos_getTx",
      "custos_getBlockEvidence",
      "custos_getValidatorSetHistory",
    ];
    const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
    const keyed = new RpcServer(
      {
        host: "127.0.0.1",
        port: 0,
        maxBodyBytes: 1 << 20,
        maxBatch: 100,
        rateLimit: 0,
        apiKeys: [{ key: KEY, scopes: ["read"] }],
        explorerDir: join(ROOT, "dist"),
      },
      Object.fromEntries(names.map((n) => [n, forward(n)])),
      quiet,
    );
    const url = await keyed.start();
    try {
      // not watched for console errors: the browser logs the node's first 401 as one
      const page = await desktop.newPage();
      page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
      const bearer: string[] = [];
      page.on("request", (req) => {
        if (req.method() === "POST") bearer.push(req.headers().authorization ?? "none");
      });
      await page.goto(`${url}/explorer/`);
      await page.waitForSelector("#key-dialog[open]");
      expect(await page.textContent("#key-dialog .reason")).toContain("needs an API key");
      await page.fill("#key-dialog input[name=key]", KEY);
      await page.click("#key-dialog button[type=submit]");
      await page.waitForSelector("#latest-blocks tr");
      await page.waitForSelector("#live.on");
      expect(bearer.at(-1)).toBe(`Bearer ${KEY}`);
      await page.screenshot({ path: join(OUT, "desktop-api-key.png") });
      await page.close();
    } finally {
      await keyed.close();
    }
  });

  it("called read methods only and logged no console errors", () => {
    expect(
      [...called].filter(
        (m) =>
          !/^(custos_(status|getBlock|getTx|getBlockEvidence|getValidatorSetHistory|peers|nodes|call)|ecny_balance|audit_\w+)$/.test(
            m,
          ),
      ),
    ).toEqual([]);
    expect(consoleErrors).toEqual([]);
    for (const f of ["desktop-overview.png", "desktop-tx.png", "phone-overview.png", "phone-tx.png"])
      expect(existsSync(join(OUT, f))).toBe(true);
  });
});
