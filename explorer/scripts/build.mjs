// Builds the explorer's static assets into explorer/dist (run by `npm install` and
// `npm run build -w explorer`): one small entry script for the first page, and a chunk loaded
// on demand that verifies certificates and proofs with the chain's own rules (packages/types,
// packages/codec) over pure-JS SM2/SM3 (sm-crypto-v2). Nothing is fetched from elsewhere.
import { copyFile, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const out = join(root, "dist");
const shims = join(root, "src", "shims");
const packages = join(root, "..", "packages") + sep;

/** The chain's packages are written for Node; these few shims let the browser run their rules. */
const browserShims = {
  name: "custos-browser-shims",
  setup(b) {
    b.onResolve({ filter: /^@custos\/crypto$/ }, () => ({ path: join(shims, "crypto.ts") }));
    b.onResolve({ filter: /(^|\/)sm3\.js$/ }, (a) =>
      a.importer.startsWith(join(packages, "crypto")) ? { path: join(shims, "sm3.ts") } : undefined,
    );
    b.onResolve({ filter: /(^|\/)smCryptoV2\.js$/ }, (a) =>
      a.importer.startsWith(join(packages, "crypto")) ? { path: join(shims, "smCryptoV2.ts") } : undefined,
    );
    b.onResolve({ filter: /^(node:|@custos\/sm2-native$)/ }, (a) => ({ path: a.path, namespace: "stub" }));
    // CommonJS, so that named imports of what the browser never calls resolve to undefined
    b.onLoad({ filter: /.*/, namespace: "stub" }, () => ({ contents: "module.exports = {};", loader: "js" }));
    // utils and codec use Node's Buffer for hex and byte comparisons: give those files a small one
    b.onLoad({ filter: /\.ts$/ }, async (a) => {
      if (!a.path.startsWith(packages)) return undefined;
      const text = await readFile(a.path, "utf8");
      if (!/\bBuffer\b/.test(text)) return { contents: text, loader: "ts" };
      const shim = JSON.stringify(join(shims, "buffer.ts"));
      return {
        contents: `import { Buffer } from ${shim};\n${text}`,
        loader: "ts",
        resolveDir: dirname(a.path),
      };
    });
  },
};

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const result = await build({
  entryPoints: { app: join(root, "src", "main.ts") },
  outdir: out,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  conditions: ["custos-source"],
  chunkNames: "chunks/[name]-[hash]",
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
  plugins: [browserShims],
});
for (const f of ["index.html", "style.css", "favicon.svg"])
  await copyFile(join(root, "static", f), join(out, f));
const sizes = {};
for (const f of Object.keys(result.metafile.outputs)) {
  const rel = f.slice(f.indexOf("dist/") + 5);
  sizes[rel] = (await stat(join(out, rel))).size;
}
await writeFile(join(out, "sizes.json"), `${JSON.stringify(sizes, null, 2)}\n`);
const total = Object.values(sizes).reduce((a, b) => a + b, 0);
console.log(
  `explorer: built ${Object.keys(sizes).length} scripts (${(total / 1024).toFixed(1)} KB) into ${out}`,
);
