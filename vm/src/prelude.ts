/**
 * Evaluated once per engine, before the contract module; the engine's memory is then
 * snapshotted, and every call starts from that snapshot. It removes what would make a call
 * non-deterministic (Math.random, WeakRef, FinalizationRegistry; Date and eval are left out of the
 * context's intrinsics; eval and the Function constructors are removed here), installs the frozen `custos` API over one host function, and returns the
 * dispatcher. Host ops are numbered (see Op in vm.ts); the host keeps faults sticky, so a
 * contract that catches a revert, an oversized write or a read-only violation still fails.
 */
export const PRELUDE = `(function (host) {
  "use strict";
  delete Math.random;
  delete globalThis.WeakRef;
  delete globalThis.FinalizationRegistry;
  // The host compiles the contract itself; the contract gets no way to compile code.
  delete globalThis.eval;
  const noCompile = function () { throw new TypeError("code generation is disabled in contracts"); };
  for (const proto of [Function.prototype, Object.getPrototypeOf(function* () {}),
      Object.getPrototypeOf(async function () {}), Object.getPrototypeOf(async function* () {})]) {
    Object.defineProperty(proto, "constructor", { value: noCompile, writable: false, configurable: false });
  }
  Object.defineProperty(globalThis, "Function", { value: noCompile, writable: false, configurable: false });
  // Built-ins run unmetered; those whose work grows with an argument pay for their output here.
  const meter = (proto, name, size) => {
    const original = proto[name];
    Object.defineProperty(proto, name, { writable: false, configurable: false, value: function (...a) {
      host(12, size(this, a));
      return original.apply(this, a);
    } });
  };
  const len = (v) => (typeof v === "number" && v > 0 ? Math.min(v, 1e15) : 0);
  meter(String.prototype, "repeat", (s, a) => String(s).length * len(Number(a[0])));
  meter(String.prototype, "padStart", (s, a) => len(Number(a[0])));
  meter(String.prototype, "padEnd", (s, a) => len(Number(a[0])));
  meter(Array.prototype, "join", (s) => len(s.length));
  meter(Array.prototype, "fill", (s) => len(s.length));
  const isTag = (v) => v !== null && typeof v === "object" && !Array.isArray(v) &&
    typeof v.$n === "string" && Object.keys(v).length === 1;
  const dec = (s) => JSON.parse(s, (k, v) => (isTag(v) ? BigInt(v.$n) : v));
  const enc = (v) => {
    const s = JSON.stringify(v, (k, x) => (typeof x === "bigint" ? { $n: x.toString() } : x));
    return s === undefined ? "null" : s; // undefined, a function or a symbol: nothing to pass
  };
  // The call's environment, set by dispatch; contracts may hold on to custos.env at load time.
  let env;
  const envView = Object.freeze({
    get caller() { return env.caller; },
    get self() { return env.self; },
    get height() { return env.height; },
    get time() { return env.time; },
    get txHash() { return env.txHash; },
    get value() { return env.value; },
  });
  const str = (v, what) => {
    if (typeof v !== "string") throw new TypeError(what + " must be a string");
    return v;
  };
  const storage = Object.freeze({
    get(key) { const v = host(1, str(key, "key")); return v === undefined ? null : v; },
    has(key) { return host(2, str(key, "key")); },
    set(key, value) { host(3, str(key, "key"), str(value, "value")); },
    delete(key) { host(4, str(key, "key")); },
    scan(prefix, options) {
      const o = options || {};
      const start = o.start === undefined ? "" : str(o.start, "start");
      const limit = o.limit === undefined ? 100 : o.limit;
      if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError("limit must be a positive integer");
      return JSON.parse(host(5, str(prefix, "prefix"), start, limit));
    },
    getJson(key) { const v = this.get(key); return v === null ? null : dec(v); },
    setJson(key, value) { this.set(key, enc(value)); },
  });
  globalThis.custos = Object.freeze({
    storage,
    env: envView,
    balanceOf(address) { return host(6, str(address, "address")); },
    memberOf(address) { return JSON.parse(host(13, str(address, "address"))); },
    transfer(to, amount) {
      if (typeof amount !== "bigint") throw new TypeError("amount must be a bigint (fen)");
      host(7, str(to, "to"), amount);
    },
    emit(name, data, topics) {
      const t = topics === undefined ? [] : topics;
      if (!Array.isArray(t) || !t.every((x) => typeof x === "string")) throw new TypeError("topics must be an array of strings");
      host(8, str(name, "event name"), enc(data), JSON.stringify(t));
    },
    revert(code, message) {
      host(9, str(code, "code"), message === undefined ? "" : String(message));
      throw new Error("reverted: " + code);
    },
  });
  return function dispatch(ns, method, argsJson, envJson) {
    env = dec(envJson);
    const fn = ns[method];
    if (typeof fn !== "function") host(10, method);
    const out = fn.apply(undefined, dec(argsJson));
    if (out !== null && typeof out === "object" && typeof out.then === "function") host(11, method);
    return enc(out);
  };
})`;
