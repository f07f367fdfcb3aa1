import {
  addressFromPublicKey,
  DEFAULT_KDF_ITERATIONS,
  encryptKeystore,
  generateKeyPair,
  loadKeystoreFile,
  readKeystoreFile,
  sm2Sign,
  sm2Verify,
  uncompressPublicKey,
  writeKeystoreFile,
} from "@custos/crypto";
import { fromHex, toHex } from "@custos/utils";
import type { Command } from "commander";
import { output, parseHexArg, readInput, readPassword, UsageError } from "../io.js";

function parseIterations(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError("--kdf-iterations must be a positive integer");
  return n;
}

export function registerKeyCommands(program: Command): void {
  program
    .command("keygen")
    .description("generate an SM2 key pair into an encrypted keystore file")
    .requiredOption("--out <file>", "keystore file to create (never overwritten)")
    .option("--password-file <file>", "file holding the keystore password (else CUSTOS_PASSWORD)")
    .option("--kdf-iterations <n>", "PBKDF2-HMAC-SM3 iterations", parseIterations, DEFAULT_KDF_ITERATIONS)
    .option("--json", "print one JSON document")
    .action(async (o: { out: string; passwordFile?: string; kdfIterations: number; json?: boolean }) => {
      const password = await readPassword(o, true);
      const pair = generateKeyPair();
      await writeKeystoreFile(
        o.out,
        await encryptKeystore(pair.privateKey, password, { iterations: o.kdfIterations }),
      );
      output(
        !!o.json,
        { address: pair.address, publicKey: toHex(pair.publicKey), file: o.out },
        `address:   ${pair.address}\npublicKey: ${toHex(pair.publicKey)}\nkeystore:  ${o.out}`,
      );
    });

  const key = program.command("key").description("inspect keystore files");
  key
    .command("show")
    .description("show the address and public key of a keystore (no password needed)")
    .argument("<file>", "keystore file")
    .option("--json", "print one JSON document")
    .action(async (file: string, o: { json?: boolean }) => {
      const ks = await readKeystoreFile(file);
      const pub = fromHex(ks.publicKey);
      const doc = {
        address: ks.address,
        publicKey: ks.publicKey,
        publicKeyUncompressed: toHex(uncompressPublicKey(pub)),
        kdf: ks.crypto.kdf,
        kdfIterations: ks.crypto.kdfParams.iterations,
        cipher: ks.crypto.cipher,
      };
      output(
        !!o.json,
        doc,
        `address:   ${doc.address}\npublicKey: ${doc.publicKey}\ncipher:    ${doc.cipher}, ${doc.kdf} x ${doc.kdfIterations}`,
      );
    });

  program
    .command("sign")
    .description("sign data off-chain with SM2 (ID 1234567812345678); prints the raw r||s signature in hex")
    .requiredOption("--key <file>", "keystore file")
    .option("--password-file <file>", "file holding the keystore password (else CUSTOS_PASSWORD)")
    .option("--in <file>", "data to sign, from a file")
    .option("--hex <hex>", "data to sign, as hex")
    .option("--json", "print one JSON document")
    .action(async (o: { key: string; passwordFile?: string; in?: string; hex?: string; json?: boolean }) => {
      const data = await readInput(o);
      const pair = await loadKeystoreFile(o.key, await readPassword(o));
      const sig = toHex(sm2Sign(pair.privateKey, data));
      output(!!o.json, { signature: sig, address: pair.address, publicKey: toHex(pair.publicKey) }, sig);
    });

  program
    .command("verify")
    .description("verify an SM2 signature; exit 0 when valid, 1 when not")
    .requiredOption("--pub <hex>", "public key, compressed (33 bytes) or uncompressed (65 bytes)")
    .requiredOption("--sig <hex>", "raw r||s signature (64 bytes)")
    .option("--in <file>", "signed data, from a file")
    .option("--hex <hex>", "signed data, as hex")
    .option("--json", "print one JSON document")
    .action(async (o: { pub: string; sig: string; in?: string; hex?: string; json?: boolean }) => {
      const data = await readInput(o);
      const pub = parseHexArg(o.pub, "--pub");
      const sig = parseHexArg(o.sig, "--sig");
      const valid = sm2Verify(pub, data, sig);
      // a valid signature implies a valid key, so the address can be derived
      const address = valid ? addressFromPublicKey(pub) : undefined;
      output(
        !!o.json,
        { valid, ...(address ? { address } : {}) },
        valid ? `valid (signer ${address})` : "invalid",
      );
      if (!valid) process.exitCode = 1;
    });
}
