// Runs as this package's `install` script during the root `npm install`: builds the addon from
// source against the headers of the Node that runs npm. It never downloads anything (node-gyp
// gets --nodedir) and never fails the install: without the addon, @custos/crypto uses its
// pure-JS SM2 backend and says so (`custos doctor`).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const here = dirname(new URL(import.meta.url).pathname);
const candidates = [process.env.npm_config_nodedir, resolve(dirname(process.execPath), "..")].filter(Boolean);
const nodedir = candidates.find((d) => existsSync(join(d, "include", "node", "node_api.h")));

function giveUp(reason) {
  console.warn(`@custos/sm2-native: not built (${reason}); the pure-JS SM2 backend will be used.`);
  process.exit(0);
}

if (process.env.CUSTOS_SKIP_NATIVE === "1") giveUp("CUSTOS_SKIP_NATIVE=1");
if (!nodedir) giveUp(`no Node headers found in ${candidates.join(", ")}`);
if (!existsSync(join(nodedir, "include", "node", "openssl", "evp.h"))) giveUp("Node headers lack OpenSSL");

// npm sets npm_config_node_gyp to its bundled node-gyp; fall back to one on PATH.
const gypJs = process.env.npm_config_node_gyp;
const [cmd, args] = gypJs && existsSync(gypJs) ? [process.execPath, [gypJs]] : ["node-gyp", []];
const r = spawnSync(cmd, [...args, "rebuild", `--nodedir=${nodedir}`], { cwd: here, stdio: "inherit" });
if (r.error) giveUp(`node-gyp did not start: ${r.error.message}`);
if (r.status !== 0) giveUp(`node-gyp exited with ${r.status}`);
console.log(`@custos/sm2-native: built against ${nodedir}`);
