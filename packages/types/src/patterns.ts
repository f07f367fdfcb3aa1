/**
 * The shapes of identifiers that every part of the chain checks the same way: an address and an
 * SM3 hash, `0x` + lowercase hex. Defined once in @custos/crypto (where addresses are derived and
 * hashes computed) and named here with the other chain rules.
 */
export { ADDRESS_RE, HASH_RE } from "@custos/crypto";
