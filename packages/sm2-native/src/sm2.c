/*
 * @custos/sm2-native: SM2 (GB/T 32918) sign/verify over the OpenSSL 3 that Node itself exports.
 *
 * Profile fixed by the chain: curve sm2p256v1, distinguishing ID "1234567812345678",
 * e = SM3(Z_A || M), signatures as raw 64-byte r||s, public keys 33 (compressed) or 65
 * (uncompressed) bytes. Z_A and e are computed here, so OpenSSL's own default-ID handling never
 * matters; signing then uses OpenSSL's SM2 provider over e (EVP_PKEY_sign), verification uses
 * the EC primitives directly: one double-scalar multiplication s*G + t*P on a precomputed group.
 *
 * Verification returns 0 for every malformed input and never raises on the bytes it is given.
 * All work is on caller-owned copies, so the batch path runs on libuv's thread pool.
 */
#define NAPI_VERSION 8
#define OPENSSL_SUPPRESS_DEPRECATED
#include <node_api.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sm2_curve.h"

#define SM2_ID "1234567812345678"
#define SM2_ID_LEN 16
#define ZA_PREFIX_LEN (2 + SM2_ID_LEN + 4 * 32)
#define PUB_SLOT 66 /* batch layout: 1 length byte + up to 65 key bytes */

static EC_GROUP *g_group;
static const BIGNUM *g_order;
static BIGNUM *g_order_minus_1;
static EVP_MD *g_sm3;
static unsigned char g_za_prefix[ZA_PREFIX_LEN];
static _Thread_local BN_CTX *tl_bn_ctx;

static BN_CTX *bn_ctx(void) {
  if (tl_bn_ctx == NULL) tl_bn_ctx = BN_CTX_new();
  return tl_bn_ctx;
}

static int sm3_2(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen, unsigned char out[32]) {
  unsigned int n = 0;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c != NULL && EVP_DigestInit_ex(c, g_sm3, NULL) && EVP_DigestUpdate(c, a, alen) &&
           (blen == 0 || EVP_DigestUpdate(c, b, blen)) && EVP_DigestFinal_ex(c, out, &n) && n == 32;
  EVP_MD_CTX_free(c);
  return ok;
}

/* Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA). */
static int compute_za(const unsigned char xy[64], unsigned char za[32]) {
  unsigned char buf[ZA_PREFIX_LEN + 64];
  memcpy(buf, g_za_prefix, ZA_PREFIX_LEN);
  memcpy(buf + ZA_PREFIX_LEN, xy, 64);
  return sm3_2(buf, sizeof buf, NULL, 0, za);
}

/* e = SM3(Z_A || M). */
static int compute_e(const unsigned char xy[64], const unsigned char *msg, size_t msglen, unsigned char e[32]) {
  unsigned char za[32];
  return compute_za(xy, za) && sm3_2(za, 32, msg, msglen, e);
}

/*
 * What verification derives from a public key alone: decoding it (a square root for a compressed
 * key), Z_A, and the table of its odd multiples. A chain's senders are its members, few and
 * signing over and over, so each verifying thread keeps the last keys it saw. A key found here
 * again gets the rest of its table (sm2c_qtable_extend), after which its verifications need an
 * eighth of the doublings; a key seen once does not pay for that (benchmarks/README.md, crypto,
 * has the rates of both). Four-way set-associative, least recently used out, keyed by the exact key bytes; only
 * keys that decoded to a point on the curve get in. Thread-local (the verifying threads never
 * share an entry).
 */
typedef struct {
  unsigned char len; /* 0: empty */
  unsigned char key[65];
  unsigned char za[32];
  uint32_t used; /* this thread's lookup count when last found or filled */
  sm2c_qtable table;
} key_entry;

#define KEY_CACHE_WAYS 4
#define KEY_CACHE_SET_BITS 7
#define KEY_CACHE_SETS (1 << KEY_CACHE_SET_BITS) /* 512 keys, ~2.1 MiB a thread (calloc: pages are touched as keys arrive) */
static _Thread_local key_entry *tl_keys;
static _Thread_local uint32_t tl_lookups;

/*
 * The set of a key: a multiplicative hash of bytes from both ends of it. Senders choose their
 * keys, so anyone can make keys that share a set (a few hundred tries); that costs only speed,
 * and least-recently-used eviction keeps it to the keys in that set.
 */
static unsigned key_set(const unsigned char *pub, size_t publen) {
  uint32_t h = 0;
  for (int i = 1; i <= 8; i++) h = (h << 8 | h >> 24) ^ pub[i] ^ ((uint32_t)pub[publen - i] << 16);
  return (unsigned)((h * 0x9E3779B1u) >> (32 - KEY_CACHE_SET_BITS));
}

/*
 * The entry for `pub`, filled on a miss; NULL when the key is not a point on the curve (then
 * nothing is evicted for it).
 */
static const key_entry *key_info(const unsigned char *pub, size_t publen, key_entry *scratch) {
  if (tl_keys == NULL) tl_keys = calloc(KEY_CACHE_SETS * KEY_CACHE_WAYS, sizeof(key_entry));
  key_entry *ways = NULL;
  const uint32_t now = ++tl_lookups;
  if (tl_keys != NULL) {
    ways = &tl_keys[key_set(pub, publen) * KEY_CACHE_WAYS];
    for (int w = 0; w < KEY_CACHE_WAYS; w++) {
      key_entry *c = &ways[w];
      if (c->len == publen && memcmp(c->key, pub, publen) == 0) {
        c->used = now;
        sm2c_qtable_extend(&c->table);
        return c;
      }
    }
  }
  unsigned char xy[64], za[32];
  if (!sm2c_decode_point(xy, pub, publen) || !compute_za(xy, za)) return NULL;
  key_entry *e = scratch;
  if (ways != NULL) {
    /* the victim: an empty way, else the one unused longest (counts wrap: compared by distance) */
    e = &ways[0];
    for (int w = 1; w < KEY_CACHE_WAYS; w++) {
      key_entry *c = &ways[w];
      if (e->len != 0 && (c->len == 0 || now - c->used > now - e->used)) e = c;
    }
  }
  e->used = now;
  memcpy(e->za, za, 32);
  sm2c_qtable_init(&e->table, xy, xy + 32);
  memcpy(e->key, pub, publen);
  e->len = (unsigned char)publen;
  return e;
}

static int point_xy(const EC_POINT *p, unsigned char xy[64], BN_CTX *ctx) {
  int ok = 0;
  BN_CTX_start(ctx);
  BIGNUM *x = BN_CTX_get(ctx), *y = BN_CTX_get(ctx);
  if (y != NULL && EC_POINT_get_affine_coordinates(g_group, p, x, y, ctx))
    ok = BN_bn2binpad(x, xy, 32) == 32 && BN_bn2binpad(y, xy + 32, 32) == 32;
  BN_CTX_end(ctx);
  return ok;
}

/*
 * SM2 verification. reference = 0: points decoded and s*G + t*P computed by sm2_curve.c;
 * reference = 1: the same through OpenSSL (EC_POINT_oct2point, EC_POINT_mul), kept so that tests
 * can compare the two on every kind of input. digest: e itself (32 bytes) instead of
 * SM3(Z_A || msg), for tests that need a chosen e; NULL in every other use.
 */
static int verify_core(const unsigned char *pub, size_t publen, const unsigned char *msg, size_t msglen,
                       const unsigned char *sig, size_t siglen, int reference, const unsigned char *digest) {
  int ok = 0;
  BN_CTX *ctx = bn_ctx();
  EC_POINT *P = NULL, *Q = NULL;
  unsigned char xy[64], e[32], sb[32], tb[32], cb[32];
  if (ctx == NULL || siglen != 64) return 0;
  if (!(publen == 33 && (pub[0] == 2 || pub[0] == 3)) && !(publen == 65 && pub[0] == 4)) return 0;
  BN_CTX_start(ctx);
  BIGNUM *r = BN_CTX_get(ctx), *s = BN_CTX_get(ctx), *t = BN_CTX_get(ctx), *x1 = BN_CTX_get(ctx),
         *be = BN_CTX_get(ctx);
  if (be == NULL || !BN_bin2bn(sig, 32, r) || !BN_bin2bn(sig + 32, 32, s)) goto done;
  /* r, s in [1, n-1] */
  if (BN_is_zero(r) || BN_cmp(r, g_order) >= 0 || BN_is_zero(s) || BN_cmp(s, g_order) >= 0) goto done;
  /* t = (r + s) mod n, t != 0 (r + s = n is rejected here) */
  if (!BN_mod_add(t, r, s, g_order, ctx) || BN_is_zero(t)) goto done;
  if (reference) {
    /* on the curve (cofactor 1: on the curve = in the group), not infinity */
    P = EC_POINT_new(g_group);
    if (P == NULL || !EC_POINT_oct2point(g_group, P, pub, publen, ctx) || EC_POINT_is_at_infinity(g_group, P) ||
        !point_xy(P, xy, ctx))
      goto done;
    if (digest != NULL)
      memcpy(e, digest, 32);
    else if (!compute_e(xy, msg, msglen, e))
      goto done;
    /* (x1, y1) = s*G + t*P, not the point at infinity; R = (e + x1) mod n == r */
    Q = EC_POINT_new(g_group);
    if (Q == NULL || !EC_POINT_mul(g_group, Q, s, P, t, ctx) || EC_POINT_is_at_infinity(g_group, Q) ||
        !EC_POINT_get_affine_coordinates(g_group, Q, x1, NULL, ctx) || !BN_bin2bn(e, 32, be) ||
        !BN_mod_add(x1, x1, be, g_order, ctx))
      goto done;
    ok = BN_cmp(x1, r) == 0;
  } else {
    key_entry scratch;
    const key_entry *k = key_info(pub, publen, &scratch);
    /* R = (e + x1) mod n == r  <=>  x1 = (r - e) mod n, or that plus n (x1 < p, n < p) */
    if (k == NULL) goto done;
    if (digest != NULL)
      memcpy(e, digest, 32);
    else if (!sm3_2(k->za, 32, msg, msglen, e))
      goto done;
    if (BN_bn2binpad(s, sb, 32) != 32 || BN_bn2binpad(t, tb, 32) != 32 || !BN_bin2bn(e, 32, be) ||
        !BN_mod_sub(x1, r, be, g_order, ctx) || BN_bn2binpad(x1, cb, 32) != 32)
      goto done;
    ok = sm2c_double_mul_x_matches(sb, tb, &k->table, cb);
  }
done:
  EC_POINT_free(P);
  EC_POINT_free(Q);
  BN_CTX_end(ctx);
  ERR_clear_error();
  return ok;
}

/* d in [1, n-2]; writes the uncompressed public key 04||x||y. */
static int public_from_private(const unsigned char priv[32], unsigned char pub65[65], BIGNUM *d, BN_CTX *ctx) {
  int ok = 0;
  EC_POINT *P = NULL;
  if (!BN_bin2bn(priv, 32, d) || BN_is_zero(d) || BN_cmp(d, g_order_minus_1) >= 0) goto done;
  P = EC_POINT_new(g_group);
  if (P == NULL || !EC_POINT_mul(g_group, P, d, NULL, NULL, ctx)) goto done;
  pub65[0] = 4;
  ok = point_xy(P, pub65 + 1, ctx);
done:
  EC_POINT_free(P);
  return ok;
}

/*
 * The last signing key of this thread, as an EVP_PKEY with its public key: a node signs with one
 * key over and over, and rebuilding the key costs as much as the signature itself.
 */
static _Thread_local struct {
  unsigned char priv[32];
  unsigned char pub65[65];
  EVP_PKEY *pkey;
} tl_signer;

static EVP_PKEY *signer_key(const unsigned char priv[32], unsigned char pub65[65], BN_CTX *ctx) {
  if (tl_signer.pkey != NULL && CRYPTO_memcmp(tl_signer.priv, priv, 32) == 0) {
    memcpy(pub65, tl_signer.pub65, 65);
    return tl_signer.pkey;
  }
  EVP_PKEY *pkey = NULL;
  OSSL_PARAM_BLD *bld = NULL;
  OSSL_PARAM *params = NULL;
  EVP_PKEY_CTX *kctx = NULL;
  BN_CTX_start(ctx);
  BIGNUM *d = BN_CTX_get(ctx);
  if (d == NULL) goto done;
  BN_set_flags(d, BN_FLG_CONSTTIME);
  if (!public_from_private(priv, pub65, d, ctx)) goto done;
  /* The key type must be "SM2": a plain EC key would sign ECDSA. */
  bld = OSSL_PARAM_BLD_new();
  if (bld == NULL || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "SM2", 0) ||
      !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
      !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub65, 65))
    goto done;
  params = OSSL_PARAM_BLD_to_param(bld);
  kctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
  if (params == NULL || kctx == NULL || EVP_PKEY_fromdata_init(kctx) <= 0 ||
      EVP_PKEY_fromdata(kctx, &pkey, EVP_PKEY_KEYPAIR, params) <= 0) {
    pkey = NULL;
    goto done;
  }
  EVP_PKEY_free(tl_signer.pkey);
  tl_signer.pkey = pkey;
  memcpy(tl_signer.priv, priv, 32);
  memcpy(tl_signer.pub65, pub65, 65);
done:
  EVP_PKEY_CTX_free(kctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_CTX_end(ctx);
  return pkey;
}

static int sign_core(const unsigned char priv[32], const unsigned char *msg, size_t msglen, unsigned char out[64]) {
  int ok = 0;
  BN_CTX *ctx = bn_ctx();
  unsigned char pub65[65], e[32], der[80];
  size_t derlen = sizeof der;
  EVP_PKEY_CTX *sctx = NULL;
  ECDSA_SIG *sig = NULL;
  EVP_PKEY *pkey = ctx == NULL ? NULL : signer_key(priv, pub65, ctx);
  if (pkey == NULL || !compute_e(pub65 + 1, msg, msglen, e)) goto done;
  sctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
  /* Signs the 32-byte digest e as given (no second hashing). */
  if (sctx == NULL || EVP_PKEY_sign_init(sctx) <= 0 || EVP_PKEY_sign(sctx, der, &derlen, e, 32) <= 0) goto done;
  const unsigned char *p = der;
  sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
  if (sig == NULL) goto done;
  ok = BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32) == 32 && BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32) == 32;
done:
  ECDSA_SIG_free(sig);
  EVP_PKEY_CTX_free(sctx);
  OPENSSL_cleanse(e, sizeof e);
  ERR_clear_error();
  return ok;
}

/* ---------- N-API glue ---------- */

#define CALL(env, expr)                                                                            \
  do {                                                                                             \
    if ((expr) != napi_ok) {                                                                       \
      napi_throw_error((env), "SM2_NATIVE_NAPI", "N-API call failed: " #expr);                     \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

/* Returns 1 and fills data/len when v is a Uint8Array (Buffers are), 0 otherwise. */
static int get_bytes(napi_env env, napi_value v, unsigned char **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return 0;
  if (napi_get_typedarray_info(env, v, &type, len, (void **)data, &ab, &off) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  if (*len == 0) *data = (unsigned char *)"";
  return 1;
}

static napi_value make_buffer(napi_env env, const unsigned char *src, size_t len) {
  napi_value out;
  void *dst;
  if (napi_create_buffer_copy(env, len, src, &dst, &out) != napi_ok) return NULL;
  return out;
}

static napi_value verify_js(napi_env env, napi_callback_info info, int reference) {
  size_t argc = 3;
  napi_value argv[3], result;
  unsigned char *pub, *msg, *sig;
  size_t publen, msglen, siglen;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int ok = argc == 3 && get_bytes(env, argv[0], &pub, &publen) && get_bytes(env, argv[1], &msg, &msglen) &&
           get_bytes(env, argv[2], &sig, &siglen) && verify_core(pub, publen, msg, msglen, sig, siglen, reference, NULL);
  CALL(env, napi_get_boolean(env, ok, &result));
  return result;
}

/* verifyDigest(pub, e: 32 bytes, sig, reference: boolean): the check with e given (tests). */
static napi_value js_verify_digest(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  unsigned char *pub, *e, *sig;
  size_t publen, elen, siglen;
  bool reference = false;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4 || !get_bytes(env, argv[0], &pub, &publen) || !get_bytes(env, argv[1], &e, &elen) || elen != 32 ||
      !get_bytes(env, argv[2], &sig, &siglen) || napi_get_value_bool(env, argv[3], &reference) != napi_ok) {
    napi_throw_type_error(env, "SM2_INVALID_ARGUMENT",
                          "verifyDigest(publicKey, e: 32 bytes, signature, reference: boolean)");
    return NULL;
  }
  int ok = verify_core(pub, publen, NULL, 0, sig, siglen, reference ? 1 : 0, e);
  CALL(env, napi_get_boolean(env, ok, &result));
  return result;
}

static napi_value js_verify(napi_env env, napi_callback_info info) { return verify_js(env, info, 0); }
static napi_value js_verify_reference(napi_env env, napi_callback_info info) { return verify_js(env, info, 1); }

static napi_value js_sign(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  unsigned char *priv, *msg, out[64];
  size_t privlen, msglen;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 2 || !get_bytes(env, argv[0], &priv, &privlen) || privlen != 32 ||
      !get_bytes(env, argv[1], &msg, &msglen)) {
    napi_throw_type_error(env, "SM2_INVALID_ARGUMENT", "sign(privateKey: 32 bytes, message: Uint8Array)");
    return NULL;
  }
  if (!sign_core(priv, msg, msglen, out)) {
    napi_throw_error(env, "SM2_INVALID_PRIVATE_KEY", "private key must be in [1, n-2]");
    return NULL;
  }
  return make_buffer(env, out, 64);
}

static napi_value js_public_key(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  unsigned char *priv, pub[65];
  size_t privlen;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1 || !get_bytes(env, argv[0], &priv, &privlen) || privlen != 32) {
    napi_throw_type_error(env, "SM2_INVALID_ARGUMENT", "publicKey(privateKey: 32 bytes)");
    return NULL;
  }
  BN_CTX *ctx = bn_ctx();
  int ok = 0;
  if (ctx != NULL) {
    BN_CTX_start(ctx);
    BIGNUM *d = BN_CTX_get(ctx);
    if (d != NULL) {
      BN_set_flags(d, BN_FLG_CONSTTIME);
      ok = public_from_private(priv, pub, d, ctx);
    }
    BN_CTX_end(ctx);
  }
  ERR_clear_error();
  if (!ok) {
    napi_throw_error(env, "SM2_INVALID_PRIVATE_KEY", "private key must be in [1, n-2]");
    return NULL;
  }
  return make_buffer(env, pub, 65);
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  size_t n;
  unsigned char *pubs;   /* n * PUB_SLOT */
  unsigned char *msgs;   /* concatenated messages */
  uint32_t *offsets;     /* n + 1 */
  unsigned char *sigs;   /* n * 64 */
  unsigned char *results;
} batch_t;

static void batch_free(batch_t *b) {
  free(b->pubs);
  free(b->msgs);
  free(b->offsets);
  free(b->sigs);
  free(b->results);
  free(b);
}

static void batch_execute(napi_env env, void *data) {
  (void)env;
  batch_t *b = data;
  for (size_t i = 0; i < b->n; i++) {
    const unsigned char *slot = b->pubs + i * PUB_SLOT;
    uint32_t start = b->offsets[i], end = b->offsets[i + 1];
    b->results[i] = (unsigned char)verify_core(slot + 1, slot[0], b->msgs + start, end - start, b->sigs + i * 64, 64, 0, NULL);
  }
}

static void batch_complete(napi_env env, napi_status status, void *data) {
  batch_t *b = data;
  napi_value out;
  if (status == napi_ok && (out = make_buffer(env, b->results, b->n)) != NULL) {
    napi_resolve_deferred(env, b->deferred, out);
  } else {
    napi_value msg, err;
    napi_create_string_utf8(env, "SM2 batch verification did not run", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, b->deferred, err);
  }
  napi_delete_async_work(env, b->work);
  batch_free(b);
}

static void *dup_bytes(const void *src, size_t len) {
  void *p = malloc(len == 0 ? 1 : len);
  if (p != NULL && len > 0) memcpy(p, src, len);
  return p;
}

/*
 * verifyBatch(pubs: n*66 bytes [len, key...], msgs: bytes, offsets: Uint32Array(n+1), sigs: n*64)
 *   -> Promise<Buffer(n)> of 0/1, computed on the libuv thread pool.
 * The layout is checked here; a malformed layout is a programming error and throws.
 */
static napi_value js_verify_batch(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], promise, resname;
  unsigned char *pubs, *msgs, *sigs;
  size_t publen, msglen, siglen, offcount;
  uint32_t *offsets;
  bool is_ta = false;
  napi_typedarray_type type;
  napi_value ab;
  size_t byteoff;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int ok = argc == 4 && get_bytes(env, argv[0], &pubs, &publen) && get_bytes(env, argv[1], &msgs, &msglen) &&
           get_bytes(env, argv[3], &sigs, &siglen);
  if (ok) {
    ok = napi_is_typedarray(env, argv[2], &is_ta) == napi_ok && is_ta &&
         napi_get_typedarray_info(env, argv[2], &type, &offcount, (void **)&offsets, &ab, &byteoff) == napi_ok &&
         type == napi_uint32_array;
  }
  size_t n = ok ? publen / PUB_SLOT : 0;
  ok = ok && publen % PUB_SLOT == 0 && siglen == n * 64 && offcount == n + 1 && offsets[0] == 0 &&
       offsets[n] == msglen;
  for (size_t i = 0; ok && i < n; i++) ok = offsets[i] <= offsets[i + 1];
  if (!ok) {
    napi_throw_type_error(env, "SM2_INVALID_ARGUMENT", "verifyBatch: inconsistent batch layout");
    return NULL;
  }
  batch_t *b = calloc(1, sizeof *b);
  if (b == NULL) {
    napi_throw_error(env, "SM2_NATIVE_OOM", "out of memory");
    return NULL;
  }
  b->n = n;
  b->pubs = dup_bytes(pubs, publen);
  b->msgs = dup_bytes(msgs, msglen);
  b->offsets = dup_bytes(offsets, (n + 1) * sizeof(uint32_t));
  b->sigs = dup_bytes(sigs, siglen);
  b->results = calloc(n == 0 ? 1 : n, 1);
  if (!b->pubs || !b->msgs || !b->offsets || !b->sigs || !b->results) {
    batch_free(b);
    napi_throw_error(env, "SM2_NATIVE_OOM", "out of memory");
    return NULL;
  }
  CALL(env, napi_create_promise(env, &b->deferred, &promise));
  CALL(env, napi_create_string_utf8(env, "custos:sm2-verify-batch", NAPI_AUTO_LENGTH, &resname));
  CALL(env, napi_create_async_work(env, NULL, resname, batch_execute, batch_complete, b, &b->work));
  CALL(env, napi_queue_async_work(env, b->work));
  return promise;
}

static int init_curve(void) {
  BN_CTX *ctx = bn_ctx();
  g_group = EC_GROUP_new_by_curve_name(NID_sm2);
  g_sm3 = EVP_MD_fetch(NULL, "SM3", NULL);
  if (ctx == NULL || g_group == NULL || g_sm3 == NULL) return 0;
  g_order = EC_GROUP_get0_order(g_group);
  g_order_minus_1 = BN_dup(g_order);
  if (g_order_minus_1 == NULL || !BN_sub_word(g_order_minus_1, 1)) return 0;
  /* Precomputed multiples of G make s*G cheap; the group is read-only afterwards (thread-safe). */
  if (!EC_GROUP_precompute_mult(g_group, ctx)) return 0;
  /* Z_A prefix: ENTL (bit length of the ID, 2 bytes) || ID || a || b || xG || yG */
  unsigned char *p = g_za_prefix;
  *p++ = (SM2_ID_LEN * 8) >> 8;
  *p++ = (SM2_ID_LEN * 8) & 0xff;
  memcpy(p, SM2_ID, SM2_ID_LEN);
  p += SM2_ID_LEN;
  BIGNUM *pp = BN_new(), *a = BN_new(), *bb = BN_new(), *gx = BN_new(), *gy = BN_new();
  unsigned char pbytes[32], nbytes[32];
  int ok = pp && a && bb && gx && gy && EC_GROUP_get_curve(g_group, pp, a, bb, ctx) &&
           EC_POINT_get_affine_coordinates(g_group, EC_GROUP_get0_generator(g_group), gx, gy, ctx) &&
           BN_bn2binpad(a, p, 32) == 32 && BN_bn2binpad(bb, p + 32, 32) == 32 && BN_bn2binpad(gx, p + 64, 32) == 32 &&
           BN_bn2binpad(gy, p + 96, 32) == 32 && BN_bn2binpad(pp, pbytes, 32) == 32 &&
           BN_bn2binpad(g_order, nbytes, 32) == 32 && sm2c_init(pbytes, nbytes, p + 32, p + 64, p + 96);
  BN_free(pp);
  BN_free(a);
  BN_free(bb);
  BN_free(gx);
  BN_free(gy);
  ERR_clear_error();
  return ok;
}

static napi_value init(napi_env env, napi_value exports) {
  static int inited = 0, init_ok = 0;
  if (!inited) {
    inited = 1;
    init_ok = init_curve();
  }
  if (!init_ok) {
    napi_throw_error(env, "SM2_NATIVE_UNAVAILABLE", "OpenSSL in this Node has no usable SM2/SM3");
    return NULL;
  }
  napi_property_descriptor props[] = {
      {"verify", NULL, js_verify, NULL, NULL, NULL, napi_default, NULL},
      {"verifyReference", NULL, js_verify_reference, NULL, NULL, NULL, napi_default, NULL},
      {"verifyDigest", NULL, js_verify_digest, NULL, NULL, NULL, napi_default, NULL},
      {"sign", NULL, js_sign, NULL, NULL, NULL, napi_default, NULL},
      {"publicKey", NULL, js_public_key, NULL, NULL, NULL, napi_default, NULL},
      {"verifyBatch", NULL, js_verify_batch, NULL, NULL, NULL, napi_default, NULL},
  };
  CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
