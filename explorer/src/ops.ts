// The operator's view: this node's height, view, peers and pool (custos_status), its own
// metrics (/metrics: CPU, memory, disk, view changes), every node's vital signs (custos_nodes:
// each validator and observer reports its own over the chain's network), TPS and block-interval
// charts over the latest blocks, and which validators signed them (from the commit certificates).
import { chart } from "./chart.js";
import { card, fields, h, put, stat, table, time } from "./dom.js";
import { batch, type Json, metricsText, rpc } from "./rpc.js";

const WINDOW = 60;

function metric(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== " " && line[name.length] !== "{")) continue;
    const v = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}

const mb = (b: number | undefined) => (b === undefined ? "-" : `${(b / 1024 / 1024).toFixed(1)} MB`);

/** The last CPU reading of each node: a second look at the page shows the share of a core it used in between. */
const cpuSeen = new Map<string, { ms: number; at: number }>();

function cpu(name: string, ms: number, at: number): string {
  const before = cpuSeen.get(name);
  cpuSeen.set(name, { ms, at });
  const total = `${(ms / 1000).toFixed(1)} s`;
  if (!before || at <= before.at || ms < before.ms) return total;
  return `${(((ms - before.ms) / (at - before.at)) * 100).toFixed(0)} % · ${total}`;
}

function uptime(s: number): string {
  if (s < 120) return `${Math.floor(s)} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export async function opsPage(main: HTMLElement): Promise<void> {
  const [status, text, nodes] = await Promise.all([
    rpc("custos_status"),
    metricsText(),
    rpc("custos_nodes").catch(() => [] as Json[]),
  ]);
  const head: number = status.height;
  const from = Math.max(1, head - WINDOW + 1);
  const blocks = (
    await batch(Array.from({ length: head - from + 1 }, (_, i) => ["custos_getBlock", from + i]))
  ).filter((b): b is Json => !(b instanceof Error));
  const ev = await rpc("custos_getBlockEvidence", head).catch(() => undefined);
  const validators: Json[] = ev?.validators ?? [];
  const tps: { x: number; y: number }[] = [];
  const interval: { x: number; y: number }[] = [];
  for (let i = 1; i < blocks.length; i++) {
    const dt = (blocks[i].timestamp - blocks[i - 1].timestamp) / 1000;
    interval.push({ x: blocks[i].height, y: dt });
    tps.push({ x: blocks[i].height, y: dt > 0 ? blocks[i].txCount / dt : 0 });
  }
  const signed = validators.map(() => ({ count: 0, last: -1 }));
  for (const b of blocks)
    for (const sg of b.certificate?.signatures ?? []) {
      const v = signed[sg.validator];
      if (v) {
        v.count++;
        v.last = b.height;
      }
    }
  const last = blocks[blocks.length - 1];
  put(
    main,
    h("h1", {}, "Operations"),
    h(
      "div",
      { class: "stats", id: "ops-stats" },
      stat("Height", String(head)),
      stat("Role", status.role),
      stat("View", String(status.view)),
      stat("Peers", `${status.peers} (${status.validatorPeers} validators)`),
      stat("Pool", `${status.pool.size} txs, ${(status.pool.bytes / 1024).toFixed(1)} KB`),
      stat("Syncing", status.syncing ? `yes, to #${status.syncTarget}` : "no"),
      stat("Last block", last ? time(last.timestamp) : "-"),
    ),
    card(
      "This node's metrics",
      text
        ? fields([
            ["CPU time", `${(metric(text, "process_cpu_seconds_total") ?? 0).toFixed(1)} s`],
            ["Memory (RSS)", mb(metric(text, "process_resident_memory_bytes"))],
            ["Ledger on disk", mb(metric(text, "custos_ledger_disk_bytes"))],
            ["View changes", String(metric(text, "custos_consensus_view_changes_total") ?? 0)],
            ["Txs committed", String(metric(text, "custos_txs_committed_total") ?? 0)],
            ["Txs rejected", String(metric(text, "custos_tx_rejected_total") ?? 0)],
            ["Blocks synced", String(metric(text, "custos_sync_blocks_total") ?? 0)],
            ["SM2 backend / VM", `${status.sm2Backend} / ${status.vm}`],
          ])
        : h("p", {}, "The node's /metrics is not available to this key."),
    ),
    h(
      "div",
      { class: "two" },
      chart(
        {
          label: `Transactions per second, last ${blocks.length} blocks`,
          kind: "bars",
          unit: "tx/s",
          points: tps,
        },
        "tps-chart",
      ),
      chart({ label: "Block interval (s)", kind: "line", unit: "s", points: interval }, "interval-chart"),
    ),
    card(
      "Nodes",
      h(
        "p",
        { class: "muted" },
        "This node's figures are read here; each other node's are what it reported when asked, over the chain's own network.",
      ),
      table(
        [
          "Name",
          "Role",
          "Connected",
          "Height",
          "Behind",
          "Last block",
          "View",
          "Peers",
          "Pool",
          "View changes",
          "CPU",
          "Memory (RSS)",
          "Ledger on disk",
          "Up",
        ],
        (nodes as Json[]).map((n) => {
          const x: Json | null = n.health;
          return [
            n.self ? h("b", {}, `${n.name} (this node)`) : n.name,
            n.role,
            n.self ? "-" : n.connected ? "yes" : "no",
            ...(x
              ? [
                  `#${x.height}`,
                  String(Math.max(0, head - x.height)),
                  time(x.headTime),
                  String(x.view),
                  String(x.peers),
                  String(x.pool),
                  String(x.viewChanges),
                  cpu(n.name, x.cpuMs, n.readAt),
                  mb(x.rssBytes),
                  mb(x.diskBytes),
                  uptime(x.uptimeSeconds),
                ]
              : [h("span", { class: "muted" }, n.error ?? "-"), "", "", "", "", "", "", "", "", "", ""]),
          ];
        }),
        { id: "nodes" },
      ),
    ),
    card(
      "Validators",
      table(
        ["#", "Name", "Public key", `Signed (last ${blocks.length} blocks)`, "Last signed"],
        validators.map((v, i) => [
          String(i),
          v.name,
          h("span", { class: "mono" }, `${v.publicKey.slice(0, 14)}…`),
          String(signed[i]?.count ?? 0),
          signed[i] && (signed[i] as { last: number }).last >= 0
            ? `#${(signed[i] as { last: number }).last}`
            : "-",
        ]),
        { id: "validators" },
      ),
    ),
  );
}
