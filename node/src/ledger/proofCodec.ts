import { fieldAt, readArray, readBytes, readUint } from "@custos/codec";
import { STATE_BUCKET_BITS, type StateProof } from "@custos/types";
import { CustosError } from "@custos/utils";

/** A state proof as stored in the set history and carried in snapshots: [bucket, leaves, siblings]. */
export function encodeProof(p: StateProof): unknown[] {
  return [p.bucket, Buffer.concat(p.leaves.flat()), Buffer.concat(p.siblings)];
}

export function decodeProof(v: unknown, where: string): StateProof {
  const a = readArray(v, fieldAt("StateProof", where), 3);
  const bucket = readUint(a[0], fieldAt("StateProof", `${where}.bucket`), (1 << STATE_BUCKET_BITS) - 1);
  const leaves = readBytes(a[1], fieldAt("StateProof", `${where}.leaves`), { max: 64 * 1_000_000 });
  const siblings = readBytes(a[2], fieldAt("StateProof", `${where}.siblings`), 32 * STATE_BUCKET_BITS);
  if (leaves.byteLength % 64 !== 0)
    throw new CustosError("DECODE_OUT_OF_RANGE", `${where}: leaves are 64 bytes each`);
  const out: StateProof = { bucket, leaves: [], siblings: [] };
  for (let i = 0; i < leaves.byteLength; i += 64)
    out.leaves.push([leaves.slice(i, i + 32), leaves.slice(i + 32, i + 64)]);
  for (let i = 0; i < siblings.byteLength; i += 32) out.siblings.push(siblings.slice(i, i + 32));
  return out;
}
