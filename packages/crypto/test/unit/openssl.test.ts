import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bytesToBigInt, concatBytes, fromHex, toHex } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import { uncompressPublicKey } from "../../src/index.js";
import { allBackends, seededBytes } from "../helpers.js";

/**
 * Interoperability with the `openssl` command line (OpenSSL 3), the implementation most
 * consortium tooling uses: our signatures verify there with distid 1234567812345678, and
 * OpenSSL's signatures verify here. Under CI the binary must exist (.ci/run installs it).
 */
const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;
if (!hasOpenssl && process.env.CI) throw new Error("the openssl command is required in CI");

const dir = mkdtempSync(join(tmpdir(), "custos-openssl-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// SubjectPublicKeyInfo { ecPublicKey, sm2 (1.2.156.10197.1.301) } for a 65-byte point.
const SPKI_PREFIX = fromHex("3059301306072a8648ce3d020106082a811ccf5501822d034200");
const DISTID = "distid:1234567812345678";

function derInt(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if ((v[0] as number) & 0x80) v = concatBytes(new Uint8Array([0]), v);
  return concatBytes(new Uint8Array([2, v.length]), v);
}
function toDer(sig: Uint8Array): Uint8Array {
  const body = concatBytes(derInt(sig.subarray(0, 32)), derInt(sig.subarray(32)));
  return concatBytes(new Uint8Array([0x30, body.length]), body);
}
function fromDer(der: Uint8Array): Uint8Array {
  // SEQUENCE { INTEGER r, INTEGER s }, short-form lengths (always, for 256-bit values)
  let p = 2;
  const read = () => {
    const len = der[p + 1] as number;
    const v = bytesToBigInt(der.subarray(p + 2, p + 2 + len));
    p += 2 + len;
    return fromHex(v.toString(16).padStart(64, "0"));
  };
  return concatBytes(read(), read());
}

function opensslVerify(pub65: Uint8Array, msg: Uint8Array, sig: Uint8Array, tag: string): boolean {
  const pubPath = join(dir, `${tag}.pub.der`);
  const msgPath = join(dir, `${tag}.msg`);
  const sigPath = join(dir, `${tag}.sig`);
  writeFileSync(pubPath, concatBytes(SPKI_PREFIX, pub65));
  writeFileSync(msgPath, msg);
  writeFileSync(sigPath, toDer(sig));
  const r = spawnSync("openssl", [
    "pkeyutl",
    "-verify",
    "-pubin",
    "-keyform",
    "DER",
    "-inkey",
    pubPath,
    "-rawin",
    "-digest",
    "sm3",
    "-in",
    msgPath,
    "-sigfile",
    sigPath,
    "-pkeyopt",
    DISTID,
  ]);
  return r.status === 0 && String(r.stdout).includes("Signature Verified Successfully");
}

describe.skipIf(!hasOpenssl)("openssl command line", () => {
  for (const b of allBackends()) {
    it(`${b.name}: 12 signatures verify with openssl, corrupted ones do not`, () => {
      const rnd = seededBytes(5 + b.name.length);
      for (let i = 0; i < 12; i++) {
        const priv = rnd(32);
        priv[0] = (priv[0] as number) & 0x7f;
        const msg = rnd(1 + i * 37);
        const sig = b.sign(priv, msg);
        const pub = b.publicKey(priv);
        expect(opensslVerify(pub, msg, sig, `${b.name}-${i}`), `case ${i}`).toBe(true);
        if (i % 4 === 0) {
          const bad = msg.slice();
          bad[0] = (bad[0] as number) ^ 1;
          expect(opensslVerify(pub, bad, sig, `${b.name}-${i}-bad`)).toBe(false);
        }
      }
    });
  }

  it("signatures made by openssl verify with every backend", () => {
    const keyPath = join(dir, "ossl.key");
    execFileSync("openssl", ["genpkey", "-algorithm", "SM2", "-out", keyPath]);
    const spki = new Uint8Array(
      execFileSync("openssl", ["pkey", "-in", keyPath, "-pubout", "-outform", "DER"]),
    );
    const pub = uncompressPublicKey(spki.subarray(spki.length - 65));
    expect(toHex(spki.subarray(0, SPKI_PREFIX.length))).toBe(toHex(SPKI_PREFIX));
    for (let i = 0; i < 6; i++) {
      const msg = new TextEncoder().encode(`evidence document ${i}`);
      const msgPath = join(dir, `ossl-${i}.msg`);
      const sigPath = join(dir, `ossl-${i}.sig`);
      writeFileSync(msgPath, msg);
      execFileSync("openssl", [
        "pkeyutl",
        "-sign",
        "-inkey",
        keyPath,
        "-rawin",
        "-digest",
        "sm3",
        "-in",
        msgPath,
        "-out",
        sigPath,
        "-pkeyopt",
        DISTID,
      ]);
      const sig = fromDer(new Uint8Array(readFileSync(sigPath)));
      for (const b of allBackends()) {
        expect(b.verify(pub, msg, sig), `${b.name} case ${i}`).toBe(true);
        expect(b.verify(pub, new TextEncoder().encode("other"), sig)).toBe(false);
      }
    }
  });
});
