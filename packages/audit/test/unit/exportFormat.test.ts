import { describe, expect, it } from "vitest";
import { parseExport } from "../../src/index.js";

const base = {
  format: "custos-audit-export",
  version: 1,
  chainId: "c",
  genesisHash: `0x${"00".repeat(32)}`,
  height: 1,
  createdAt: 0,
  query: { kind: "trace", target: { account: `0x${"a".repeat(40)}` }, from: null, to: null },
  blocks: [],
  entries: [],
  validatorChanges: [],
  chains: [],
  context: [],
  state: [],
  result: null,
};

describe("export documents from a file are untrusted", () => {
  it("reads a well-formed one", () => {
    expect(parseExport(base).query).toEqual(base.query);
  });

  it("names the field that is wrong (AUDIT_EXPORT_INVALID)", () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ format: "x" }, /format must be "custos-audit-export"/],
      [{ version: 2 }, /version is 2; this verifier reads version 1/],
      [{ genesisHash: "0x12" }, /genesisHash must be 32 bytes/],
      [
        { blocks: [{ height: 1, header: "zz", certificate: "0x" }] },
        /blocks\[0\]\.header must be 0x-prefixed/,
      ],
      [
        {
          entries: [
            {
              id: 0,
              height: 1,
              index: 0,
              tx: "0x",
              receipt: "0x",
              treeSize: 0,
              txProof: [],
              receiptProof: [],
            },
          ],
        },
        /entries\[0\]\.treeSize must be an integer/,
      ],
      [
        { chains: [{ subject: "x", role: "target", from: null, anchor: null, links: [], head: {} }] },
        /chains\[0\]\.subject must be a string matching/,
      ],
      [{ query: { kind: "trace", target: { account: "nope" } } }, /query target: account must be an address/],
      [
        { state: [{ what: "other", value: null, proof: { bucket: 0, leaves: [], siblings: [] } }] },
        /state\[0\]\.what must be/,
      ],
    ];
    for (const [patch, re] of cases)
      expect(() => parseExport({ ...base, ...patch })).toThrow(
        expect.objectContaining({ code: "AUDIT_EXPORT_INVALID", message: expect.stringMatching(re) }),
      );
  });
});
