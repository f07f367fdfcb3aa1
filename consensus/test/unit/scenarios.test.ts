import { sm3 } from "@custos/crypto";
import { toHex } from "@custos/utils";
import { describe, expect, it } from "vitest";
import { encodeBody, encodeEnvelope } from "../../src/messages.js";
import { Simulation, simBlock } from "../../src/sim/simulator.js";
import { BASE, Harness, testCrypto } from "../harness.js";

const hashOf = (b: Uint8Array) => toHex(sm3(b));

describe("PBFT scenarios", () => {
  it("normal case: the leader proposes, everybody executes, prepares, commits the same block", () => {
    const h = new Harness(4);
    h.startAll();
    const block = h.propose(1); // leader of height 1, view 0 is (1 + 0) mod 4
    h.deliver();
    for (let i = 0; i < 4; i++) expect(h.committed[i]?.get(1)).toEqual({ hash: hashOf(block), view: 0 });
    // the commit signatures are a CommitCertificate: the Commit body is commitVoteBytes
    expect(h.sentLog.filter((m) => m.body.kind === "commit")).toHaveLength(4);
  });

  it("a block prepared before a view change is the one committed after it", () => {
    const h = new Harness(4);
    h.startAll();
    const block = h.propose(1);
    h.deliver((m) => m.body.kind !== "commit"); // everybody prepares; no commit arrives
    expect([...Array(4).keys()].every((i) => h.committed[i]?.size === 0)).toBe(true);
    h.timeout([0, 1, 2, 3]); // view change to 1, each carrying its prepared certificate
    h.deliver();
    for (let i = 0; i < 4; i++) expect(h.committed[i]?.get(1)).toEqual({ hash: hashOf(block), view: 1 });
    // the new leader (node 2) re-proposed the prepared block instead of asking for a new one
    expect(h.proposals.filter((p) => p.view === 1)).toEqual([]);
  });

  it("leader crash mid-round: the others change view and commit; the leader restarts and catches up", () => {
    const h = new Harness(4);
    h.startAll();
    h.propose(1);
    h.deliver((m, to) => m.body.kind === "preprepare" && to === 0); // only node 0 hears the proposal
    h.crash(1);
    h.queue = [];
    h.timeout([0, 2, 3]);
    h.deliver();
    expect(h.proposals.some((p) => p.node === 2 && p.view === 1)).toBe(true); // nothing was prepared: a new block
    h.propose(2);
    h.deliver();
    const decided = h.committed[0]?.get(1);
    expect(decided?.view).toBe(1);
    for (const i of [2, 3]) expect(h.committed[i]?.get(1)).toEqual(decided);
    h.restart(1, 1); // from its WAL: its pre-prepare of view 0 goes out again, unchanged
    h.deliver();
    h.timeout([1]); // it asks around; the others answer with the decision
    h.deliver();
    expect(h.committed[1]?.get(1)).toEqual(decided);
  });

  it("a replica a moment behind gets no decision for its late votes; one that sends them again does", () => {
    const h = new Harness(4);
    h.startAll();
    const block = h.propose(1);
    // everybody prepares; node 3's commit and every commit to node 3 are held back
    h.deliver((m, to) => m.body.kind !== "commit" || (m.from !== 3 && to !== 3));
    for (const i of [0, 1, 2]) expect(h.committed[i]?.get(1)?.hash).toBe(hashOf(block));
    expect(h.committed[3]?.get(1)).toBeUndefined();
    const decisionsTo3 = () => h.sentLog.filter((m) => m.body.kind === "decision" && m.to === 3).length;
    // its commit arrives late at the others: a moment behind, not stuck (the others' commits are
    // on their way to it): no decision, no signature spent on one
    const late = h.sentLog.find((m) => m.from === 3 && m.body.kind === "commit");
    expect(late).toBeDefined();
    for (const to of [0, 1, 2]) h.input(to, { type: "message", bytes: late?.bytes as Uint8Array, from: 3 });
    expect(decisionsTo3()).toBe(0);
    // the commits to it were lost: still undecided, it sends its messages of the view again, and
    // the same vote seen twice is answered with the decision
    h.queue = [];
    h.resend([3]);
    h.deliver((m) => m.from === 3 || m.to === 3);
    expect(decisionsTo3()).toBeGreaterThan(0);
    expect(h.committed[3]?.get(1)?.hash).toBe(hashOf(block));
  });

  it("a replica that crashes after Prepare re-sends the identical Prepare and never prepares another block", () => {
    const h = new Harness(4);
    h.startAll();
    const block = h.propose(1);
    h.deliver((m) => m.body.kind === "preprepare");
    const firstPrepare = h.sentLog.find((m) => m.from === 3 && m.body.kind === "prepare");
    expect(firstPrepare).toBeDefined();
    h.crash(3);
    const effects = h.restart(3, 1);
    const resent = effects.filter((e) => e.type === "broadcast");
    expect(resent).toHaveLength(1);
    expect(toHex((resent[0] as { bytes: Uint8Array }).bytes)).toBe(toHex(firstPrepare?.bytes as Uint8Array));
    // an equivocating leader now shows it another block for the same view
    const other = simBlock(1, 1, 999);
    const body = encodeBody({
      kind: "preprepare",
      chainId: "harness",
      height: 1,
      view: 0,
      blockHash: sm3(other),
      block: other,
    });
    const forged = encodeEnvelope(body, 1, testCrypto(1).sign(body));
    const before = h.sentLog.length;
    h.input(3, { type: "message", bytes: forged, from: 1 });
    expect(h.sentLog.slice(before).filter((m) => m.from === 3 && m.body.kind === "prepare")).toEqual([]);
    // the prepares of 0, 1 and 2 were lost above (only the pre-prepare was delivered): they resend them
    h.resend([0, 1, 2]);
    h.deliver();
    for (let i = 0; i < 3; i++) expect(h.committed[i]?.get(1)?.hash).toBe(hashOf(block));
    // node 3 holds the other block as its view-0 proposal, so it waits; on its timeout the others
    // answer with the decision (block + commit certificate) and it commits the same block
    expect(h.committed[3]?.get(1)).toBeUndefined();
    h.timeout([3]);
    h.deliver();
    expect(h.committed[3]?.get(1)?.hash).toBe(hashOf(block));
  });

  it("repeated view changes back off exponentially up to the cap; a lone replica does not run ahead; a replica joins a higher view only on f + 1 requests", () => {
    const h = new Harness(4);
    h.startAll();
    // the leader never proposes; node 0 times out on its own: one view change, then it waits for
    // a quorum of view changes before its next timeout runs (Castro-Liskov)
    h.timeout([0]);
    h.timeout([0]);
    h.timeout([0]);
    expect(h.engines[0]?.state.view).toBe(1);
    expect(h.timers.filter((t) => t.node === 0 && t.kind === "view").map((t) => t.delayMs)).toEqual([BASE]);
    // node 3 hears node 0's view change: one replica is not enough to move it
    h.deliver((m, to) => m.from === 0 && to === 3);
    expect(h.engines[3]?.state.view).toBe(0);
    h.timeout([2]); // node 2 asks for view 1: now f + 1 = 2 replicas want views above 0
    h.deliver((m, to) => m.from === 2 && to === 3);
    expect(h.engines[3]?.state.view).toBe(1); // the smallest requested view
    // a view far ahead from a single peer is refused and reported
    const body = encodeBody({
      kind: "viewchange",
      chainId: "harness",
      height: 1,
      view: 1_000_000,
      prepared: null,
    });
    h.input(3, { type: "message", bytes: encodeEnvelope(body, 2, testCrypto(2).sign(body)), from: 2 });
    expect(h.engines[3]?.state.view).toBe(1);
    expect(h.invalid.some((x) => x.node === 3 && /too far ahead/.test(x.reason))).toBe(true);
    // with a quorum in each view change but no new view ever arriving, timeouts double to the cap
    for (let k = 0; k < 5; k++) {
      h.deliver((m) => m.body.kind === "viewchange");
      h.timeout([0, 1, 2, 3]);
    }
    const viewTimers = h.timers.filter((t) => t.kind === "view" && t.view > 0);
    for (const t of viewTimers) expect(t.delayMs).toBe(Math.min(8 * BASE, BASE * 2 ** t.view));
    expect(Math.max(...viewTimers.map((t) => t.view))).toBeGreaterThanOrEqual(4); // the cap was reached
    expect(viewTimers.filter((t) => t.node === 3).map((t) => t.view)).toEqual([1, 2, 3, 4]);
  });

  it("a validator added by the block at height 1 votes from height 2 on, not before", () => {
    const h = new Harness(5);
    for (let i = 0; i < 5; i++) {
      h.input(i, { type: "start", height: 1, validators: 4 }); // node 4 is not a validator at height 1
      h.input(i, { type: "work" });
    }
    const b1 = h.propose(1);
    h.deliver(); // the harness acknowledges each commit with validators = 5 for height 2
    for (let i = 0; i < 5; i++) expect(h.committed[i]?.get(1)?.hash).toBe(hashOf(b1));
    expect(h.invalid.some((x) => /sender 4 is not among 4 validators/.test(x.reason))).toBe(true);
    expect(h.engines.every((e) => e?.state.validators === 5 && e.state.height === 2)).toBe(true);
    const b2 = h.propose(2); // leader of height 2 among 5: (2 + 0) mod 5
    h.deliver();
    for (let i = 0; i < 5; i++) expect(h.committed[i]?.get(2)?.hash).toBe(hashOf(b2));
    const votes = h.sentLog.filter((m) => m.body.kind === "commit" && m.body.height === 2).map((m) => m.from);
    expect(votes).toContain(4);
  });

  it("garbage, forged signatures and impostors are dropped and reported, and change nothing", () => {
    const h = new Harness(4);
    h.startAll();
    const bad = [
      new Uint8Array([1, 2, 3]),
      encodeEnvelope(
        encodeBody({ kind: "prepare", chainId: "harness", height: 1, view: 0, blockHash: sm3() }),
        2,
        new Uint8Array(32),
      ),
      encodeEnvelope(
        encodeBody({ kind: "prepare", chainId: "other", height: 1, view: 0, blockHash: sm3() }),
        2,
        new Uint8Array(32),
      ),
      encodeEnvelope(
        encodeBody({ kind: "prepare", chainId: "harness", height: 1, view: 0, blockHash: sm3() }),
        9,
        new Uint8Array(32),
      ),
    ];
    for (const b of bad) h.input(0, { type: "message", bytes: b, from: 2 });
    expect(h.invalid.filter((x) => x.node === 0)).toHaveLength(bad.length);
    expect(h.engines[0]?.state).toMatchObject({ height: 1, view: 0, decided: false });
  });

  it("an equivocating leader cannot split the honest replicas", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = new Simulation({
        seed,
        n: 4,
        byzantine: new Map([[1, "equivocate"]]),
        durationMs: 8000,
        delay: [1, 30],
        loss: 0,
        duplicate: 0,
        partitions: [],
        crashes: [],
        baseTimeoutMs: BASE,
      }).run();
      expect(r.failures, `seed ${seed}`).toEqual([]);
      expect(Math.min(...r.heights.filter((_, i) => i !== 1))).toBeGreaterThan(5);
    }
  });

  it("a minority partition cannot commit, and catches up after healing", () => {
    const sim = new Simulation({
      seed: 7,
      n: 4,
      byzantine: new Map(),
      durationMs: 9000,
      delay: [1, 20],
      loss: 0,
      duplicate: 0,
      partitions: [{ startMs: 1000, healMs: 4000, groups: [[0], [1, 2, 3]], oneWay: false }],
      crashes: [],
      baseTimeoutMs: BASE,
    });
    const r = sim.run();
    expect(r.failures).toEqual([]);
    const during = sim.trace.filter(
      (l) =>
        /node 0\.0 commits/.test(l) &&
        Number(l.trim().split("ms")[0]) > 1200 &&
        Number(l.trim().split("ms")[0]) < 4000,
    );
    expect(during).toEqual([]); // alone, node 0 commits nothing
    const majority = sim.trace.filter(
      (l) =>
        /node [123]\.0 commits/.test(l) &&
        Number(l.trim().split("ms")[0]) > 1200 &&
        Number(l.trim().split("ms")[0]) < 4000,
    );
    expect(majority.length).toBeGreaterThan(3); // the majority goes on
    const [h0, ...others] = r.heights;
    expect(h0).toBeGreaterThanOrEqual(Math.max(...others) - 1); // and node 0 caught up
  });
});
