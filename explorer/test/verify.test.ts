import { generateKeyPair, type Sm2KeyPair, sm2Sign } from "@custos/crypto";
import {
  blockHash,
  CERT_VERSION,
  commitVoteBytes,
  encodeCertificate,
  encodeHeader,
  encodeValidatorSet,
  HEADER_VERSION,
  StateTree,
  VALIDATOR_SET_KEY,
  validatorSetHash,
} from "@custos/types";
import { toHex } from "@custos/utils";
import { describe, expect, it } from "vitest";
import { type Evidence, type SetHistory, verifyEvidence } from "../src/verify.js";

/**
 * The browser's checks (explorer/src/verify.ts) on a chain whose validator set changed: the set
 * of a later block is known only by walking the history from genesis, each change certified by the
 * set in force and proven in its block's state. Runs the same code in Node that the page runs.
 */
const CHAIN = "custos-verify-test";
const hx = (b: Uint8Array) => `0x${toHex(b)}`;
const setA = Array.from({ length: 4 }, generateKeyPair);
const setB = [...setA, generateKeyPair()];
const keysOf = (s: Sm2KeyPair[]) => s.map((k) => k.publicKey);
const validators = (s: Sm2KeyPair[]) =>
  s.map((k, i) => ({ name: `v${i}`, publicKey: k.publicKey, peerId: "", p2p: [] }));

function block(height: number, signers: Sm2KeyPair[], inForce: Sm2KeyPair[], stateRoot: Uint8Array) {
  const headerBytes = encodeHeader({
    version: HEADER_VERSION,
    chainId: CHAIN,
    height,
    prevHash: new Uint8Array(32),
    timestamp: 1_700_000_000_000 + height,
    proposer: 0,
    view: 0,
    txRoot: new Uint8Array(32),
    receiptRoot: new Uint8Array(32),
    stateRoot,
    validatorSetHash: validatorSetHash(keysOf(inForce)),
  });
  const hash = blockHash(headerBytes);
  const msg = commitVoteBytes(CHAIN, height, 0, hash);
  const cert = encodeCertificate({
    version: CERT_VERSION,
    chainId: CHAIN,
    height,
    view: 0,
    blockHash: hash,
    signatures: signers.map((k) => ({
      validator: inForce.indexOf(k),
      signature: sm2Sign(k.privateKey, msg),
    })),
  });
  return { headerBytes, hash, cert };
}

// block 3 changes the set from A to B (its state holds B); block 5 is signed by B
const value = encodeValidatorSet(validators(setB));
const tree = StateTree.from([[VALIDATOR_SET_KEY, value]]);
const change = block(3, setA.slice(0, 3), setA, tree.root);
const later = block(5, setB.slice(1), setB, new Uint8Array(32));
const proof = tree.prove(VALIDATOR_SET_KEY);

const history = (): SetHistory => ({
  chainId: CHAIN,
  genesis: validators(setA).map((v) => ({ name: v.name, publicKey: hx(v.publicKey) })),
  changes: [
    {
      height: 3,
      header: hx(change.headerBytes),
      certificate: hx(change.cert),
      value: hx(value),
      proof: {
        bucket: proof.bucket,
        leaves: proof.leaves.map(([k, v]) => [hx(k), hx(v)] as [string, string]),
        siblings: proof.siblings.map(hx),
      },
    },
  ],
});

const evidence: Evidence = {
  height: 5,
  hash: hx(later.hash),
  chainId: CHAIN,
  header: hx(later.headerBytes),
  certificate: hx(later.cert),
  validators: validators(setB).map((v) => ({ name: v.name, publicKey: hx(v.publicKey) })),
};

const failed = (checks: ReturnType<typeof verifyEvidence>) =>
  checks.filter((c) => !c.ok).map((c) => c.detail);

describe("the explorer's verification of a block after a validator-set change", () => {
  it("verifies block 5 by the set that the history from genesis leads to", () => {
    const checks = verifyEvidence(evidence, hx(later.hash), undefined, history());
    expect(failed(checks)).toEqual([]);
    expect(checks.find((c) => c.name === "validator set")?.detail).toContain("through 1 certified change");
    expect(checks.find((c) => c.name === "commit certificate")?.detail).toContain("4 valid SM2 signatures");
  });

  it("refuses a history that leaves out the change", () => {
    const h = history();
    h.changes = [];
    expect(failed(verifyEvidence(evidence, hx(later.hash), undefined, h))).toEqual([
      "the set given is not the one the history from genesis leads to",
    ]);
  });

  it("refuses a change certified by keys outside the set in force", () => {
    const outsiders = Array.from({ length: 4 }, generateKeyPair);
    const forged = block(3, outsiders.slice(0, 3), outsiders, tree.root);
    const h = history();
    (h.changes[0] as SetHistory["changes"][number]).header = hx(forged.headerBytes);
    (h.changes[0] as SetHistory["changes"][number]).certificate = hx(forged.cert);
    expect(failed(verifyEvidence(evidence, hx(later.hash), undefined, h))[0]).toContain(
      "names another set than the one in force",
    );
    // the header names the set in force, but the signatures are the outsiders' at its indices:
    // the certificate check itself refuses it
    const named = block(3, setA.slice(0, 3), setA, tree.root);
    const msg = commitVoteBytes(CHAIN, 3, 0, named.hash);
    const forgedCert = encodeCertificate({
      version: CERT_VERSION,
      chainId: CHAIN,
      height: 3,
      view: 0,
      blockHash: named.hash,
      signatures: outsiders
        .slice(0, 3)
        .map((k, validator) => ({ validator, signature: sm2Sign(k.privateKey, msg) })),
    });
    const h2 = history();
    (h2.changes[0] as SetHistory["changes"][number]).header = hx(named.headerBytes);
    (h2.changes[0] as SetHistory["changes"][number]).certificate = hx(forgedCert);
    const why = failed(verifyEvidence(evidence, hx(later.hash), undefined, h2));
    expect(why).toHaveLength(1);
    expect(why[0]).not.toContain("names another set");
    expect(why[0]).toMatch(/signature/i);
  });

  it("refuses a new set that the change block's state does not hold", () => {
    const h = history();
    const other = encodeValidatorSet(validators([...setA, generateKeyPair()]));
    (h.changes[0] as SetHistory["changes"][number]).value = hx(other);
    expect(failed(verifyEvidence(evidence, hx(later.hash), undefined, h))[0]).toMatch(/state proof/);
  });

  it("refuses a block whose certificate lacks a quorum of its set", () => {
    const thin = block(5, setB.slice(0, 3), setB, new Uint8Array(32));
    const ev = { ...evidence, hash: hx(thin.hash), header: hx(thin.headerBytes), certificate: hx(thin.cert) };
    expect(failed(verifyEvidence(ev, hx(thin.hash), undefined, history()))[0]).toContain("quorum is 4");
  });
});
