import { describe, expect, it } from "vitest";
import { decodeMember, encodeMember, type Member } from "../../src/system/members.js";

const A = "0x1111111111111111111111111111111111111111";
const B = "0x2222222222222222222222222222222222222222";
const member = (o: Partial<Member> = {}): Member => ({
  address: A,
  name: "bank",
  roles: ["operator"],
  ecnyTier: 1,
  publicKey: new Uint8Array(33).fill(2),
  ...o,
});

describe("member records", () => {
  it("decodes the same stored bytes once, and hands out a frozen record", () => {
    const raw = encodeMember(member());
    const m = decodeMember(A, raw);
    expect(m).toMatchObject({ address: A, name: "bank", roles: ["operator"], ecnyTier: 1 });
    expect(decodeMember(A, raw)).toBe(m);
    expect(Object.isFrozen(m) && Object.isFrozen(m.roles)).toBe(true);
    expect(() => (m.roles as string[]).push("regulator")).toThrow(TypeError);
  });

  it("decodes again for other bytes or another address", () => {
    const raw = encodeMember(member());
    const m = decodeMember(A, raw);
    const same = Uint8Array.from(raw); // equal bytes, another array: decoded on its own
    expect(decodeMember(A, same)).not.toBe(m);
    expect(decodeMember(A, same)).toEqual(m);
    expect(decodeMember(B, raw).address).toBe(B);
    const changed = encodeMember(member({ roles: ["operator", "regulator"], ecnyTier: 2 }));
    expect(decodeMember(A, changed)).toMatchObject({ roles: ["operator", "regulator"], ecnyTier: 2 });
  });
});
