import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The block explorer's static assets (explorer/, built by `npm install`), served read-only at
 * /explorer on the RPC port. The explorer reads the chain through the public RPC like any other
 * client, so serving it gives nobody anything the RPC does not already give.
 */

/** Where `npm install` puts the built explorer: explorer/dist of the repository (src and dist alike). */
export function defaultExplorerDir(): string {
  return fileURLToPath(new URL("../../../explorer/dist/", import.meta.url));
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".map": "application/json",
};

export interface ExplorerResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | string;
}

const MISSING = (dir: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Custos explorer not built</title></head>
<body><h1>The Custos explorer is not built</h1>
<p>This node serves its block explorer from <code>${escapeHtml(dir)}</code>, which holds no
<code>index.html</code>. Build it with <code>npm install</code> (or <code>npm run build -w explorer</code>)
in the repository and reload this page. The JSON-RPC on this port works without it.</p>
</body></html>`;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const SECURITY = {
  // the explorer loads nothing from elsewhere: a closed network has no CDN
  "content-security-policy":
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * Answers GET `url` (a path under /explorer) from `dir`: index.html for /explorer and
 * /explorer/, a file below dir otherwise, 404 for anything else (never a file outside dir).
 */
export async function explorerAsset(dir: string, url: string): Promise<ExplorerResponse> {
  let path: string;
  try {
    path = decodeURIComponent((url.split("?")[0] as string).split("#")[0] as string);
  } catch {
    return {
      status: 400,
      headers: { "content-type": "text/plain; charset=utf-8", ...SECURITY },
      body: "a malformed path",
    };
  }
  if (!existsSync(join(dir, "index.html")))
    return {
      status: 404,
      headers: { "content-type": TYPES[".html"] as string, ...SECURITY },
      body: MISSING(dir),
    };
  let rel = path.replace(/^\/explorer\/?/, "");
  if (rel === "") rel = "index.html";
  const file = normalize(join(dir, rel));
  const root = normalize(dir.endsWith(sep) ? dir : dir + sep);
  const notFound: ExplorerResponse = {
    status: 404,
    headers: { "content-type": "text/plain; charset=utf-8", ...SECURITY },
    body: `no explorer asset ${rel}`,
  };
  if (!file.startsWith(root) || rel.includes("\0")) return notFound;
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return notFound;
  const type = TYPES[extname(file)] ?? "application/octet-stream";
  return {
    status: 200,
    headers: {
      "content-type": type,
      // hashed chunk names could be cached for long; index.html and entry points are small
      "cache-control": "no-cache",
      ...SECURITY,
    },
    body: await readFile(file),
  };
}
