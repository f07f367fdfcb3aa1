import { fileURLToPath } from "node:url";
import { decode, encode } from "@custos/codec";
import { bundleContract } from "@custos/contract-sdk/harness";
import { auditHeadKey, ECNY_SUPPLY_KEY, ecnyBalanceKey, type Role, stateKey } from "@custos/types";
import { nullLogger, toHex } from "@custos/utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Executor } from "../../src/execution/executor.js";
import { balanceKeyOf } from "../../src/system/ecny.js";
import { CertifiedChain } from "../certifiedChain.js";
import { tempDir } from "../helpers.js";

/** The complaints system contract (行业举报) and member.institution, on a real chain. */
const COUNTER = fileURLToPath(new URL("../../../contracts/sdk/examples/counter.ts", import.meta.url));
let chain: CertifiedChain;
let cleanup: () => Promise<void>;
let programme: string;
const hash = (c: string) => `0x${c.repeat(64)}`;

async function call(from: string, method: string, args: unknown[], to = "complaints") {
  const [r] = await chain.block([{ from, to, method, args }]);
  return {
    ...(r as NonNullable<typeof r>),
    out: r?.output.byteLength ? (decode(r.output, "o", 1 << 20) as any) : null,
  };
}

async function query(method: string, args: unknown[], to = "complaints") {
  const head = chain.ledger.head;
  return new Executor(chain.genesis, nullLogger).query(chain.ledger, to, method, encode(args), {
    height: head.height,
    timestamp: head.header.timestamp,
  }) as Promise<any>;
}

beforeAll(async () => {
  const t = await tempDir("custos-complaints-");
  cleanup = t.cleanup;
  const members: [string, Role][] = [
    ["operator", "operator"],
    ["regulator", "regulator"],
    ["committee-1", "committee"],
    ["bank", "institution"],
    ["merchant", "merchant"],
    ["consumer-1", "consumer"],
    ["consumer-2", "consumer"],
  ];
  chain = await CertifiedChain.create(t.dir, { validators: 1, members });
  const { code, codeHash } = await bundleContract(COUNTER);
  const sub = await chain.send({
    from: "bank",
    to: "templates",
    method: "submit",
    args: ["counter", "1.0.0", "", [], "demo", code],
  });
  await chain.send({
    from: "committee-1",
    to: "governance",
    method: "vote",
    args: [sub.out.proposalId, true],
  });
  programme = (
    await chain.send({ from: "bank", to: "templates", method: "instantiate", args: [codeHash, null] })
  ).out.address;
}, 60_000);

afterAll(async () => {
  await chain?.ledger.close();
  await cleanup?.();
});

describe("complaints", () => {
  it("a consumer files one about a programme: only its details' hash goes on chain, as an event about both", async () => {
    expect((await call("merchant", "file", [programme, "other", hash("1")])).errorCode).toBe(
      "NOT_AUTHORIZED",
    );
    expect((await call("consumer-1", "file", [chain.address("bank"), "other", hash("1")])).errorCode).toBe(
      "PROGRAMME_NOT_FOUND",
    );
    const badCategory = await call("consumer-1", "file", [programme, "rude-staff", hash("1")]);
    expect([badCategory.errorCode, badCategory.errorMessage]).toEqual([
      "INVALID_ARGUMENTS",
      expect.stringContaining("category must be one of refund-refused"),
    ]);
    expect((await call("consumer-1", "file", [programme, "other", "details in clear"])).errorCode).toBe(
      "INVALID_ARGUMENTS",
    );
    const r = await call("consumer-1", "file", [programme, "refund-refused", hash("a")]);
    expect(r.out).toEqual(new Map([["id", 1]]));
    const ev = r.events[0];
    expect([ev?.emitter, ev?.name, ev?.topics]).toEqual([
      "complaints",
      "ComplaintFiled",
      [programme, chain.address("consumer-1"), "complaint:1"],
    ]);
    // it extends the programme's audit chain: the programme's head in state is this event's
    expect(toHex(chain.ledger.getSync(auditHeadKey(programme)) as Uint8Array)).toBe(
      toHex(ev?.heads[0] as Uint8Array),
    );
  });

  it("the regulator classifies (again, until handled), then records the handling, which closes it", async () => {
    expect((await call("consumer-1", "classify", [1, "valid", "minor"])).errorCode).toBe("NOT_AUTHORIZED");
    expect((await call("regulator", "handle", [1, "mediated", hash("b")])).errorCode).toBe(
      "COMPLAINT_NOT_CLASSIFIED",
    );
    expect((await call("regulator", "classify", [9, "valid", "minor"])).errorCode).toBe(
      "COMPLAINT_NOT_FOUND",
    );
    expect((await call("regulator", "classify", [1, "valid", "catastrophic"])).errorCode).toBe(
      "INVALID_ARGUMENTS",
    );
    await call("regulator", "classify", [1, "valid", "minor"]);
    const again = await call("regulator", "classify", [1, "partly-valid", "serious"]);
    expect(again.errorCode).toBeNull();
    const handled = await call("regulator", "handle", [1, "refund-ordered", hash("c")]);
    expect(handled.errorCode).toBeNull();
    expect(await query("get", [1])).toMatchObject({
      status: "handled",
      classification: "partly-valid",
      severity: "serious",
      outcome: "refund-ordered",
      noteHash: hash("c"),
      detailsHash: hash("a"),
      consumer: chain.address("consumer-1"),
    });
    expect((await call("regulator", "classify", [1, "invalid", "minor"])).errorCode).toBe("COMPLAINT_CLOSED");
    expect((await call("regulator", "handle", [1, "dismissed", hash("d")])).errorCode).toBe(
      "COMPLAINT_CLOSED",
    );
  });

  it("lists by programme, consumer and status, newest first; a consumer files at most 20 a day", async () => {
    for (let i = 0; i < 19; i++)
      await chain.block(
        [{ from: "consumer-2", to: "complaints", method: "file", args: [programme, "other", hash("e")] }],
        { stepMs: 1000 },
      );
    expect((await call("consumer-2", "file", [programme, "other", hash("e")])).errorCode).toBeNull();
    const over = await call("consumer-2", "file", [programme, "other", hash("e")]);
    expect(over.errorCode).toBe("COMPLAINT_LIMIT_REACHED");
    const mine = await query("list", [{ consumer: chain.address("consumer-1") }]);
    expect(mine.map((c: any) => c.id)).toEqual([1]);
    const filed = await query("list", [{ programme, status: "filed" }, 5]);
    expect(filed.map((c: any) => c.id)).toEqual([21, 20, 19, 18, 17]);
    expect((await query("list", [null, 500])).length).toBe(21);
  });
});

describe("member.institution", () => {
  it("records which institution a member is a customer of, by proposal; only an institution can be one", async () => {
    const bad = await call(
      "committee-1",
      "propose",
      [
        "member.institution",
        JSON.stringify({ address: chain.address("consumer-1"), institution: chain.address("merchant") }),
      ],
      "governance",
    );
    expect(bad.errorCode).toBe("NOT_AN_INSTITUTION");
    const ok = await call(
      "committee-1",
      "propose",
      [
        "member.institution",
        JSON.stringify({ address: chain.address("consumer-1"), institution: chain.address("bank") }),
      ],
      "governance",
    );
    expect(ok.events.map((e) => e.name)).toContain("InstitutionSet");
    expect(await query("get", [chain.address("consumer-1")], "members")).toMatchObject({
      institution: chain.address("bank"),
    });
    await call(
      "committee-1",
      "propose",
      ["member.institution", JSON.stringify({ address: chain.address("consumer-1"), institution: null })],
      "governance",
    );
    expect(await query("get", [chain.address("consumer-1")], "members")).toMatchObject({ institution: null });
  });
});

describe("system state keys a verifier proves", () => {
  it("the e-CNY balance and supply keys of @custos/types are where the e-CNY contract writes", async () => {
    await call("operator", "issue", [chain.address("consumer-2"), 777n, "rc-keys"], "ecny");
    const a = chain.address("consumer-2");
    expect(toHex(ecnyBalanceKey(a))).toBe(toHex(stateKey("ecny", balanceKeyOf(a))));
    expect(decode(chain.ledger.getSync(ecnyBalanceKey(a)) as Uint8Array, "x", 16)).toBe(777n);
    expect(decode(chain.ledger.getSync(ECNY_SUPPLY_KEY) as Uint8Array, "x", 16)).toBe(777n);
  });
});
