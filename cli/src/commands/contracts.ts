import { writeFile } from "node:fs/promises";
import { formatFen, subscribe } from "@custos/client";
import { encode } from "@custos/codec";
import { HASH_RE } from "@custos/types";
import type { Command } from "commander";
import { output, UsageError } from "../io.js";
import { rpcUrl } from "../target.js";
import {
  amount,
  checkNames,
  type RpcOpts,
  rpcOption,
  type SignOpts,
  sendAndReport,
  signOption,
  type Target,
  target,
} from "./chain.js";

/** esbuild is loaded only by the commands that bundle a contract. */
async function bundle(file: string): Promise<{ code: string; codeHash: string }> {
  const { bundleContract } = await import("@custos/contract-sdk/harness");
  return bundleContract(file);
}

function jsonOption(v: string | undefined, flag: string): unknown {
  if (v === undefined) return undefined;
  try {
    return JSON.parse(v);
  } catch {
    throw new UsageError(`${flag} must be JSON (e.g. '[1, "two"]')`);
  }
}

function argsOption(v: string | undefined): unknown[] {
  const a = jsonOption(v, "--args") ?? [];
  if (!Array.isArray(a)) throw new UsageError("--args must be a JSON array of arguments");
  return a;
}

function ttlOption(v: string | undefined): number | null {
  if (v === undefined) return null;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError("--ttl takes a whole number of seconds");
  return n;
}

async function query<T = any>(t: Target, to: string, method: string, args: unknown[] = []): Promise<T> {
  return t.client.call<T>(to, method, encode(args));
}

/** A template id on the command line: a code hash, or name@version looked up on chain. */
async function codeHashOf(t: Target, id: string): Promise<string> {
  if (HASH_RE.test(id)) return id;
  if (!/^[a-z][a-z0-9-]{1,63}@[0-9.]+$/.test(id)) {
    throw new UsageError("a template is its code hash (0x + 64 hex) or NAME@VERSION");
  }
  return (await query<{ codeHash: string }>(t, "templates", "get", [id])).codeHash;
}

interface TemplateOpts extends SignOpts {
  name: string;
  version: string;
  description: string;
  tags?: string;
  category: string;
}

const templateOptions = (c: Command) =>
  signOption(c)
    .requiredOption("--name <name>", "template name (lowercase, digits, -)")
    .requiredOption("--version <semver>", "MAJOR.MINOR.PATCH")
    .option("--description <text>", "what the contract does", "")
    .option("--tags <list>", "comma-separated tags")
    .option("--category <name>", "category", "general");

async function submitTemplate(file: string, o: TemplateOpts): Promise<void> {
  const { code, codeHash } = await bundle(file);
  const tags = o.tags
    ? o.tags
        .split(",")
        .map((t) => t.trim())
        .filter(Boolean)
    : [];
  await sendAndReport(
    o,
    target(o),
    { to: "templates", method: "submit", args: [o.name, o.version, o.description, tags, o.category, code] },
    (r) => {
      const out = r.output as { codeHash: string; proposalId: number };
      // submitting is not a vote, even by a committee member: the code is voted on explicitly
      return `submitted ${o.name}@${o.version} (${Buffer.byteLength(code)} bytes)\ncode hash ${codeHash}\napproval proposal ${out.proposalId} (0 approvals yet): committee members vote with 'custos proposal vote ${out.proposalId} --approve'`;
    },
  );
}

async function propose(
  o: SignOpts & { ttl?: string },
  t: Target,
  kind: string,
  payload: Record<string, unknown>,
) {
  await sendAndReport(
    o,
    t,
    { to: "governance", method: "propose", args: [kind, JSON.stringify(payload), ttlOption(o.ttl)] },
    (r) => {
      const v = r.output as { id: number; status: string; approvals: number; threshold: number };
      return `proposal ${v.id} opened (${kind}) with your approval: ${v.status}, ${v.approvals}/${v.threshold} approvals`;
    },
  );
}

function templateLine(t: Record<string, any>): string {
  return `${t.name}@${t.version}  ${t.status.padEnd(8)} ${t.codeHash}  ${t.category} [${(t.tags as string[]).join(",")}]  ${t.description}`;
}

function proposalLine(p: Record<string, any>): string {
  return `#${p.id} ${p.kind.padEnd(18)} ${String(p.status).padEnd(8)} ${p.approvals}/${p.threshold} approvals, ${p.rejections} against  ${JSON.stringify(p.payload)}`;
}

/** Members' names by address, from chain state, to show who voted. */
async function memberNames(t: Target): Promise<Map<string, string>> {
  const list = await query<{ address: string; name: string }[]>(t, "members", "list", []);
  return new Map(list.map((m) => [m.address, m.name]));
}

/** A proposal's trail in human words: each vote, the veto with its reason, when it closed. */
function proposalTrail(p: Record<string, any>, names: Map<string, string>): string[] {
  const who = (a: string) => (names.has(a) ? `${names.get(a)} (${a})` : a);
  const lines = (p.votes as { voter: string; approve: boolean; height: number }[]).map(
    (v) => `  ${v.approve ? "approved" : "rejected"} by ${who(v.voter)} at height ${v.height}`,
  );
  if (p.veto) lines.push(`  vetoed by ${who(p.veto.by)}: ${p.veto.reason}`);
  if (p.closedHeight !== null && p.closedHeight !== undefined)
    lines.push(`  ${p.status} at height ${p.closedHeight}`);
  else if (p.status === "expired") lines.push(`  expired ${new Date(p.expiresAt).toISOString()}`);
  return lines;
}

export function registerContractCommands(program: Command): void {
  const contract = program.command("contract").description("build, deploy and call VM contracts");
  contract
    .command("build")
    .description("bundle a TypeScript contract into the single module the chain stores")
    .argument("<file>", "contract .ts (or .js)")
    .option("--out <file>", "write the bundle here")
    .option("--json", "print one JSON document")
    .action(async (file: string, o: { out?: string; json?: boolean }) => {
      const b = await bundle(file);
      if (o.out) await writeFile(o.out, b.code);
      output(
        !!o.json,
        { codeHash: b.codeHash, bytes: Buffer.byteLength(b.code), out: o.out ?? null },
        `${file}: ${Buffer.byteLength(b.code)} bytes, code hash ${b.codeHash}${o.out ? `\nwritten to ${o.out}` : ""}`,
      );
    });
  templateOptions(
    contract
      .command("deploy")
      .description("build and submit a contract as a template; it runs once approved and instantiated")
      .argument("<file>", "contract .ts (or .js)"),
  ).action(submitTemplate);
  signOption(
    contract
      .command("call")
      .description("call a contract method in a transaction")
      .argument("<address>")
      .argument("<method>"),
  )
    .option("--args <json>", 'arguments as a JSON array; {"$n":"123"} passes a bigint')
    .option("--value <yuan>", "e-CNY to attach (yuan), paid from the sender's wallet to the contract")
    .action(async (addr: string, method: string, o: SignOpts & { args?: string; value?: string }) => {
      const t = target(o);
      const to = t.names.address(addr, "ADDRESS");
      const value = o.value === undefined ? 0n : amount(o.value, "--value");
      const args = argsOption(o.args);
      await sendAndReport(
        o,
        t,
        { to, method, args, value },
        (r) =>
          `${method} -> ${JSON.stringify(r.output)} (gas ${r.gasUsed}${value ? `, attached ${formatFen(value)} yuan` : ""})`,
      );
    });
  rpcOption(
    contract
      .command("query")
      .description("run a contract method read-only against the latest block")
      .argument("<address>")
      .argument("<method>"),
  )
    .option("--args <json>", "arguments as a JSON array")
    .action(async (addr: string, method: string, o: RpcOpts & { args?: string }) => {
      const t = target(o);
      const r = await query(t, t.names.address(addr, "ADDRESS"), method, argsOption(o.args));
      output(!!o.json, { result: r }, JSON.stringify(r));
    });
  rpcOption(
    contract
      .command("info")
      .description("an instance: template, version, status, history")
      .argument("<address>"),
  ).action(async (addr: string, o: RpcOpts) => {
    const t = target(o);
    const i = await query(t, "templates", "instance", [t.names.address(addr, "ADDRESS")]);
    const history = (i.history as { height: number; codeHash: string; proposalId: number }[]).map(
      (h) =>
        `  height ${h.height}: ${h.codeHash} ${h.proposalId === 0 ? "(instantiated)" : `(upgraded by proposal ${h.proposalId})`}`,
    );
    output(
      !!o.json,
      i,
      [
        `${i.address}: ${i.template}@${i.version} ${i.status}${i.frozenReason ? ` (frozen: ${i.frozenReason})` : ""}`,
        `code ${i.codeHash}`,
        `created by ${i.creator} at height ${i.createdHeight}`,
        `history (${history.length} code version${history.length === 1 ? "" : "s"}):`,
        ...history,
      ].join("\n"),
    );
  });

  rpcOption(
    program
      .command("events")
      .description(
        "contract events, one JSON line each: past ones with --from-height, then live ones (WebSocket)",
      )
      .option("--emitter <name>", "contract address or system contract name")
      .option("--name <event>", "event name")
      .option("--from-height <n>", "first replay the events of the blocks from this height on")
      .option("--count <n>", "exit after this many events"),
  ).action(async (o: RpcOpts & { emitter?: string; name?: string; fromHeight?: string; count?: string }) => {
    const limit = o.count === undefined ? Number.POSITIVE_INFINITY : Number(o.count);
    if (!(limit >= 1)) throw new UsageError("--count takes a positive number");
    const from = o.fromHeight === undefined ? undefined : Number(o.fromHeight);
    if (from !== undefined && !(Number.isSafeInteger(from) && from >= 0))
      throw new UsageError("--from-height takes a block height (an integer >= 0)");
    const t = target(o);
    const emitter = o.emitter === undefined ? undefined : eventEmitter(t, o.emitter);
    await checkNames(t);
    const filter = { ...(emitter ? { emitter } : {}), ...(o.name ? { name: o.name } : {}) };
    await followEvents(t, rpcUrl(o), filter, from, limit, o.apiKey ?? process.env.CUSTOS_API_KEY);
  });

  const template = program.command("template").description("the consortium's contract-template registry");
  templateOptions(
    template.command("submit").description("submit a contract template for approval").argument("<file>"),
  ).action(submitTemplate);
  rpcOption(template.command("list").description("templates, newest first, with filters"))
    .option("--name <name>")
    .option("--text <words>", "in the name or description")
    .option("--creator <address>", "an address or a demo member's name")
    .option("--tag <tag>")
    .option("--category <name>")
    .option("--status <status>", "pending | approved | rejected | vetoed")
    .action(async (o: RpcOpts & Record<string, string | undefined>) => {
      const t = target(o);
      const filter = Object.fromEntries(
        ["name", "text", "creator", "tag", "category", "status"]
          .filter((k) => o[k] !== undefined)
          .map((k) => [k, k === "creator" ? t.names.address(o[k] as string, "--creator") : o[k]]),
      );
      const list = await query<Record<string, any>[]>(t, "templates", "list", [JSON.stringify(filter)]);
      output(!!o.json, { templates: list }, list.length ? list.map(templateLine).join("\n") : "no templates");
    });
  rpcOption(
    template
      .command("show")
      .description("a template and its approval trail")
      .argument("<id>", "code hash or NAME@VERSION"),
  ).action(async (id: string, o: RpcOpts) => {
    const t = target(o);
    const tmpl = await query(t, "templates", "get", [id]);
    output(
      !!o.json,
      tmpl,
      [
        templateLine(tmpl),
        `creator ${tmpl.creator} at height ${tmpl.createdHeight}, ${tmpl.codeBytes} bytes`,
        `approval: ${proposalLine(tmpl.proposal)}`,
        ...proposalTrail(tmpl.proposal, o.json ? new Map() : await memberNames(t)),
      ].join("\n"),
    );
  });
  signOption(
    template
      .command("instantiate")
      .description("create an instance of an approved template (institutions)")
      .argument("<id>", "code hash or NAME@VERSION"),
  )
    .option("--params <json>", "parameters passed to the contract's init")
    .action(async (id: string, o: SignOpts & { params?: string }) => {
      const t = target(o);
      const codeHash = await codeHashOf(t, id);
      const params = jsonOption(o.params, "--params");
      await sendAndReport(
        o,
        t,
        {
          to: "templates",
          method: "instantiate",
          args: [codeHash, params === undefined ? null : JSON.stringify(params)],
        },
        (r) => `instance ${(r.output as { address: string }).address} of ${id}`,
      );
    });
  signOption(
    template
      .command("upgrade")
      .description("propose moving an instance to a newer approved version")
      .argument("<address>"),
  )
    .requiredOption("--to <id>", "code hash or NAME@VERSION of the approved target")
    .option("--ttl <seconds>", "how long the proposal stays open")
    .action(async (addr: string, o: SignOpts & { to: string; ttl?: string }) => {
      const t = target(o);
      await propose(o, t, "instance.upgrade", {
        address: t.names.address(addr, "ADDRESS"),
        codeHash: await codeHashOf(t, o.to),
      });
    });
  signOption(template.command("freeze").description("propose freezing an instance").argument("<address>"))
    .requiredOption("--reason <text>")
    .option("--ttl <seconds>", "how long the proposal stays open")
    .action(async (addr: string, o: SignOpts & { reason: string; ttl?: string }) => {
      const t = target(o);
      await propose(o, t, "instance.freeze", { address: t.names.address(addr, "ADDRESS"), reason: o.reason });
    });
  signOption(template.command("unfreeze").description("propose unfreezing an instance").argument("<address>"))
    .option("--ttl <seconds>", "how long the proposal stays open")
    .action(async (addr: string, o: SignOpts & { ttl?: string }) => {
      const t = target(o);
      await propose(o, t, "instance.unfreeze", { address: t.names.address(addr, "ADDRESS") });
    });

  const proposal = program.command("proposal").description("governance proposals and votes");
  rpcOption(proposal.command("list").description("proposals, newest first"))
    .option("--status <status>", "open | executed | rejected | vetoed | expired")
    .action(async (o: RpcOpts & { status?: string }) => {
      const list = await query<Record<string, any>[]>(target(o), "governance", "list", [o.status ?? null]);
      output(!!o.json, { proposals: list }, list.length ? list.map(proposalLine).join("\n") : "no proposals");
    });
  rpcOption(proposal.command("show").description("a proposal with every vote").argument("<id>")).action(
    async (id: string, o: RpcOpts) => {
      const t = target(o);
      const p = await query(t, "governance", "get", [proposalNumber(id)]);
      output(
        !!o.json,
        p,
        [
          proposalLine(p),
          `proposed by ${p.proposer} at height ${p.createdHeight}, expires ${new Date(p.expiresAt).toISOString()}`,
          ...proposalTrail(p, o.json ? new Map() : await memberNames(t)),
        ].join("\n"),
      );
    },
  );
  signOption(proposal.command("vote").description("vote on a proposal (committee)").argument("<id>"))
    .option("--approve", "vote for")
    .option("--reject", "vote against")
    .action(async (id: string, o: SignOpts & { approve?: boolean; reject?: boolean }) => {
      if (!!o.approve === !!o.reject) throw new UsageError("give exactly one of --approve and --reject");
      await sendAndReport(
        o,
        target(o),
        { to: "governance", method: "vote", args: [proposalNumber(id), !!o.approve] },
        (r) => {
          const v = r.output as { status: string; approvals: number; threshold: number };
          return `voted ${o.approve ? "for" : "against"} proposal ${id}: ${v.status}, ${v.approvals}/${v.threshold} approvals`;
        },
      );
    });
  signOption(proposal.command("veto").description("veto a template approval (regulator)").argument("<id>"))
    .requiredOption("--reason <text>")
    .action(async (id: string, o: SignOpts & { reason: string }) => {
      await sendAndReport(
        o,
        target(o),
        { to: "governance", method: "veto", args: [proposalNumber(id), o.reason] },
        () => `vetoed proposal ${id}`,
      );
    });

  validatorCommands(program);

  const member = program.command("member").description("consortium members (changes are proposals)");
  rpcOption(member.command("list").description("every current member, from chain state"))
    .option("--role <role>", "only members with this role")
    .action(async (o: RpcOpts & { role?: string }) => {
      const list = await query<Record<string, any>[]>(target(o), "members", "list", [o.role ?? null]);
      output(
        !!o.json,
        { members: list },
        list.length
          ? list
              .map(
                (m) =>
                  `${m.address}  ${String(m.name).padEnd(20)} ${(m.roles as string[]).join(",").padEnd(12)} tier ${m.ecnyTier}`,
              )
              .join("\n")
          : "no members",
      );
    });
  rpcOption(
    member
      .command("show")
      .description("a member's name, roles and wallet tier")
      .argument("<address>", "an address or a demo member's name"),
  ).action(async (addr: string, o: RpcOpts) => {
    const t = target(o);
    const m = await query(t, "members", "get", [t.names.address(addr, "ADDRESS")]);
    output(!!o.json, m, `${m.address} ${m.name}: ${(m.roles as string[]).join(", ")}, tier ${m.ecnyTier}`);
  });
  signOption(member.command("add").description("propose adding a member"))
    .requiredOption("--name <name>")
    .requiredOption("--public-key <hex>", "the member's SM2 public key (compressed hex)")
    .requiredOption(
      "--roles <list>",
      "comma-separated: committee, regulator, operator, institution, merchant, consumer, auditor",
    )
    .option("--tier <n>", "e-CNY wallet tier 1-4", "2")
    .option("--ttl <seconds>", "how long the proposal stays open")
    .action(
      async (
        o: SignOpts & { name: string; publicKey: string; roles: string; tier: string; ttl?: string },
      ) => {
        await propose(o, target(o), "member.add", {
          name: o.name,
          publicKey: o.publicKey.replace(/^0x/, "").toLowerCase(),
          roles: o.roles.split(",").map((r) => r.trim()),
          ecnyTier: Number(o.tier),
        });
      },
    );
  signOption(member.command("remove").description("propose removing a member").argument("<address>"))
    .option("--ttl <seconds>", "how long the proposal stays open")
    .action(async (addr: string, o: SignOpts & { ttl?: string }) => {
      const t = target(o);
      await propose(o, t, "member.remove", { address: t.names.address(addr, "ADDRESS") });
    });
  signOption(
    member
      .command("institution")
      .description("propose which institution a member is a customer of (for clearing)")
      .argument("<address>"),
  )
    .requiredOption("--institution <address>", "an institution member, or none")
    .option("--ttl <seconds>", "how long the proposal stays open")
    .action(async (addr: string, o: SignOpts & { institution: string; ttl?: string }) => {
      const t = target(o);
      await propose(o, t, "member.institution", {
        address: t.names.address(addr, "ADDRESS"),
        institution: o.institution === "none" ? null : t.names.address(o.institution, "--institution"),
      });
    });
  signOption(member.command("roles").description("propose replacing a member's roles").argument("<address>"))
    .requiredOption("--roles <list>", "comma-separated roles")
    .option("--ttl <seconds>", "how long the proposal stays open")
    .action(async (addr: string, o: SignOpts & { roles: string; ttl?: string }) => {
      const t = target(o);
      await propose(o, t, "member.roles", {
        address: t.names.address(addr, "ADDRESS"),
        roles: o.roles.split(",").map((r) => r.trim()),
      });
    });
}

function validatorCommands(program: Command): void {
  const validator = program.command("validator").description("the validator set (changes are proposals)");
  rpcOption(validator.command("list").description("the validators of the next block")).action(
    async (o: RpcOpts) => {
      const r = await query(target(o), "validators", "list");
      output(
        !!o.json,
        r,
        (r.validators as Record<string, any>[])
          .map((v) => `${v.index} ${v.name} ${v.publicKey} ${v.peerId} ${(v.p2p as string[]).join(",")}`)
          .join("\n"),
      );
    },
  );
  peerProposals(validator, "validator", "takes effect the block after it passes");

  const observer = program.command("observer").description("observer nodes (changes are proposals)");
  rpcOption(observer.command("list").description("the observers allowed to connect")).action(
    async (o: RpcOpts) => {
      const r = await query(target(o), "validators", "list");
      output(
        !!o.json,
        { observers: r.observers },
        (r.observers as Record<string, any>[])
          .map((v) => `${v.name} ${v.publicKey} ${v.peerId}`)
          .join("\n") || "no observers",
      );
    },
  );
  peerProposals(observer, "observer", "an auditor's read-only node");
}

/** `add` and `remove` proposals for validators or observers: the same payloads, other kinds. */
function peerProposals(group: Command, kind: "validator" | "observer", note: string): void {
  signOption(group.command("add").description(`propose adding a ${kind} (${note})`))
    .requiredOption("--name <name>")
    .requiredOption("--public-key <hex>", "its node's SM2 public key (custos init prints it)")
    .requiredOption("--peer-id <id>", "its libp2p peer id (custos init prints it)")
    .option("--p2p <multiaddr...>", "where peers dial it, e.g. /ip4/10.0.0.7/tcp/30300")
    .option("--ttl <seconds>", "how long the proposal stays open")
    .action(
      async (
        o: SignOpts & { name: string; publicKey: string; peerId: string; p2p?: string[]; ttl?: string },
      ) => {
        await propose(o, target(o), `${kind}.add`, {
          name: o.name,
          publicKey: o.publicKey.replace(/^0x/, "").toLowerCase(),
          peerId: o.peerId,
          p2p: o.p2p ?? [],
        });
      },
    );
  signOption(group.command("remove").description(`propose removing a ${kind}`).argument("<name>"))
    .option("--ttl <seconds>", "how long the proposal stays open")
    .action(async (name: string, o: SignOpts & { ttl?: string }) => {
      await propose(o, target(o), `${kind}.remove`, { name });
    });
}

function proposalNumber(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError("a proposal id is a positive whole number");
  return n;
}

/** An --emitter: a system contract's name, a contract address, or a demo member's name. */
function eventEmitter(t: Target, v: string): string {
  if (/^[a-z]+$/.test(v)) return v; // ecny, templates, governance, members, validators
  return t.names.address(v, "--emitter");
}

/**
 * Prints matching events as JSON lines: with `from`, first those of the committed blocks from
 * that height on, then live ones. The live subscription is opened first and buffers what
 * arrives while the past is read, so no event falls between the two and none is printed twice
 * (a live event at or below the last replayed height was replayed already).
 */
async function followEvents(
  t: Target,
  url: string,
  filter: { emitter?: string; name?: string },
  from: number | undefined,
  limit: number,
  apiKey: string | undefined,
): Promise<void> {
  let seen = 0;
  let replayedTo = -1;
  let replaying = from !== undefined;
  const buffered: Record<string, unknown>[] = [];
  let finish: (err?: Error) => void = () => {};
  const finished = new Promise<void>((resolve, reject) => {
    finish = (err) => (err ? reject(err) : resolve());
  });
  finished.catch(() => {}); // awaited below; a hang-up during the replay must not go unhandled
  const print = (e: Record<string, unknown>) => {
    if (seen >= limit) return;
    process.stdout.write(`${JSON.stringify(e)}\n`);
    if (++seen >= limit) finish();
  };
  const sub = await subscribe(
    url,
    "events",
    filter,
    (e) => {
      if (replaying) buffered.push(e);
      else if (Number(e.blockHeight) > replayedTo) print(e);
    },
    { ...(apiKey ? { apiKey } : {}), onClose: (err) => finish(err) },
  );
  try {
    if (from !== undefined) {
      for (let next = from; seen < limit; ) {
        const page = await t.client.getEvents(next, filter);
        for (const e of page.events) print(e);
        replayedTo = page.toHeight;
        if (page.toHeight >= page.head) break;
        next = page.toHeight + 1;
      }
      replaying = false;
      for (const e of buffered.splice(0)) if (Number(e.blockHeight) > replayedTo) print(e);
    }
    await finished;
  } finally {
    sub.close();
  }
}
