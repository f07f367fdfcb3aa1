// The few Buffer functions packages/utils and packages/codec use (hex, concat, compare, equals,
// allocUnsafeSlow), for the browser, which has no Buffer. Not a general Buffer.
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export class Buffer extends Uint8Array {
  static from(src: unknown, a?: unknown, b?: unknown): Buffer {
    if (typeof src === "string") {
      if (a !== "hex") return new Buffer(new TextEncoder().encode(src));
      const n = Math.floor(src.length / 2);
      const out = new Buffer(n);
      for (let i = 0; i < n; i++) {
        const v = Number.parseInt(src.slice(i * 2, i * 2 + 2), 16);
        if (Number.isNaN(v)) return out.subarray(0, i) as Buffer;
        out[i] = v;
      }
      return out;
    }
    if (src instanceof ArrayBuffer) {
      const off = (a as number | undefined) ?? 0;
      return new Buffer(src, off, (b as number | undefined) ?? src.byteLength - off);
    }
    return new Buffer(src as ArrayLike<number>);
  }

  static allocUnsafeSlow(size: number): Buffer {
    return new Buffer(size);
  }

  static concat(list: readonly Uint8Array[]): Buffer {
    let size = 0;
    for (const p of list) size += p.byteLength;
    const out = new Buffer(size);
    let at = 0;
    for (const p of list) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }

  static compare(x: Uint8Array, y: Uint8Array): number {
    const n = Math.min(x.length, y.length);
    for (let i = 0; i < n; i++) if (x[i] !== y[i]) return (x[i] as number) < (y[i] as number) ? -1 : 1;
    return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
  }

  equals(other: Uint8Array): boolean {
    return Buffer.compare(this, other) === 0;
  }

  override toString(encoding?: string): string {
    if (encoding !== "hex") return new TextDecoder().decode(this);
    let s = "";
    for (const v of this) s += HEX[v];
    return s;
  }
}
