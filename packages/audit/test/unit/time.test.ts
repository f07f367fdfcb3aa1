import { describe, expect, it } from "vitest";
import { cstDay, cstDayStart, cstMonth, DAY_MS, parseTimeBound } from "../../src/index.js";

describe("time in audit figures (CST days)", () => {
  it("a CST day starts at 16:00 UTC the day before", () => {
    expect(cstDayStart("2026-05-01")).toBe(Date.UTC(2026, 3, 30, 16));
    expect(cstDay(Date.UTC(2026, 3, 30, 15, 59, 59, 999))).toBe("2026-04-30");
    expect(cstDay(Date.UTC(2026, 3, 30, 16))).toBe("2026-05-01");
    expect(cstMonth(Date.UTC(2026, 3, 30, 16))).toBe("2026-05");
  });

  it("parses dates (an end date is the end of that day), times (CST unless Z or an offset) and ms", () => {
    expect(parseTimeBound("2026-05-01", false)).toBe(cstDayStart("2026-05-01"));
    expect(parseTimeBound("2026-05-01", true)).toBe(cstDayStart("2026-05-01") + DAY_MS - 1);
    expect(parseTimeBound("2026-05-01T09:30", false)).toBe(Date.UTC(2026, 4, 1, 1, 30));
    expect(parseTimeBound("2026-05-01T09:30", true)).toBe(Date.UTC(2026, 4, 1, 1, 30) + 59_999);
    expect(parseTimeBound("2026-05-01T09:30:15Z", false)).toBe(Date.UTC(2026, 4, 1, 9, 30, 15));
    expect(parseTimeBound("2026-05-01T09:30+00:00", false)).toBe(Date.UTC(2026, 4, 1, 9, 30));
    expect(parseTimeBound("1777600000000", false)).toBe(1_777_600_000_000);
    expect(parseTimeBound(5, false)).toBe(5);
  });

  it("refuses what is not a time with AUDIT_INVALID_QUERY, naming the bound", () => {
    for (const bad of ["yesterday", "2026-13-01", "2026-02-30", "2026-05-01T25:00", "-5"])
      expect(() => parseTimeBound(bad, false, "--from")).toThrow(
        expect.objectContaining({ code: "AUDIT_INVALID_QUERY", message: expect.stringContaining("--from") }),
      );
    expect(() => parseTimeBound("soon", true, "--to")).toThrow(/--to "soon"/);
  });
});
