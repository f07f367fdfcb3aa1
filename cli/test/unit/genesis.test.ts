import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sm3 } from "@custos/crypto";
import { encodeGenesis, parseGenesis } from "@custos/types";
import { toHex } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../../bin/custos.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "custos-genesis-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const custos = (args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: "utf8" });

describe("custos genesis", { timeout: 120_000 }, () => {
  it("assembles a genesis from what members share (public keys, peer ids, addresses)", () => {
    writeFileSync(join(dir, "pw"), "secret\n");
    const members = ["a", "b"].map((h) =>
      JSON.parse(custos(["init", "--home", h, "--password-file", "pw", "--json"]).stdout),
    );
    expect(members[0].genesisFile).toBeNull(); // no genesis yet: none is claimed
    // as a person reads it: no genesis file that does not exist, and the next step as commands
    const human = custos(["init", "--home", "c", "--password-file", "pw"]);
    expect(human.status).toBe(0);
    expect(human.stdout).not.toMatch(/issue/);
    expect(human.stdout).toMatch(/^genesis: +none yet; c\/genesis\.json must be the chain's genesis file$/m);
    expect(human.stdout).toMatch(/custos genesis --out genesis\.json --validator /);
    expect(human.stdout).toMatch(/custos node start --home c$/m);
    const field = (name: string) => new RegExp(`^${name}: +(\\S+)$`, "m").exec(human.stdout)?.[1];
    members.push({ nodePublicKey: field("public key"), peerId: field("peer id") });
    const op = JSON.parse(
      custos(["keygen", "--out", "op.json", "--password-file", "pw", "--kdf-iterations", "1000", "--json"])
        .stdout,
    );
    const args = [
      "genesis",
      "--out",
      "genesis.json",
      "--chain-id",
      "consortium-1",
      "--json",
      ...members
        .slice(0, 2)
        .flatMap((m, i) => [
          "--validator",
          `v${i},${m.nodePublicKey},${m.peerId},/ip4/10.0.0.${i + 1}/tcp/30300`,
        ]),
      "--observer",
      `auditor-node,${members[2].nodePublicKey},${members[2].peerId}`,
      "--member",
      `operator,${op.publicKey},operator,1`,
    ];
    const r = custos(args);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    const g = parseGenesis(JSON.parse(readFileSync(join(dir, "genesis.json"), "utf8")));
    expect(doc).toMatchObject({
      chainId: "consortium-1",
      validators: 2,
      observers: 1,
      members: 1,
      genesisHash: `0x${toHex(sm3(encodeGenesis(g)))}`,
      p2pSecure: "sm",
    });
    // a new chain's nodes talk over national algorithms; its genesis says so
    expect(g.p2p).toEqual({ secure: "sm", explicit: true });
    // the peer id init printed is the one derived from the node key (no separate libp2p key)
    expect(existsSync(join(dir, "a", "keys", "p2p.json"))).toBe(false);
    const oldStyle = custos([
      ...args.map((a) => (a === "genesis.json" ? "g-noise.json" : a)),
      "--p2p-secure",
      "noise",
    ]);
    expect(JSON.parse(oldStyle.stdout).p2pSecure).toBe("noise");
    const badSecure = custos([
      ...args.map((a) => (a === "genesis.json" ? "g-x.json" : a)),
      "--p2p-secure",
      "tls",
    ]);
    expect(badSecure.status).toBe(2);
    expect(badSecure.stderr).toMatch(/--p2p-secure takes sm or noise/);
    expect(g.consensus.validators.map((v) => v.peerId)).toEqual(members.slice(0, 2).map((m) => m.peerId));
    expect(g.observers.map((o) => [o.name, o.peerId, o.p2p])).toEqual([
      ["auditor-node", members[2].peerId, []],
    ]);
    expect(g.members[0]?.address).toBe(op.address);
    // never overwritten; bad input is one line with its code
    expect(custos(args).stderr).toMatch(/FILE_NOT_WRITABLE/);
    const noPeer = custos([
      "genesis",
      "--out",
      "g2.json",
      "--chain-id",
      "c",
      "--validator",
      "x,y",
      "--member",
      `o,${op.publicKey},operator`,
    ]);
    expect(noPeer.status).toBe(2);
    const badPeer = custos([
      "genesis",
      "--out",
      "g3.json",
      "--chain-id",
      "c",
      "--validator",
      `v0,${members[0].nodePublicKey},12D3KooWnope,/ip4/1.2.3.4/tcp/1`,
      "--validator",
      `v1,${members[1].nodePublicKey},${members[1].peerId},/ip4/1.2.3.5/tcp/1`,
      "--member",
      `o,${op.publicKey},operator`,
    ]);
    expect(badPeer.status).toBe(1);
    expect(badPeer.stderr).toMatch(/genesis\.consensus\.validators\[0\]\.peerId.*GENESIS_INVALID/);
  });
});
