import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { sm3 } from "@custos/crypto";
import { CustosError, toHex } from "@custos/utils";
import { VM_LIMITS } from "@custos/vm";
import { build } from "esbuild";

export interface BundledContract {
  /** One ES module, what the chain stores. */
  code: string;
  /** 0x + SM3 of the code's UTF-8 bytes: the template id. */
  codeHash: string;
}

/** The runtime half of the SDK, inlined into every bundle wherever the contract lives. */
function sdkEntry(): string {
  const fromSource = import.meta.url.endsWith(".ts");
  return fileURLToPath(new URL(fromSource ? "./index.ts" : "./index.js", import.meta.url));
}

/**
 * Bundles a contract (.ts or .js) with esbuild into one ES module: no imports left, no
 * minification (auditors read what runs), ES2020 (what the pinned QuickJS runs).
 * `@custos/contract-sdk` resolves to this SDK wherever the contract's own folder is.
 */
export async function bundleContract(entry: string): Promise<BundledContract> {
  if (entry.endsWith(".js") && !(await readFile(entry, "utf8")).includes("import ")) {
    return finish(await readFile(entry, "utf8"), entry);
  }
  const sdk = sdkEntry();
  let out: string;
  try {
    const r = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      target: "es2020",
      charset: "utf8",
      legalComments: "none",
      logLevel: "silent",
      plugins: [
        {
          name: "custos-sdk",
          setup(b) {
            b.onResolve({ filter: /^@custos\/contract-sdk$/ }, () => ({ path: sdk }));
          },
        },
      ],
    });
    out = (r.outputFiles[0] as { text: string }).text;
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { file: string; line: number } }[] }).errors;
    const first = errors?.[0];
    const where = first?.location ? ` (${first.location.file}:${first.location.line})` : "";
    throw new CustosError(
      "CONTRACT_BUILD_FAILED",
      `cannot bundle ${entry}: ${first?.text ?? String(err)}${where}`,
      {},
      { cause: err },
    );
  }
  return finish(out, entry);
}

function finish(code: string, entry: string): BundledContract {
  const bytes = Buffer.byteLength(code, "utf8");
  if (bytes > VM_LIMITS.maxCodeBytes) {
    throw new CustosError(
      "CONTRACT_TOO_LARGE",
      `${entry} bundles to ${bytes} bytes; a contract is at most ${VM_LIMITS.maxCodeBytes}`,
    );
  }
  return { code, codeHash: `0x${toHex(sm3(new TextEncoder().encode(code)))}` };
}
