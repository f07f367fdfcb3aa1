import { encode } from "@custos/codec";
import { generateKeyPair } from "@custos/crypto";
import { type CommitCertificate, encodeHeader, type Header, verifyCommitCertificate } from "@custos/types";
import { describe, expect, it } from "vitest";
import { type Effect, PbftEngine } from "../../src/index.js";
import { decodeEnvelope } from "../../src/messages.js";
import { sm2ConsensusCrypto } from "../../src/sm2Crypto.js";

describe("PBFT with SM2 keys", () => {
  it("the commit signatures of a decision form a CommitCertificate the ledger accepts", () => {
    const keys = [generateKeyPair(), generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const pubs = keys.map((k) => k.publicKey);
    const engines = keys.map(
      (k, i) =>
        new PbftEngine(
          {
            chainId: "custos-test",
            self: i,
            baseTimeoutMs: 1000,
            maxTimeoutMs: 8000,
            maxViewAhead: 64,
            maxMessageBytes: 1 << 20,
            keepDecisions: 8,
          },
          sm2ConsensusCrypto({ privateKey: k.privateKey, validators: () => pubs }),
        ),
    );
    const header: Header = {
      version: 1,
      chainId: "custos-test",
      height: 1,
      prevHash: new Uint8Array(32),
      timestamp: 1,
      proposer: 1,
      view: 0,
      txRoot: new Uint8Array(32),
      receiptRoot: new Uint8Array(32),
      stateRoot: new Uint8Array(32),
      validatorSetHash: new Uint8Array(32),
    };
    const block = encode([encodeHeader(header), []]);
    const queue: { from: number; bytes: Uint8Array }[] = [];
    const decisions: Extract<Effect, { type: "commit" }>[] = [];
    const run = (i: number, effects: Effect[]) => {
      for (const e of effects) {
        if (e.type === "broadcast") queue.push({ from: i, bytes: e.bytes });
        if (e.type === "execute")
          run(
            i,
            (engines[i] as PbftEngine).step({
              type: "executed",
              height: 1,
              blockHash: e.blockHash,
              valid: true,
            }),
          );
        if (e.type === "commit") decisions.push(e);
        if (e.type === "requestProposal")
          run(i, (engines[i] as PbftEngine).step({ type: "proposal", height: 1, view: 0, block }));
      }
    };
    for (const [i, e] of engines.entries()) run(i, e.step({ type: "start", height: 1, validators: 4 }));
    for (const [i, e] of engines.entries()) run(i, e.step({ type: "work" }));
    while (queue.length > 0) {
      const m = queue.shift() as { from: number; bytes: Uint8Array };
      expect(decodeEnvelope(m.bytes, 1 << 20).signature.byteLength).toBe(64);
      engines.forEach((e, i) => {
        if (i !== m.from) run(i, e.step({ type: "message", bytes: m.bytes, from: m.from }));
      });
    }
    expect(decisions).toHaveLength(4);
    const d = decisions[0] as Extract<Effect, { type: "commit" }>;
    const cert: CommitCertificate = {
      version: 1,
      chainId: "custos-test",
      height: 1,
      view: d.view,
      blockHash: d.blockHash,
      signatures: d.signatures.map(([validator, signature]) => ({ validator, signature })),
    };
    expect(() =>
      verifyCommitCertificate(cert, { chainId: "custos-test", height: 1, blockHash: d.blockHash }, pubs),
    ).not.toThrow();
    expect(cert.signatures.length).toBeGreaterThanOrEqual(3);
  });
});
