import { fileURLToPath } from "node:url";
import type * as Testnet from "@custos/testnet";
import type { Command } from "commander";
import { output, UsageError } from "../io.js";

/**
 * How a testnet runs its nodes: this same CLI, under this same Node, on the testnet's clock
 * (which `custos testnet clock --advance` moves forward).
 */
function cliCommand(testnet: typeof Testnet): string[] {
  return [
    process.execPath,
    ...testnet.clockNodeArgs(),
    fileURLToPath(new URL("../../bin/custos.js", import.meta.url)),
  ];
}

function intOption(v: string, flag: string, min: number, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max)
    throw new UsageError(`${flag} takes an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
  return Number(v);
}

/** The testnet library (and the node it starts) is loaded only by the testnet commands. */
const lib = () => import("@custos/testnet");

function summary(t: Testnet.TestnetFile): string {
  const lines = t.nodes.map(
    (n, i) => `  ${i} ${n.name.padEnd(12)} ${n.role.padEnd(9)} rpc ${n.rpc}  pid ${n.pid}`,
  );
  return [
    `testnet ${t.chainId}: ${t.nodes.length} nodes`,
    ...lines,
    ...(t.links
      ? [
          t.netns
            ? `network faults: each node in its own network namespace (custos-${t.netns.tag}-N, ${t.netns.subnet}.0/24 on bridge cb${t.netns.tag}); the kernel cuts, loses and paces packets, the link proxy (pid ${t.links.pid}) delays them: custos testnet partition|cut|link|heal|links --dir DIR`
            : `network faults: ${t.links.fallback ?? "on 127.0.0.1"}; link proxy pid ${t.links.pid}: custos testnet partition|cut|link|heal|links --dir DIR`,
        ]
      : []),
    `demo accounts: ${t.accounts.map((a) => a.name).join(", ")} (keystores in ${t.accounts[0]?.keyFile.replace(/[^/]+$/, "")}, password file ${t.passwordFile})`,
  ].join("\n");
}

export function registerTestnetCommands(program: Command): void {
  const tn = program.command("testnet").description("local multi-process testnets and fault injection");

  tn.command("up")
    .description("create (or with --reuse start again) a testnet in DIR: one process per node")
    .requiredOption("--dir <dir>", "testnet directory (holds testnet.json)")
    .option("--nodes <n>", "validators", "4")
    .option("--observers <m>", "observer nodes", "0")
    .option("--base-port <p>", "node i: RPC on p+i, libp2p on p+100+i", "8545")
    .option("--chain-id <id>", "chain id", "custos-testnet")
    .option("--block-interval <ms>", "minimum block interval", "100")
    .option(
      "--p2p-secure <kind>",
      'how the nodes secure their connections: "sm" (national algorithms: SM2, SM3, SM4) or "noise"',
      "sm",
    )
    .option(
      "--reuse",
      "if DIR already holds a testnet, start its stopped nodes (with this custos) instead of refusing",
    )
    .option(
      "--faults",
      "network faults: each node in a network namespace of its own where the machine allows it (else on 127.0.0.1), peers dial each other through a link proxy: partition, cut, link, heal (at most 10 nodes)",
    )
    .option("--no-netns", "with --faults: keep the nodes on 127.0.0.1 (the link proxy does every fault)")
    .option("--attach", "stay in the foreground; Ctrl-C (SIGINT/SIGTERM) stops every node")
    .option(
      "--no-demo",
      "skip the prepaid-card demo (the template approved, two merchants' programmes, e-CNY for the consumers)",
    )
    .option("--json", "print testnet.json (and the demo)")
    .action(
      async (o: {
        dir: string;
        nodes: string;
        observers: string;
        basePort: string;
        chainId: string;
        blockInterval: string;
        p2pSecure: string;
        reuse?: boolean;
        faults?: boolean;
        netns: boolean;
        attach?: boolean;
        demo: boolean;
        json?: boolean;
      }) => {
        if (o.p2pSecure !== "sm" && o.p2pSecure !== "noise")
          throw new UsageError(`--p2p-secure takes sm or noise (got ${JSON.stringify(o.p2pSecure)})`);
        const testnet = await lib();
        const t = await testnet.up({
          dir: o.dir,
          nodes: intOption(o.nodes, "--nodes", 1, 64),
          observers: intOption(o.observers, "--observers", 0, 16),
          basePort: intOption(o.basePort, "--base-port", 1024, 65_000),
          chainId: o.chainId,
          blockIntervalMs: intOption(o.blockInterval, "--block-interval", 0, 60_000),
          p2pSecure: o.p2pSecure,
          command: cliCommand(testnet),
          ...(o.reuse ? { reuse: true } : {}),
          ...(o.faults ? { faults: true, netns: o.netns } : {}),
        });
        // the demo looks at the chain first: on a testnet started again it finds what it made
        const demo = o.demo ? await testnet.prepaidDemo(o.dir) : undefined;
        output(
          !!o.json,
          { ...(t as unknown as Record<string, unknown>), ...(demo ? { demo } : {}) },
          [summary(t), ...(demo ? testnet.demoSummary(demo, o.dir) : [])].join("\n"),
        );
        if (!o.attach) return;
        if (!o.json) process.stdout.write("running; Ctrl-C stops the testnet\n");
        await new Promise<void>((done) => {
          const alive = setInterval(() => {}, 60_000); // signal handlers alone do not keep Node running
          const stop = () => {
            clearInterval(alive);
            process.off("SIGINT", stop);
            process.off("SIGTERM", stop);
            if (!o.json) process.stdout.write("stopping the testnet...\n");
            testnet.down(o.dir).then(done, done);
          };
          process.on("SIGINT", stop);
          process.on("SIGTERM", stop);
        });
        if (!o.json)
          process.stdout.write(
            `stopped; \`npm start\` (or custos testnet up --dir ${o.dir} --reuse) starts it again\n`,
          );
      },
    );

  tn.command("status")
    .description("each node's process state, height, latest hash, view and peers")
    .requiredOption("--dir <dir>", "testnet directory")
    .option("--json", "print one JSON document")
    .action(async (o: { dir: string; json?: boolean }) => {
      const nodes = await (await lib()).status(o.dir);
      output(
        !!o.json,
        { nodes },
        nodes
          .map(
            (n) =>
              `${n.index} ${n.name.padEnd(12)} ${n.state.padEnd(8)} ${
                n.height === undefined
                  ? (n.error ?? "")
                  : `height ${n.height} ${n.latestHash?.slice(0, 18)}… view ${n.view} peers ${n.peers}${n.syncing ? " syncing" : ""}`
              }`,
          )
          .join("\n"),
      );
    });

  tn.command("down")
    .description("stop every node (SIGTERM, then SIGKILL after 10 s)")
    .requiredOption("--dir <dir>", "testnet directory")
    .option("--json", "print one JSON document")
    .action(async (o: { dir: string; json?: boolean }) => {
      await (await lib()).down(o.dir);
      output(!!o.json, { stopped: true }, "stopped");
    });

  tn.command("add-node")
    .description("create and start one more validator or observer (with --join); governance then adds it")
    .requiredOption("--dir <dir>", "testnet directory")
    .option("--name <name>", "node name (default validator-N or observer-N)")
    .option("--observer", "an observer (custos observer add) instead of a validator")
    .option("--json", "print one JSON document")
    .action(async (o: { dir: string; name?: string; observer?: boolean; json?: boolean }) => {
      const a = await (await lib()).addNode(o.dir, {
        ...(o.name ? { name: o.name } : {}),
        role: o.observer ? "observer" : "validator",
      });
      const kind = a.node.role;
      output(
        !!o.json,
        { ...a.node, publicKey: a.publicKey, peerId: a.peerId, listen: a.listen },
        [
          `${a.node.name} started (rpc ${a.node.rpc}, pid ${a.node.pid}); it joins once governance adds it:`,
          `  custos ${kind} add --name ${a.node.name} --public-key ${a.publicKey} --peer-id ${a.peerId} --p2p ${a.listen} --key <committee key>`,
          "  then committee members: custos proposal vote <id> --approve --key <committee key>",
        ].join("\n"),
      );
    });

  tn.command("clock")
    .description(
      "the testnet's clock: --advance moves every node's time forward (block time: terms, cooling-off, accruals)",
    )
    .requiredOption("--dir <dir>", "testnet directory")
    .option("--advance <duration>", "how far, e.g. 8d, 12h, 30m, 1d12h")
    .option("--node <node>", "with --skew: the node whose clock goes wrong (index or name)")
    .option("--skew <duration>", "one node's clock off by this, e.g. 5m, -30s; 0 puts it right")
    .option("--json", "print one JSON document")
    .action(async (o: { dir: string; advance?: string; node?: string; skew?: string; json?: boolean }) => {
      const testnet = await lib();
      if (o.skew !== undefined || o.node !== undefined) {
        if (o.skew === undefined || o.node === undefined)
          throw new UsageError("--skew and --node go together: custos testnet clock --node 2 --skew 5m");
        if (o.advance !== undefined) throw new UsageError("--skew and --advance are separate commands");
        let skewMs: number;
        try {
          skewMs = testnet.parseSignedDuration(o.skew);
        } catch (err) {
          throw new UsageError(`--skew: ${(err as Error).message}`);
        }
        const r = await testnet.skewClock(o.dir, o.node, skewMs);
        output(
          !!o.json,
          r,
          r.skewMs === 0
            ? `${r.name}: clock right again`
            : `${r.name}: clock ${Math.abs(r.skewMs) / 1000} s ${r.skewMs > 0 ? "ahead" : "behind"}`,
        );
        return;
      }
      let by: number | undefined;
      if (o.advance !== undefined) {
        try {
          by = testnet.parseDuration(o.advance);
        } catch (err) {
          throw new UsageError(`--advance: ${(err as Error).message}`);
        }
        if (by <= 0) throw new UsageError("--advance takes a duration above zero");
      }
      const c = by === undefined ? testnet.readClock(o.dir) : await testnet.advanceClock(o.dir, by);
      const days = Math.floor(c.offsetMs / 86_400_000);
      const rest = Math.round((c.offsetMs % 86_400_000) / 60_000);
      output(
        !!o.json,
        { offsetMs: c.offsetMs, now: c.now },
        `testnet time ${new Date(c.now + 8 * 3_600_000).toISOString().slice(0, 16).replace("T", " ")} UTC+8: ${c.offsetMs === 0 ? "real time" : `${days} days ${Math.floor(rest / 60)} h ${rest % 60} min ahead of real time`}${by === undefined ? "" : "; the next block carries it"}`,
      );
    });

  const fault = (
    name: string,
    description: string,
    fn: (t: typeof Testnet, dir: string, which: string) => Promise<Testnet.TestnetNode>,
    verb: string,
  ) =>
    tn
      .command(`${name} <node>`)
      .description(`${description} (node: index in testnet.json or name)`)
      .requiredOption("--dir <dir>", "testnet directory")
      .option("--json", "print one JSON document")
      .action(async (which: string, o: { dir: string; json?: boolean }) => {
        const n = await fn(await lib(), o.dir, which);
        output(!!o.json, { name: n.name, pid: n.pid, rpc: n.rpc }, `${n.name} ${verb}`);
      });
  fault("kill", "SIGKILL a node: a crash", (t, d, w) => t.kill(d, w), "killed");
  fault(
    "restart",
    "stop a node if it runs and start it again, with this custos (node by node: a rolling upgrade)",
    (t, d, w) => t.restart(d, w, undefined, undefined, cliCommand(t)),
    "restarted",
  );
  fault("pause", "SIGSTOP a node: hung, connections open", (t, d, w) => t.pause(d, w), "paused");
  fault("resume", "SIGCONT a paused node", (t, d, w) => t.resume(d, w), "resumed");

  // Network faults (issue 17): on a testnet started with --faults, through its link proxy
  tn.command("link-proxy", { hidden: true })
    .description("run the link proxy of a testnet (started by up --faults)")
    .requiredOption("--dir <dir>", "testnet directory")
    .action(async (o: { dir: string }) => {
      await (await lib()).runLinkProxy(o.dir);
    });

  tn.command("partition <groups>")
    .description(
      'split the nodes into groups that cannot reach each other: "0,1|2,3,4" (indexes or names; unnamed nodes form one more group)',
    )
    .requiredOption("--dir <dir>", "testnet directory")
    .option("--json", "print one JSON document")
    .action(async (spec: string, o: { dir: string; json?: boolean }) => {
      const groups = spec.split("|").map((g) =>
        g
          .split(",")
          .map((w) => w.trim())
          .filter((w) => w !== ""),
      );
      if (groups.length < 1 || groups.some((g) => g.length === 0))
        throw new UsageError(`groups look like "0,1|2,3" (got ${JSON.stringify(spec)})`);
      const out = await (await lib()).partition(o.dir, groups);
      output(!!o.json, { groups: out }, `partitioned: ${out.map((g) => g.join(",")).join(" | ")}`);
    });

  tn.command("cut <from> <to>")
    .description("one-way cut: what FROM sends to TO is dropped (TO's bytes to FROM still arrive)")
    .requiredOption("--dir <dir>", "testnet directory")
    .option("--json", "print one JSON document")
    .action(async (from: string, to: string, o: { dir: string; json?: boolean }) => {
      const key = await (await lib()).cut(o.dir, from, to);
      output(!!o.json, { cut: key }, `cut ${key.replace(">", " -> ")}`);
    });

  const num = (v: string | undefined, flag: string, max: number): number | undefined => {
    if (v === undefined) return undefined;
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0 || x > max)
      throw new UsageError(`${flag} takes a number from 0 to ${max}`);
    return x;
  };
  tn.command("link <from> <to>")
    .description('slow or lossy link FROM -> TO ("*" for every node): settings given replace the link\'s')
    .requiredOption("--dir <dir>", "testnet directory")
    .option("--delay <ms>", "added delay")
    .option("--jitter <ms>", "uniform random extra delay up to this")
    .option("--loss <p>", "share of chunks lost and retransmitted (0..1)")
    .option("--duplicate <p>", "share of chunks duplicated on the wire (0..1)")
    .option("--bandwidth <bytes>", "bytes per second")
    .option("--both", "also TO -> FROM")
    .option("--json", "print one JSON document")
    .action(
      async (
        from: string,
        to: string,
        o: {
          dir: string;
          delay?: string;
          jitter?: string;
          loss?: string;
          duplicate?: string;
          bandwidth?: string;
          both?: boolean;
          json?: boolean;
        },
      ) => {
        const settings = Object.fromEntries(
          Object.entries({
            delayMs: num(o.delay, "--delay", 60_000),
            jitterMs: num(o.jitter, "--jitter", 60_000),
            loss: num(o.loss, "--loss", 1),
            duplicate: num(o.duplicate, "--duplicate", 1),
            bandwidth: num(o.bandwidth, "--bandwidth", 1e12),
          }).filter(([, v]) => v !== undefined),
        );
        const keys = await (await lib()).setLinks(o.dir, from, to, settings, !!o.both);
        output(!!o.json, { links: keys, settings }, `${keys.join(" ")}: ${JSON.stringify(settings)}`);
      },
    );

  tn.command("heal")
    .description("remove every partition and cut, and every link setting unless --keep-links")
    .requiredOption("--dir <dir>", "testnet directory")
    .option("--keep-links", "keep delay/loss/bandwidth settings")
    .option("--json", "print one JSON document")
    .action(async (o: { dir: string; keepLinks?: boolean; json?: boolean }) => {
      await (await lib()).heal(o.dir, o.keepLinks ? { keepLinks: true } : {});
      output(!!o.json, { healed: true }, "healed");
    });

  tn.command("links")
    .description("the network faults in force and the link proxy's counters")
    .requiredOption("--dir <dir>", "testnet directory")
    .option("--json", "print one JSON document")
    .action(async (o: { dir: string; json?: boolean }) => {
      const l = await (await lib()).links(o.dir);
      output(
        !!o.json,
        l as unknown as Record<string, unknown>,
        [
          `link proxy ${l.running ? `running (pid ${l.state?.pid})` : "NOT running"}, version ${l.control.version}`,
          l.kernelDropped
            ? `nodes in network namespaces; packets the kernel dropped on their way out, by node: ${l.kernelDropped.map((d, i) => `${i}: ${d.faults}${d.bypass > 0 ? ` (+${d.bypass} to a node's own address)` : ""}`).join(", ")}`
            : `nodes on 127.0.0.1: ${l.fallback ?? "the link proxy does every fault"}`,
          `cuts: ${l.control.cuts.length === 0 ? "none" : l.control.cuts.join(" ")}`,
          ...Object.entries(l.control.links).map(([k, v]) => `link ${k}: ${JSON.stringify(v)}`),
          l.state
            ? `connections ${l.state.connections}, bytes ${l.state.bytes}, dropped ${l.state.droppedBytes}, lost chunks ${l.state.lostChunks}, closed after a cut ${l.state.closedAfterCut}`
            : "",
        ]
          .filter((x) => x !== "")
          .join("\n"),
      );
    });

  tn.command("check")
    .description(
      "Jepsen-style check: a new testnet with --faults, transfers through every validator, a seeded schedule of faults; then no acknowledged tx lost, one chain, e-CNY conserved, commits after each heal, views bounded",
    )
    .option("--seed <n>", "first seed", "1")
    .option("--seeds <m>", "seeds to run one after another (each on a new testnet)", "1")
    .option("--faults <list>", "comma-separated fault kinds (default: all)")
    .option("--steps <k>", "faults per seed (default: one of each kind given)")
    .option("--hold <ms>", "how long each fault holds", "4000")
    .option("--recover-bound <ms>", "the chain must commit again within this after each heal", "30000")
    .option("--max-view <v>", "the highest view a validator may reach", "8")
    .option("--observers <m>", "observer nodes", "0")
    .option("--no-netns", "keep the nodes on 127.0.0.1 (the link proxy does every fault)")
    .option("--keep", "keep each seed's testnet directory")
    .option("--json", "print one JSON document (the results) at the end")
    .action(
      async (o: {
        seed: string;
        seeds: string;
        faults?: string;
        steps?: string;
        hold: string;
        recoverBound: string;
        maxView: string;
        observers: string;
        netns: boolean;
        keep?: boolean;
        json?: boolean;
      }) => {
        const testnet = await lib();
        const kinds = o.faults?.split(",").map((k) => k.trim()) ?? [...testnet.FAULT_KINDS];
        for (const k of kinds)
          if (!(testnet.FAULT_KINDS as readonly string[]).includes(k))
            throw new UsageError(`no fault kind ${k}: one of ${testnet.FAULT_KINDS.join(", ")}`);
        const first = intOption(o.seed, "--seed", 0, 2 ** 31);
        const count = intOption(o.seeds, "--seeds", 1, 100_000);
        const results: Testnet.CheckResult[] = [];
        for (let s = first; s < first + count; s++) {
          const r = await testnet.check({
            seed: s,
            command: cliCommand(testnet),
            faults: kinds as Testnet.FaultKind[],
            ...(o.steps === undefined ? {} : { steps: intOption(o.steps, "--steps", 1, 1000) }),
            holdMs: intOption(o.hold, "--hold", 0, 600_000),
            recoverBoundMs: intOption(o.recoverBound, "--recover-bound", 1000, 600_000),
            maxView: intOption(o.maxView, "--max-view", 0, 1_000_000),
            observers: intOption(o.observers, "--observers", 0, 4),
            ...(o.netns ? {} : { netns: false }),
            ...(o.keep ? { keep: true } : {}),
            ...(o.json ? {} : { log: (line: string) => process.stdout.write(`${line}\n`) }),
          });
          results.push(r);
        }
        const failed = results.filter((r) => !r.ok);
        const summary = {
          seeds: results.length,
          failed: failed.map((r) => r.seed),
          faults: results.reduce((n, r) => n + r.steps.length, 0),
          acknowledged: results.reduce((n, r) => n + r.acknowledged, 0),
          lost: results.reduce((n, r) => n + r.lost.length, 0),
          longestRecoverMs: Math.max(0, ...results.map((r) => r.longestRecoverMs)),
        };
        output(
          !!o.json,
          { ...summary, results },
          `${summary.seeds} seeds, ${summary.faults} faults, ${summary.acknowledged} acknowledged, ${summary.lost} lost, longest time to a commit after a heal ${summary.longestRecoverMs} ms; ${failed.length === 0 ? "all OK" : `FAILED: ${failed.map((r) => `seed ${r.seed} (${r.reproduce})`).join("; ")}`}`,
        );
        if (failed.length > 0) process.exitCode = 1;
      },
    );
}
