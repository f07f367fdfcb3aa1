import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CONTRACT } from "../programme.js";
import { runProperty } from "../property.js";

/**
 * The property test must be able to fail: the same walks on deliberately broken copies of the
 * contract find the break. Each copy changes one line of src/contract.ts (the test checks that the
 * line is there, so a refactoring cannot silently turn a control into a no-op).
 */
const BREAKS: { name: string; line: string; broken: string; expect: RegExp }[] = [
  {
    name: "a release that credits the merchant one fen more than leaves the card's escrow",
    line: "  const release = c.escrow - escrow2;\n",
    broken: "  const release = c.escrow - escrow2 + (escrow2 < c.escrow ? 1n : 0n);\n",
    expect: /escrow|balance|paid != escrow \+ released \+ refunded/,
  },
  {
    name: "a refund that pays the holder one fen more than the card's escrow",
    line: "  if (amount > 0n) transfer(c.holder, amount);\n",
    broken: "  if (amount > 0n) transfer(c.holder, amount + 1n);\n",
    expect: /balance|holds|reported flows/,
  },
  {
    name: "a release that rounds the escrow down (in the merchant's favour)",
    line: "  const escrow2 = c.hold + escrowFor(c.paid, c.base, consumed2);\n",
    broken: "  const escrow2 = c.hold + (c.base * (c.paid - consumed2)) / c.paid;\n",
    expect: /escrow .*, the rules say/,
  },
  {
    name: "stored-value use without the balance check",
    line: '    if (q > left) fail("INSUFFICIENT_BALANCE", ',
    broken: '    if (q < 0n) fail("INSUFFICIENT_BALANCE", ',
    expect: /used > units/,
  },
];

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function brokenCopy(line: string, broken: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "prepaid-broken-"));
  dirs.push(dir);
  await cp(join(CONTRACT, ".."), dir, { recursive: true });
  const source = await readFile(CONTRACT, "utf8");
  expect(source.split(line).length, `the text to break is in contract.ts once: ${line}`).toBe(2);
  const file = join(dir, "contract.ts");
  await writeFile(file, source.replace(line, broken));
  return file;
}

describe("negative controls: the property test catches a broken contract", () => {
  for (const b of BREAKS) {
    it(b.name, { timeout: 120_000 }, async () => {
      const source = await brokenCopy(b.line, b.broken);
      let found: string | null = null;
      for (const seed of [1, 2, 3, 4, 5, 6]) {
        const r = await runProperty({ seed, steps: 1500, source });
        if (r.violation !== null) {
          found = r.violation;
          break;
        }
      }
      expect(found, "the broken contract passed the property test").not.toBeNull();
      expect(found).toMatch(b.expect);
    });
  }
});
