import {
  DecodeError,
  decode,
  encode,
  fieldAt,
  readArray,
  readNullable,
  readString,
  readUint,
} from "@custos/codec";
import { type Address, sm3 } from "@custos/crypto";
import { ADDRESS_RE, HASH_RE } from "@custos/types";
import { toHex } from "@custos/utils";
import { VM_LIMITS } from "@custos/vm";
import { stateKey } from "../state/keys.js";
import type { StateReader } from "../state/overlay.js";
import { type ContractContext, ContractError, GAS, parseArgs, type SystemContract } from "./contract.js";
import { requireRole } from "./members.js";
import { type KindHandler, openProposal, payloadString, proposalJson, readProposal } from "./proposals.js";

export const TEMPLATES = "templates";

export type TemplateStatus = "pending" | "approved" | "rejected" | "vetoed";

export interface Template {
  codeHash: string;
  name: string;
  version: string;
  description: string;
  tags: string[];
  category: string;
  creator: Address;
  createdHeight: number;
  createdTime: number;
  status: TemplateStatus;
  proposalId: number;
}

export interface Instance {
  address: Address;
  codeHash: string;
  template: string;
  creator: Address;
  createdHeight: number;
  createdTime: number;
  status: "active" | "frozen";
  frozenReason: string | null;
  params: unknown;
  /** Every code change: [height, codeHash, proposalId (0 for the instantiation)]. */
  history: [number, string, number][];
}

const NAME_RE = /^[a-z][a-z0-9-]{1,63}$/;
const SEMVER_RE = /^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$/;
const TAG_RE = /^[a-z0-9][a-z0-9-]{0,31}$/;

const tKey = (hash: string) => `t:${hash}`;
/** A template's audit subject: `template:` + its code hash without 0x. */
const templateSubject = (codeHash: string) => `template:${codeHash.slice(2)}`;
const codeKey = (hash: string) => `c:${hash}`;
const nameKey = (name: string, version: string) => `n:${name}@${version}`;
const iKey = (a: Address) => `i:${a}`;
const listKey = (n: number) => `l:${n.toString().padStart(10, "0")}`;
const instListKey = (n: number) => `il:${n.toString().padStart(10, "0")}`;

function encodeTemplate(t: Template): Uint8Array {
  return encode([
    t.name,
    t.version,
    t.description,
    t.tags,
    t.category,
    t.creator,
    t.createdHeight,
    t.createdTime,
    t.status,
    t.proposalId,
  ]);
}

const TIME = Number.MAX_SAFE_INTEGER;
const TEMPLATE_STATUSES: readonly TemplateStatus[] = ["pending", "approved", "rejected", "vetoed"];

function oneOf<T extends string>(v: unknown, c: ReturnType<typeof fieldAt>, allowed: readonly T[]): T {
  const s = readString(v, c, { max: 16 });
  if (!(allowed as readonly string[]).includes(s))
    throw new DecodeError("DECODE_OUT_OF_RANGE", c.structure, c.field, `unknown value ${s}`);
  return s as T;
}

/** The stored template record, checked field by field. */
function decodeTemplate(codeHash: string, raw: Uint8Array): Template {
  const S = "Template";
  const f = (name: string) => fieldAt(S, name);
  const a = readArray(decode(raw, S, 1 << 16), f(""), 10);
  return {
    codeHash,
    name: readString(a[0], f("name"), { max: 64, pattern: NAME_RE }),
    version: readString(a[1], f("version"), { max: 32, pattern: SEMVER_RE }),
    description: readString(a[2], f("description"), { max: 1024 }),
    tags: readArray(a[3], f("tags"), { min: 0, max: 16 }).map((t, i) =>
      readString(t, f(`tags[${i}]`), { max: 32, pattern: TAG_RE }),
    ),
    category: readString(a[4], f("category"), { max: 64 }),
    creator: readString(a[5], f("creator"), { max: 42, pattern: ADDRESS_RE }) as Address,
    createdHeight: readUint(a[6], f("createdHeight"), TIME),
    createdTime: readUint(a[7], f("createdTime"), TIME),
    status: oneOf(a[8], f("status"), TEMPLATE_STATUSES),
    proposalId: readUint(a[9], f("proposalId"), TIME),
  };
}

function encodeInstance(i: Instance): Uint8Array {
  return encode([
    i.codeHash,
    i.template,
    i.creator,
    i.createdHeight,
    i.createdTime,
    i.status,
    i.frozenReason,
    JSON.stringify(i.params ?? null),
    i.history,
  ]);
}

/** The stored instance record, checked field by field. */
function decodeInstance(address: Address, raw: Uint8Array): Instance {
  const S = "Instance";
  const f = (name: string) => fieldAt(S, name);
  const a = readArray(decode(raw, S, 1 << 20), f(""), 9);
  return {
    address,
    codeHash: readString(a[0], f("codeHash"), { max: 66, pattern: HASH_RE }),
    template: readString(a[1], f("template"), { max: 128 }),
    creator: readString(a[2], f("creator"), { max: 42, pattern: ADDRESS_RE }) as Address,
    createdHeight: readUint(a[3], f("createdHeight"), TIME),
    createdTime: readUint(a[4], f("createdTime"), TIME),
    status: oneOf(a[5], f("status"), ["active", "frozen"] as const),
    frozenReason: readNullable(a[6], (v) => readString(v, f("frozenReason"), { max: 256 })),
    params: JSON.parse(readString(a[7], f("params"), { max: 1 << 20 })),
    history: readArray(a[8], f("history")).map((h, i) => {
      const t = readArray(h, f(`history[${i}]`), 3);
      return [
        readUint(t[0], f(`history[${i}].height`), TIME),
        readString(t[1], f(`history[${i}].codeHash`), { max: 66, pattern: HASH_RE }),
        readUint(t[2], f(`history[${i}].proposalId`), TIME),
      ] as [number, string, number];
    }),
  };
}

export async function readTemplate(ctx: ContractContext, codeHash: string): Promise<Template | undefined> {
  const raw = await ctx.as(TEMPLATES).get(tKey(codeHash));
  return raw === undefined ? undefined : decodeTemplate(codeHash, raw);
}

export async function readCode(ctx: ContractContext, codeHash: string): Promise<string> {
  ctx.gasUsed += GAS.read;
  return readCodeUnmetered(ctx.state, codeHash);
}

/** The code without a gas charge: for a caller that charges the read itself (the executor's cache). */
export async function readCodeUnmetered(state: StateReader, codeHash: string): Promise<string> {
  const raw = await state.get(stateKey(TEMPLATES, codeKey(codeHash)));
  if (raw === undefined) throw new ContractError("TEMPLATE_NOT_FOUND", `no code with hash ${codeHash}`);
  return Buffer.from(raw).toString("utf8");
}

export async function readInstance(ctx: ContractContext, address: Address): Promise<Instance | undefined> {
  const raw = await ctx.as(TEMPLATES).get(iKey(address));
  return raw === undefined ? undefined : decodeInstance(address, raw);
}

async function templateOrThrow(ctx: ContractContext, codeHash: string): Promise<Template> {
  const t = await readTemplate(ctx, codeHash);
  if (t === undefined)
    throw new ContractError("TEMPLATE_NOT_FOUND", `no template with code hash ${codeHash}`);
  return t;
}

async function approvedOrThrow(ctx: ContractContext, codeHash: string): Promise<Template> {
  const t = await templateOrThrow(ctx, codeHash);
  if (t.status !== "approved") {
    throw new ContractError(
      "TEMPLATE_NOT_APPROVED",
      `template ${t.name}@${t.version} (${codeHash}) is ${t.status}; it needs an approved proposal (proposal ${t.proposalId})`,
      { status: t.status, proposalId: t.proposalId },
    );
  }
  return t;
}

async function instanceOrThrow(ctx: ContractContext, address: Address): Promise<Instance> {
  const i = await readInstance(ctx, address);
  if (i === undefined) throw new ContractError("CONTRACT_NOT_FOUND", `no contract instance at ${address}`);
  return i;
}

function saveTemplate(ctx: ContractContext, t: Template): void {
  ctx.as(TEMPLATES).set(tKey(t.codeHash), encodeTemplate(t));
}

function saveInstance(ctx: ContractContext, i: Instance): void {
  ctx.as(TEMPLATES).set(iKey(i.address), encodeInstance(i));
}

function semverGreater(a: string, b: string): boolean {
  const x = a.split(".").map(Number);
  const y = b.split(".").map(Number);
  for (let k = 0; k < 3; k++)
    if ((x[k] as number) !== (y[k] as number)) return (x[k] as number) > (y[k] as number);
  return false;
}

/** An instance's address: the last 20 bytes of SM3("custos:instance" || tx hash). */
export function instanceAddress(txHash: Uint8Array): Address {
  return `0x${toHex(sm3(new TextEncoder().encode("custos:instance"), txHash).subarray(12))}` as Address;
}

function str(
  args: unknown[],
  i: number,
  where: string,
  field: string,
  max: number,
  pattern?: RegExp,
): string {
  return parseArgs(where, () =>
    readString(args[i], fieldAt(where, field), { max, ...(pattern ? { pattern } : {}) }),
  );
}

function jsonArg(v: unknown, where: string, field: string): unknown {
  if (v === undefined || v === null) return null;
  const text = parseArgs(where, () => readString(v, fieldAt(where, field), { max: 16 * 1024 }));
  try {
    return JSON.parse(text);
  } catch {
    throw new ContractError("INVALID_ARGUMENTS", `${where}: ${field} is not JSON`);
  }
}

/** The proposal kinds the template registry executes. */
export const templateKindHandlers: Record<string, KindHandler> = {
  "template.approve": {
    internal: true,
    vetoable: true,
    async validate() {},
    async closed(ctx, p, status) {
      const t = await templateOrThrow(ctx, payloadString(p, "codeHash", HASH_RE));
      t.status = status;
      saveTemplate(ctx, t);
      ctx
        .as(TEMPLATES)
        .emit(
          status === "vetoed" ? "TemplateVetoed" : "TemplateRejected",
          [t.codeHash, t.name, t.version],
          [templateSubject(t.codeHash)],
        );
    },
    async execute(ctx, p) {
      const t = await templateOrThrow(ctx, payloadString(p, "codeHash", HASH_RE));
      t.status = "approved";
      saveTemplate(ctx, t);
      ctx
        .as(TEMPLATES)
        .emit("TemplateApproved", [t.codeHash, t.name, t.version], [templateSubject(t.codeHash)]);
    },
  },
  "instance.upgrade": {
    async validate(ctx, p) {
      const i = await instanceOrThrow(ctx, payloadString(p, "address", ADDRESS_RE) as Address);
      const target = await approvedOrThrow(ctx, payloadString(p, "codeHash", HASH_RE));
      const current = await templateOrThrow(ctx, i.codeHash);
      if (target.name !== current.name) {
        throw new ContractError(
          "UPGRADE_OTHER_TEMPLATE",
          `instance ${i.address} runs ${current.name}; ${target.codeHash} is ${target.name}`,
        );
      }
      if (!semverGreater(target.version, current.version)) {
        throw new ContractError(
          "UPGRADE_NOT_NEWER",
          `${target.name}@${target.version} is not newer than the running ${current.version}`,
        );
      }
    },
    async execute(ctx, p, proposalId) {
      await this.validate(ctx, p);
      const i = await instanceOrThrow(ctx, p.address as Address);
      i.codeHash = p.codeHash as string;
      i.history.push([ctx.env.height, i.codeHash, proposalId]);
      saveInstance(ctx, i);
      ctx.as(TEMPLATES).emit("InstanceUpgraded", [i.address, i.codeHash, proposalId], [i.address]);
    },
  },
  "instance.freeze": {
    async validate(ctx, p) {
      const i = await instanceOrThrow(ctx, payloadString(p, "address", ADDRESS_RE) as Address);
      payloadString(p, "reason", /^.{1,256}$/s);
      if (i.status === "frozen") throw new ContractError("CONTRACT_FROZEN", `${i.address} is already frozen`);
    },
    async execute(ctx, p) {
      await this.validate(ctx, p);
      const i = await instanceOrThrow(ctx, p.address as Address);
      i.status = "frozen";
      i.frozenReason = p.reason as string;
      saveInstance(ctx, i);
      ctx.as(TEMPLATES).emit("InstanceFrozen", [i.address, i.frozenReason], [i.address]);
    },
  },
  "instance.unfreeze": {
    async validate(ctx, p) {
      const i = await instanceOrThrow(ctx, payloadString(p, "address", ADDRESS_RE) as Address);
      if (i.status !== "frozen") throw new ContractError("CONTRACT_NOT_FROZEN", `${i.address} is not frozen`);
    },
    async execute(ctx, p) {
      await this.validate(ctx, p);
      const i = await instanceOrThrow(ctx, p.address as Address);
      i.status = "active";
      i.frozenReason = null;
      saveInstance(ctx, i);
      ctx.as(TEMPLATES).emit("InstanceUnfrozen", [i.address], [i.address]);
    },
  },
};

function templateJson(t: Template): Record<string, unknown> {
  return { ...t };
}

function instanceJson(i: Instance): Record<string, unknown> {
  return {
    ...i,
    history: i.history.map(([height, codeHash, proposalId]) => ({ height, codeHash, proposalId })),
  };
}

/**
 * The contract-template registry and its instances. submit stores the code with its metadata
 * and opens an approval proposal bound to the code's SM3 hash; only an approved template can be
 * instantiated (by an institution) or upgraded to (by proposal); instances can be frozen.
 */
export const templatesContract: SystemContract = {
  name: TEMPLATES,
  methods: {
    /** submit(name, version, description, tags, category, code) -> { codeHash, proposalId } */
    submit: async (ctx, args) => {
      const W = "templates.submit";
      const name = str(args, 0, W, "name", 64, NAME_RE);
      const version = str(args, 1, W, "version", 20, SEMVER_RE);
      const description = str(args, 2, W, "description", 1024);
      const tags = parseArgs(W, () =>
        readArray(args[3], fieldAt(W, "tags")).map((t) =>
          readString(t, fieldAt(W, "tags"), { max: 32, pattern: TAG_RE }),
        ),
      );
      if (tags.length > 16) throw new ContractError("INVALID_ARGUMENTS", `${W}: at most 16 tags`);
      const category = str(args, 4, W, "category", 32, TAG_RE);
      const code = str(args, 5, W, "code", VM_LIMITS.maxCodeBytes);
      const codeBytes = new TextEncoder().encode(code);
      const codeHash = `0x${toHex(sm3(codeBytes))}`;
      const t = ctx.as(TEMPLATES);
      const existing = await readTemplate(ctx, codeHash);
      if (existing !== undefined) {
        // the same code again: allowed only after its approval failed (rejected, vetoed, expired)
        const p = await readProposal(ctx, existing.proposalId);
        const live =
          existing.status === "approved" ||
          (existing.status === "pending" && ctx.env.timestamp <= p.expiresAt);
        if (live || existing.name !== name || existing.version !== version) {
          throw new ContractError(
            "TEMPLATE_EXISTS",
            `this code is template ${existing.name}@${existing.version} (${existing.status}) already`,
          );
        }
        const proposalId = await openProposal(ctx, "template.approve", { codeHash, name, version });
        saveTemplate(ctx, {
          ...existing,
          description,
          tags: [...new Set(tags)],
          category,
          status: "pending",
          proposalId,
        });
        t.emit(
          "TemplateSubmitted",
          [codeHash, name, version, ctx.env.sender, proposalId],
          [templateSubject(codeHash)],
        );
        return { codeHash, proposalId };
      }
      const prior = await t.get(nameKey(name, version));
      if (prior !== undefined) {
        throw new ContractError(
          "TEMPLATE_VERSION_EXISTS",
          `${name}@${version} exists already; bump the version`,
        );
      }
      const proposalId = await openProposal(ctx, "template.approve", { codeHash, name, version });
      saveTemplate(ctx, {
        codeHash,
        name,
        version,
        description,
        tags: [...new Set(tags)],
        category,
        creator: ctx.env.sender,
        createdHeight: ctx.env.height,
        createdTime: ctx.env.timestamp,
        status: "pending",
        proposalId,
      });
      t.set(codeKey(codeHash), codeBytes);
      t.set(nameKey(name, version), new TextEncoder().encode(codeHash));
      const n = Number(await t.getAmount("count"));
      t.set(listKey(n), new TextEncoder().encode(codeHash));
      t.setAmount("count", BigInt(n + 1));
      t.emit(
        "TemplateSubmitted",
        [codeHash, name, version, ctx.env.sender, proposalId],
        [templateSubject(codeHash)],
      );
      return { codeHash, proposalId };
    },

    /** instantiate(codeHash, paramsJson?) -> { address }: institutions only. */
    instantiate: async (ctx, args) => {
      const W = "templates.instantiate";
      const codeHash = str(args, 0, W, "codeHash", 66, HASH_RE);
      const params = jsonArg(args[1], W, "params");
      await requireRole(ctx, "institution", "instantiating a contract template");
      const tmpl = await approvedOrThrow(ctx, codeHash);
      const address = instanceAddress(ctx.env.txHash);
      const instance: Instance = {
        address,
        codeHash,
        template: tmpl.name,
        creator: ctx.env.sender,
        createdHeight: ctx.env.height,
        createdTime: ctx.env.timestamp,
        status: "active",
        frozenReason: null,
        params,
        history: [[ctx.env.height, codeHash, 0]],
      };
      saveInstance(ctx, instance);
      const t = ctx.as(TEMPLATES);
      const n = Number(await t.getAmount("instances"));
      t.set(instListKey(n), new TextEncoder().encode(address));
      t.setAmount("instances", BigInt(n + 1));
      if (ctx.env.initContract === undefined)
        throw new ContractError("VM_UNAVAILABLE", "this executor runs no VM");
      await ctx.env.initContract(ctx, address, await readCode(ctx, codeHash), params);
      t.emit(
        "InstanceCreated",
        [address, codeHash, tmpl.name, tmpl.version, ctx.env.sender],
        [address, templateSubject(codeHash)],
      );
      return { address };
    },
  },
  queries: {
    /** get(codeHash | name@version): the template with its approval trail. */
    get: async (ctx, args) => {
      const W = "templates.get";
      const id = str(args, 0, W, "id", 96);
      let codeHash = id;
      if (!HASH_RE.test(id)) {
        const raw = await ctx.as(TEMPLATES).get(`n:${id}`);
        if (raw === undefined) throw new ContractError("TEMPLATE_NOT_FOUND", `no template ${id}`);
        codeHash = Buffer.from(raw).toString("utf8");
      }
      const t = await templateOrThrow(ctx, codeHash);
      const p = await readProposal(ctx, t.proposalId);
      const code = await readCode(ctx, codeHash);
      return {
        ...templateJson(t),
        codeBytes: Buffer.byteLength(code),
        proposal: proposalJson(p, ctx.env.timestamp, ctx.env.genesis.governance.threshold),
      };
    },
    code: async (ctx, args) => ({
      code: await readCode(ctx, str(args, 0, "templates.code", "codeHash", 66, HASH_RE)),
    }),
    /** list(filter?): filter is JSON {name, text, creator, tag, category, status}. */
    list: async (ctx, args) => {
      const f = (jsonArg(args[0], "templates.list", "filter") ?? {}) as Record<string, unknown>;
      const t = ctx.as(TEMPLATES);
      const n = Number(await t.getAmount("count"));
      const out: Record<string, unknown>[] = [];
      const text = typeof f.text === "string" ? f.text.toLowerCase() : undefined;
      for (let k = n - 1; k >= 0 && out.length < 500; k--) {
        const raw = await t.get(listKey(k));
        if (raw === undefined) continue;
        const tmpl = await templateOrThrow(ctx, Buffer.from(raw).toString("utf8"));
        if (typeof f.name === "string" && tmpl.name !== f.name) continue;
        if (typeof f.creator === "string" && tmpl.creator !== f.creator) continue;
        if (typeof f.tag === "string" && !tmpl.tags.includes(f.tag)) continue;
        if (typeof f.category === "string" && tmpl.category !== f.category) continue;
        if (typeof f.status === "string" && tmpl.status !== f.status) continue;
        if (text !== undefined && !`${tmpl.name} ${tmpl.description}`.toLowerCase().includes(text)) continue;
        out.push(templateJson(tmpl));
      }
      return out;
    },
    instance: async (ctx, args) => {
      const address = str(args, 0, "templates.instance", "address", 42, ADDRESS_RE) as Address;
      const i = await instanceOrThrow(ctx, address);
      const tmpl = await templateOrThrow(ctx, i.codeHash);
      return { ...instanceJson(i), version: tmpl.version };
    },
    /** instances(filter?): JSON {template, creator, status}. */
    instances: async (ctx, args) => {
      const f = (jsonArg(args[0], "templates.instances", "filter") ?? {}) as Record<string, unknown>;
      const t = ctx.as(TEMPLATES);
      const n = Number(await t.getAmount("instances"));
      const out: Record<string, unknown>[] = [];
      for (let k = n - 1; k >= 0 && out.length < 500; k--) {
        const raw = await t.get(instListKey(k));
        if (raw === undefined) continue;
        const i = await instanceOrThrow(ctx, Buffer.from(raw).toString("utf8") as Address);
        if (typeof f.template === "string" && i.template !== f.template) continue;
        if (typeof f.creator === "string" && i.creator !== f.creator) continue;
        if (typeof f.status === "string" && i.status !== f.status) continue;
        out.push(instanceJson(i));
      }
      return out;
    },
  },
};
