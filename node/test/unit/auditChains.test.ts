import {
  auditHeadKey,
  decodeReceipt,
  eventDigest,
  eventSubjects,
  nextHead,
  verifyStateProof,
  ZERO_HEAD,
} from "@custos/types";
import { toHex } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import type { Ledger } from "../../src/ledger/ledger.js";
import { commitBlock, openLedger } from "../chain.js";
import { tempDir, testChain, tx } from "../helpers.js";

const chain = testChain();
const addr = (n: string) => chain.keys[n]?.address as string;
let ledger: Ledger;
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  await ledger?.close();
  for (const c of cleanups) await c();
});

describe("audit chains", () => {
  it("every event extends its subjects' chains; the heads are in the receipts and provable from the state root", async () => {
    const t = await tempDir("custos-audit-");
    cleanups.push(t.cleanup);
    ledger = await openLedger(t.dir, chain);
    await commitBlock(ledger, chain, [tx(chain, "operator", "issue", [addr("consumer-1"), 10_000n, "rc-a"])]);
    await commitBlock(ledger, chain, [
      tx(chain, "consumer-1", "transfer", [addr("merchant"), 100n]),
      tx(chain, "consumer-1", "transfer", [addr("merchant"), 5_000_000_000n]), // fails: no chain moves
      tx(chain, "consumer-1", "transfer", [addr("bank"), 7n]),
    ]);
    // walk every receipt in order, recomputing each subject's chain from the zero head
    const heads = new Map<string, Uint8Array>();
    for (let h = 1; h <= ledger.head.height; h++) {
      const block = await ledger.getBlock(h);
      const receipts = ((await ledger.getReceipts(h)) ?? []).map(decodeReceipt);
      receipts.forEach((r, i) => {
        if (!r.success) expect(r.events).toEqual([]);
        r.events.forEach((e, k) => {
          expect(toHex(r.txHash)).toBe(toHex(block?.txs[i]?.hash as Uint8Array));
          const digest = eventDigest(r.txHash, k, e);
          eventSubjects(e).forEach((s, j) => {
            const next = nextHead(heads.get(s) ?? ZERO_HEAD, digest);
            expect(toHex(e.heads[j] as Uint8Array)).toBe(toHex(next));
            heads.set(s, next);
          });
        });
      });
    }
    // consumer-1: issued, paid the merchant, paid the bank: three links, the last in state
    expect([...heads.keys()].sort()).toEqual([addr("bank"), addr("consumer-1"), addr("merchant")].sort());
    for (const [subject, head] of heads) {
      const key = auditHeadKey(subject);
      expect(toHex((await ledger.get(key)) as Uint8Array)).toBe(toHex(head));
      verifyStateProof(ledger.head.header.stateRoot, key, head, ledger.stateProof(key));
    }
    // a subject with no events has no head: its absence is provable too
    const none = auditHeadKey(addr("regulator"));
    verifyStateProof(ledger.head.header.stateRoot, none, null, ledger.stateProof(none));
  });
});
