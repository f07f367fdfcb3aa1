import { readFile } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
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

/**
 * The runtime half of the SDK (index.ts declares the same names and their types), inlined into
 * every bundle as a virtual module: the bundle, and so the code hash, is the same whether the CLI runs from dist
 * or the harness from source, and wherever the SDK is installed.
 */
const SDK_RUNTIME = `const api = globalThis.custos;
export const storage = api.storage;
export const env = api.env;
export const balanceOf = (a) => api.balanceOf(a);
export const memberOf = (a) => api.memberOf(a);
export const hasRole = (a, role) => {
  const m = api.memberOf(a);
  return m !== null && m.roles.includes(role);
};
export const transfer = (to, amount) => api.transfer(to, amount);
export const emit = (name, data, topics) => api.emit(name, data, topics);
export const revert = (code, message) => api.revert(code, message);
`;

/**
 * Bundles a contract (.ts or .js) with esbuild into one ES module: no imports left, no
 * minification (auditors read what runs), ES2020 (what the pinned QuickJS runs).
 * `@custos/contract-sdk` resolves to this SDK wherever the contract's own folder is.
 */
export async function bundleContract(entry: string): Promise<BundledContract> {
  if (entry.endsWith(".js") && !(await readFile(entry, "utf8")).includes("import ")) {
    return finish(await readFile(entry, "utf8"), entry);
  }
  let out: string;
  try {
    const r = await build({
      entryPoints: [basename(entry)],
      // Paths in the bundle's comments are relative to the contract's folder.
      absWorkingDir: resolve(dirname(entry)),
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
            b.onResolve({ filter: /^@custos\/contract-sdk$/ }, () => ({
              path: "@custos/contract-sdk",
              namespace: "custos",
            }));
            b.onLoad({ filter: /.*/, namespace: "custos" }, () => ({ contents: SDK_RUNTIME, loader: "js" }));
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
