import { addressFromPublicKey } from "@custos/crypto";
import {
  decodeValidatorSet,
  encodeValidatorSet,
  type Genesis,
  type GenesisValidator,
  LIMITS,
  MULTIADDR_RE,
  NAME_RE,
  OBSERVER_SET_KEY,
  PEER_ID_RE,
  VALIDATOR_SET_KEY,
  VALIDATORS_CONTRACT,
  validatorSetHash,
} from "@custos/types";
import { fromHex, toHex } from "@custos/utils";
import type { SetTracker } from "../ledger/ledger.js";
import { type ContractContext, ContractError, type SystemContract } from "./contract.js";
import type { KindHandler } from "./proposals.js";

export const VALIDATORS = VALIDATORS_CONTRACT;
const SET = "set";
const OBSERVERS = "observers";

// Where the sets live and how they are encoded are chain rules, in @custos/types (validatorSet.ts).
export { decodeValidatorSet, encodeValidatorSet, OBSERVER_SET_KEY, VALIDATOR_SET_KEY };

/** The set that validates the next block: the stored one, or genesis's until the first change. */
export function validatorSetOf(raw: Uint8Array | undefined, genesis: Genesis): GenesisValidator[] {
  return raw === undefined ? genesis.consensus.validators : decodeValidatorSet(raw);
}

/** The observers allowed to connect: the stored list, or genesis's until the first change. */
export function observerSetOf(raw: Uint8Array | undefined, genesis: Genesis): GenesisValidator[] {
  return raw === undefined ? genesis.observers : decodeValidatorSet(raw);
}

export function setHash(set: readonly GenesisValidator[]): Uint8Array {
  return validatorSetHash(set.map((v) => v.publicKey));
}

/**
 * How the ledger's head follows the validator and observer sets: read from the state at open,
 * and from each block's writes after it (a change takes effect from the next block).
 */
export function validatorSetTracker(genesis: Genesis): SetTracker {
  return {
    async load(read) {
      const validators = validatorSetOf(await read(VALIDATOR_SET_KEY), genesis);
      const observers = observerSetOf(await read(OBSERVER_SET_KEY), genesis);
      return { validators, validatorSetHash: setHash(validators), observers };
    },
    after(prev, writes) {
      const changed = writes.get(toHex(VALIDATOR_SET_KEY));
      const observersChanged = writes.get(toHex(OBSERVER_SET_KEY));
      const validators = changed?.value != null ? decodeValidatorSet(changed.value) : prev.validators;
      return {
        validators,
        validatorSetHash: changed ? setHash(validators) : prev.validatorSetHash,
        observers:
          observersChanged?.value != null ? decodeValidatorSet(observersChanged.value) : prev.observers,
      };
    },
  };
}

async function current(ctx: ContractContext): Promise<GenesisValidator[]> {
  return validatorSetOf(await ctx.as(VALIDATORS).get(SET), ctx.env.genesis);
}

async function currentObservers(ctx: ContractContext): Promise<GenesisValidator[]> {
  return observerSetOf(await ctx.as(VALIDATORS).get(OBSERVERS), ctx.env.genesis);
}

function parseNew(p: Record<string, unknown>): GenesisValidator {
  if (typeof p.name !== "string" || !NAME_RE.test(p.name)) {
    throw new ContractError("INVALID_ARGUMENTS", `payload.name must match ${NAME_RE}`);
  }
  if (typeof p.publicKey !== "string" || !/^0[23][0-9a-f]{64}$/.test(p.publicKey)) {
    throw new ContractError(
      "INVALID_ARGUMENTS",
      "payload.publicKey must be a compressed SM2 public key in hex",
    );
  }
  const publicKey = fromHex(p.publicKey);
  try {
    addressFromPublicKey(publicKey);
  } catch {
    throw new ContractError("INVALID_ARGUMENTS", "payload.publicKey is not a point on the SM2 curve");
  }
  if (typeof p.peerId !== "string" || !PEER_ID_RE.test(p.peerId)) {
    throw new ContractError(
      "INVALID_ARGUMENTS",
      "payload.peerId must be an Ed25519 libp2p peer id (12D3KooW...)",
    );
  }
  const p2p = p.p2p ?? [];
  if (
    !Array.isArray(p2p) ||
    p2p.length > 8 ||
    p2p.some((a) => typeof a !== "string" || !MULTIADDR_RE.test(a))
  ) {
    throw new ContractError(
      "INVALID_ARGUMENTS",
      "payload.p2p must list up to 8 multiaddrs like /ip4/10.0.0.5/tcp/30300",
    );
  }
  return { name: p.name, publicKey, peerId: p.peerId, p2p: p2p as string[] };
}

type Which = "validator" | "observer";

/** Checks that a new node's name, key and peer id are used by no validator and no observer. */
async function checkAdd(
  ctx: ContractContext,
  v: GenesisValidator,
  which: Which,
): Promise<GenesisValidator[]> {
  const validators = await current(ctx);
  const observers = await currentObservers(ctx);
  const set = which === "validator" ? validators : observers;
  const max = which === "validator" ? LIMITS.maxValidators : 64;
  if (set.length >= max)
    throw new ContractError("PEER_SET_FULL", `there are already ${set.length} ${which}s`);
  const clash = [...validators, ...observers].find(
    (x) => x.name === v.name || x.peerId === v.peerId || toHex(x.publicKey) === toHex(v.publicKey),
  );
  if (clash) throw new ContractError("PEER_EXISTS", `${clash.name} already has that name, key or peer id`);
  return set;
}

async function checkRemove(
  ctx: ContractContext,
  p: Record<string, unknown>,
  which: Which,
): Promise<GenesisValidator[]> {
  const set = which === "validator" ? await current(ctx) : await currentObservers(ctx);
  if (!set.some((v) => v.name === p.name)) {
    throw new ContractError("PEER_NOT_FOUND", `no ${which} named ${String(p.name)}`);
  }
  if (which === "validator" && set.length === 1) {
    throw new ContractError("VALIDATOR_SET_EMPTY", "the last validator cannot be removed");
  }
  return set;
}

function store(ctx: ContractContext, set: GenesisValidator[], which: Which): void {
  ctx.as(VALIDATORS).set(which === "validator" ? SET : OBSERVERS, encodeValidatorSet(set));
}

function handlers(which: Which): Record<string, KindHandler> {
  const event = which === "validator" ? "Validator" : "Observer";
  return {
    [`${which}.add`]: {
      async validate(ctx, p) {
        await checkAdd(ctx, parseNew(p), which);
      },
      async execute(ctx, p) {
        const v = parseNew(p);
        const set = await checkAdd(ctx, v, which);
        store(ctx, [...set, v], which);
        ctx
          .as(VALIDATORS)
          .emit(`${event}Added`, [v.name, v.publicKey, v.peerId, ctx.env.height + 1], [`${which}:${v.name}`]);
      },
    },
    [`${which}.remove`]: {
      async validate(ctx, p) {
        await checkRemove(ctx, p, which);
      },
      async execute(ctx, p) {
        const set = await checkRemove(ctx, p, which);
        store(
          ctx,
          set.filter((v) => v.name !== p.name),
          which,
        );
        ctx
          .as(VALIDATORS)
          .emit(`${event}Removed`, [p.name, ctx.env.height + 1], [`${which}:${String(p.name)}`]);
      },
    },
  };
}

/**
 * Validator- and observer-set changes, by proposal. The block whose vote passes one writes the
 * new set; a new validator set validates the blocks from the next height on (the header's
 * validatorSetHash says which set signed it), and every node updates its consensus peers and
 * connection gater when it stores that block.
 */
export const validatorKindHandlers: Record<string, KindHandler> = {
  ...handlers("validator"),
  ...handlers("observer"),
};

export const validatorsContract: SystemContract = {
  name: VALIDATORS,
  methods: {},
  queries: {
    /** list(): the validators of the next block (in index order), their set hash, and the observers. */
    list: async (ctx) => {
      const set = await current(ctx);
      const peer = (v: GenesisValidator) => ({
        name: v.name,
        publicKey: toHex(v.publicKey),
        peerId: v.peerId,
        p2p: v.p2p,
      });
      return {
        validators: set.map((v, index) => ({ index, ...peer(v) })),
        setHash: `0x${toHex(setHash(set))}`,
        observers: (await currentObservers(ctx)).map(peer),
      };
    },
  },
};
