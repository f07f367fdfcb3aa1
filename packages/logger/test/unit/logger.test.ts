import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/index.js";

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
  };
}

describe("pino logger", () => {
  it("writes structured JSON lines with child bindings and exact bigints", () => {
    const out = capture();
    const log = createLogger({ level: "debug", destination: out.stream, bindings: { node: "v0" } });
    const consensus = log.child({ module: "consensus" });
    consensus.info("block committed", { height: 7, amount: 12345678901234567890n });
    log.trace("dropped at debug level");
    const [line, ...rest] = out.lines();
    expect(rest).toHaveLength(0);
    expect(line).toMatchObject({
      level: "info",
      node: "v0",
      module: "consensus",
      height: 7,
      amount: "12345678901234567890",
      msg: "block committed",
    });
    expect(typeof line?.time).toBe("string");
  });
});
