import { generateKeyPair, JsSm2Backend, type Sm2Backend, selectSm2, VerifierPool } from "@custos/crypto";
import type { Command } from "commander";
import { output } from "../io.js";

const MIN_NODE = [20, 19];

function rate(fn: () => void, ms: number): number {
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    fn();
    n++;
  }
  return Math.round((n * 1000) / (performance.now() - start));
}

function measure(backend: Sm2Backend, ms: number): { signPerSec: number; verifyPerSec: number } {
  const k = generateKeyPair();
  const msg = new TextEncoder().encode("custos doctor");
  const sig = backend.sign(k.privateKey, msg);
  return {
    signPerSec: rate(() => backend.sign(k.privateKey, msg), ms),
    verifyPerSec: rate(() => backend.verify(k.publicKey, msg, sig), ms),
  };
}

async function measurePool(backend: Sm2Backend, count: number): Promise<number> {
  const k = generateKeyPair();
  const msg = new TextEncoder().encode("custos doctor");
  const sig = backend.sign(k.privateKey, msg);
  const items = Array.from({ length: count }, () => ({
    publicKey: k.publicKey,
    message: msg,
    signature: sig,
  }));
  const pool = new VerifierPool({ backend });
  try {
    await pool.verifyBatch(items.slice(0, 64));
    const start = performance.now();
    await pool.verifyBatch(items);
    return Math.round((count * 1000) / (performance.now() - start));
  } finally {
    await pool.close();
  }
}

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("check this machine: Node version, OpenSSL, active SM2 backend and its measured speed")
    .option("--json", "print one JSON document")
    .option("--ms <n>", "milliseconds per measurement", (v) => Math.max(50, Number(v) || 0), 400)
    .action(async (o: { json?: boolean; ms: number }) => {
      const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
      const nodeOk =
        major > (MIN_NODE[0] as number) || (major === MIN_NODE[0] && minor >= (MIN_NODE[1] as number));
      const sel = selectSm2();
      const active = measure(sel.backend, o.ms);
      const poolVerifyPerSec = await measurePool(sel.backend, sel.backend.name === "native" ? 4000 : 600);
      const js = sel.backend.name === "js" ? active : measure(new JsSm2Backend(), o.ms);
      const doc = {
        node: { version: process.versions.node, supported: nodeOk, required: ">=20.19" },
        openssl: process.versions.openssl,
        sm2: {
          backend: sel.backend.name,
          reason: sel.reason,
          selfTest: "passed",
          ...active,
          poolVerifyPerSec,
          jsSignPerSec: js.signPerSec,
          jsVerifyPerSec: js.verifyPerSec,
        },
      };
      output(
        !!o.json,
        doc,
        [
          `node      ${doc.node.version} ${nodeOk ? "ok" : `UNSUPPORTED (need ${doc.node.required})`}`,
          `openssl   ${doc.openssl}`,
          `sm2       ${sel.backend.name} backend (${sel.reason}), self-test passed`,
          `          sign ${active.signPerSec}/s, verify ${active.verifyPerSec}/s on one core, ${poolVerifyPerSec}/s with the verifier pool`,
          `          pure-JS backend for comparison: sign ${js.signPerSec}/s, verify ${js.verifyPerSec}/s`,
        ].join("\n"),
      );
      if (!nodeOk) process.exitCode = 1;
    });
}
