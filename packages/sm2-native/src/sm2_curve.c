/*
 * Variable-time double-scalar multiplication on sm2p256v1 (GB/T 32918.5), used only to verify
 * signatures, where every input is public. Node's bundled OpenSSL 3.0 has no specialised SM2
 * code and runs s*G + t*Q through generic BIGNUM Montgomery arithmetic; this file does the same
 * mathematics on fixed 4x64-bit limbs, which is what makes >3,000 verifications/s per core
 * possible here. Secret-key operations (signing, key derivation) never come here: they stay in
 * OpenSSL's constant-time code.
 *
 * Field elements are in Montgomery form (R = 2^256), always fully reduced (< p), so equality is
 * limb equality. The low limb of p is 2^64 - 1, hence -p^-1 mod 2^64 = 1. Points are Jacobian
 * (X, Y, Z) with Z = 0 for infinity; a = -3, so doubling uses dbl-2001-b. The multiplication is
 * interleaved wNAF: window 8 over a precomputed affine table of G, window 5 over Q. A key seen
 * more than once also gets tables of 2^32 Q, 2^64 Q, ..., 2^224 Q (G has them from the start):
 * the scalars' wNAF digits are then taken in eight interleaved 32-digit runs, which needs 32
 * doublings instead of 256 and the same number of additions. The result is
 * compared with the signature's candidates for x in Jacobian form (X = x Z^2), so no field
 * inversion is done per verification (it was ~15 % of one: an exponentiation by p - 2).
 * Correctness is checked in the tests against OpenSSL's own SM2 verification.
 */
#include "sm2_curve.h"

#include <string.h>

typedef unsigned __int128 u128;
typedef uint64_t fe[4];

typedef struct {
  fe x, y, z;
} jpoint;

#define WG 8
#define WQ 5
#define TG (1 << (WG - 2))
#define TQ (1 << (WQ - 2))
#define COMB SM2C_COMB              /* runs of digits, with a table each: 2^(SPAN k) times the point */
#define SPAN (256 / COMB)

/* the prime of sm2p256v1, plain: a constant, so that the compiler folds it into the arithmetic */
static const fe P = {0xFFFFFFFFFFFFFFFFull, 0xFFFFFFFF00000000ull, 0xFFFFFFFFFFFFFFFFull, 0xFFFFFFFEFFFFFFFFull};
static fe ONE;    /* R mod p */
static fe R2;     /* R^2 mod p */
static fe SQRT_E; /* (p + 1) / 4, plain: p = 3 mod 4, so a square root of a is a^((p+1)/4) */
static fe B_M;    /* curve b, Montgomery form */
/* the group order, plain */
static const fe N = {0x53BBF40939D54123ull, 0x7203DF6B21C6052Bull, 0xFFFFFFFFFFFFFFFFull, 0xFFFFFFFEFFFFFFFFull};
/* GX[k][i], GY[k][i]: (2i + 1) 2^(SPAN k) G, i < 2^(WG-2), Montgomery affine */
static fe GX[COMB][TG], GY[COMB][TG];

static void fe_from_bytes(fe r, const unsigned char b[32]) {
  for (int i = 0; i < 4; i++) {
    uint64_t v = 0;
    for (int j = 0; j < 8; j++) v = (v << 8) | b[(3 - i) * 8 + j];
    r[i] = v;
  }
}

static void fe_to_bytes(unsigned char b[32], const fe a) {
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 8; j++) b[(3 - i) * 8 + j] = (unsigned char)(a[i] >> (56 - 8 * j));
}

static int fe_is_zero(const fe a) { return (a[0] | a[1] | a[2] | a[3]) == 0; }

/* r = a - p if a (with carry bit hi) >= p, else a. */
static inline void fe_reduce_once(fe r, const uint64_t a[4], uint64_t hi) {
  uint64_t d[4];
  u128 borrow = 0;
  for (int i = 0; i < 4; i++) {
    u128 v = (u128)a[i] - P[i] - borrow;
    d[i] = (uint64_t)v;
    borrow = (v >> 64) & 1;
  }
  /* a >= p  <=>  hi set, or no borrow (a branch: measured faster here than selecting by mask) */
  if (hi || !borrow) memcpy(r, d, sizeof d);
  else if (r != a) memcpy(r, a, sizeof(fe));
}

static inline void fe_add(fe r, const fe a, const fe b) {
  uint64_t s[4];
  u128 c = 0;
  for (int i = 0; i < 4; i++) {
    c += (u128)a[i] + b[i];
    s[i] = (uint64_t)c;
    c >>= 64;
  }
  fe_reduce_once(r, s, (uint64_t)c);
}

/* r = a - b, plus p masked in when that borrowed. */
static inline void fe_sub(fe r, const fe a, const fe b) {
  uint64_t d[4];
  u128 borrow = 0;
  for (int i = 0; i < 4; i++) {
    u128 v = (u128)a[i] - b[i] - borrow;
    d[i] = (uint64_t)v;
    borrow = (v >> 64) & 1;
  }
  const uint64_t mask = (uint64_t)0 - (uint64_t)borrow;
  u128 c = 0;
  for (int i = 0; i < 4; i++) {
    c += (u128)d[i] + (P[i] & mask);
    r[i] = (uint64_t)c;
    c >>= 64;
  }
}

/*
 * Montgomery reduction of a 512-bit t (< p * 2^256): r = t / 2^256 mod p, fully reduced.
 * -p^-1 mod 2^64 = 1, so each round's multiplier is the low limb itself, and m * p[0] + t[i] is
 * m * 2^64 exactly (p[0] = 2^64 - 1): its carry is m.
 */
static inline void fe_mont_reduce(fe r, uint64_t t[8]) {
  uint64_t extra = 0; /* the carry out of limb i + 4, owed to limb i + 5 */
  for (int i = 0; i < 4; i++) {
    const uint64_t m = t[i];
    u128 c = m;
    for (int j = 1; j < 4; j++) {
      c += (u128)m * P[j] + t[i + j];
      t[i + j] = (uint64_t)c;
      c >>= 64;
    }
    c += (u128)t[i + 4] + extra;
    t[i + 4] = (uint64_t)c;
    extra = (uint64_t)(c >> 64);
  }
  fe_reduce_once(r, t + 4, extra);
}

/* Montgomery multiplication: r = a * b / R mod p (schoolbook product, then the reduction). */
static void fe_mul(fe r, const fe a, const fe b) {
  uint64_t t[8];
  u128 c = 0;
  for (int j = 0; j < 4; j++) {
    c += (u128)a[j] * b[0];
    t[j] = (uint64_t)c;
    c >>= 64;
  }
  t[4] = (uint64_t)c;
  for (int i = 1; i < 4; i++) {
    c = 0;
    for (int j = 0; j < 4; j++) {
      c += (u128)a[j] * b[i] + t[i + j];
      t[i + j] = (uint64_t)c;
      c >>= 64;
    }
    t[i + 4] = (uint64_t)c;
  }
  fe_mont_reduce(r, t);
}

/*
 * Montgomery squaring: the six cross products once, then doubled and the four squares added in
 * one carry chain (written out: GCC vectorised a doubling loop and spilled it, slower than fe_mul).
 */
static void fe_sqr(fe r, const fe a) {
  uint64_t t[8], x1, x2, x3, x4, x5, x6;
  u128 c, sq;
  /* cross products a[i] * a[j], i < j, into x1..x6 */
  c = (u128)a[0] * a[1];
  x1 = (uint64_t)c;
  c = (c >> 64) + (u128)a[0] * a[2];
  x2 = (uint64_t)c;
  c = (c >> 64) + (u128)a[0] * a[3];
  x3 = (uint64_t)c;
  x4 = (uint64_t)(c >> 64);
  c = (u128)a[1] * a[2] + x3;
  x3 = (uint64_t)c;
  c = (c >> 64) + (u128)a[1] * a[3] + x4;
  x4 = (uint64_t)c;
  x5 = (uint64_t)(c >> 64);
  c = (u128)a[2] * a[3] + x5;
  x5 = (uint64_t)c;
  x6 = (uint64_t)(c >> 64);
  /* t = 2 (cross products) + the squares a[i]^2 at limbs 2i, 2i + 1 */
  sq = (u128)a[0] * a[0];
  t[0] = (uint64_t)sq;
  c = (sq >> 64) + (u128)x1 + x1;
  t[1] = (uint64_t)c;
  sq = (u128)a[1] * a[1];
  c = (c >> 64) + (u128)x2 + x2 + (uint64_t)sq;
  t[2] = (uint64_t)c;
  c = (c >> 64) + (u128)x3 + x3 + (uint64_t)(sq >> 64);
  t[3] = (uint64_t)c;
  sq = (u128)a[2] * a[2];
  c = (c >> 64) + (u128)x4 + x4 + (uint64_t)sq;
  t[4] = (uint64_t)c;
  c = (c >> 64) + (u128)x5 + x5 + (uint64_t)(sq >> 64);
  t[5] = (uint64_t)c;
  sq = (u128)a[3] * a[3];
  c = (c >> 64) + (u128)x6 + x6 + (uint64_t)sq;
  t[6] = (uint64_t)c;
  t[7] = (uint64_t)((c >> 64) + (sq >> 64));
  fe_mont_reduce(r, t);
}

/* r = a^e (e plain, square-and-multiply from the top bit). */
static void fe_pow(fe r, const fe a, const fe e) {
  fe acc;
  memcpy(acc, ONE, sizeof acc);
  for (int i = 255; i >= 0; i--) {
    fe_sqr(acc, acc);
    if ((e[i / 64] >> (i % 64)) & 1) fe_mul(acc, acc, a);
  }
  memcpy(r, acc, sizeof acc);
}

/* r = a^(2^k) (k squarings); r may alias a. */
static void fe_sqr_n(fe r, const fe a, int k) {
  fe_sqr(r, a);
  while (--k > 0) fe_sqr(r, r);
}

/*
 * r = a^(p-2) = a^-1 (a != 0), by an addition chain over the runs of ones in p - 2 =
 * 2^256 - 2^224 - 2^96 + 2^64 - 3 (bits from the top: 31 ones, a zero, 128 ones, 32 zeros,
 * 62 ones, a zero, a one): 256 squarings and 15 multiplications, where square-and-multiply
 * needs ~220 multiplications.
 */
static void fe_inv(fe r, const fe a) {
  fe x2, x3, x6, x12, x15, x30, x31, x32, t;
  fe_sqr(x2, a);
  fe_mul(x2, x2, a);         /* 2^2 - 1 */
  fe_sqr(x3, x2);
  fe_mul(x3, x3, a);         /* 2^3 - 1 */
  fe_sqr_n(x6, x3, 3);
  fe_mul(x6, x6, x3);        /* 2^6 - 1 */
  fe_sqr_n(x12, x6, 6);
  fe_mul(x12, x12, x6);      /* 2^12 - 1 */
  fe_sqr_n(x15, x12, 3);
  fe_mul(x15, x15, x3);      /* 2^15 - 1 */
  fe_sqr_n(x30, x15, 15);
  fe_mul(x30, x30, x15);     /* 2^30 - 1 */
  fe_sqr(x31, x30);
  fe_mul(x31, x31, a);       /* 2^31 - 1 */
  fe_sqr(x32, x31);
  fe_mul(x32, x32, a);       /* 2^32 - 1 */
  fe_sqr_n(t, x31, 1);       /* 31 ones, a zero */
  for (int i = 0; i < 4; i++) {
    fe_sqr_n(t, t, 32);
    fe_mul(t, t, x32);       /* 32 more ones, four times */
  }
  fe_sqr_n(t, t, 32);        /* 32 zeros */
  fe_sqr_n(t, t, 32);
  fe_mul(t, t, x32);         /* 32 ones */
  fe_sqr_n(t, t, 30);
  fe_mul(t, t, x30);         /* 30 ones */
  fe_sqr_n(t, t, 2);
  fe_mul(r, t, a);           /* a zero, a one */
}

/* a < p for a plain (not Montgomery) value. */
static int fe_lt_p(const fe a) {
  for (int i = 3; i >= 0; i--) {
    if (a[i] != P[i]) return a[i] < P[i];
  }
  return 0;
}

static int fe_equal(const fe a, const fe b) { return memcmp(a, b, sizeof(fe)) == 0; }

static void fe_to_mont(fe r, const fe a) { fe_mul(r, a, R2); }
static void fe_from_mont(fe r, const fe a) {
  static const fe one_plain = {1, 0, 0, 0};
  fe_mul(r, a, one_plain);
}

static void jp_set_inf(jpoint *r) { memset(r, 0, sizeof *r); }
static int jp_is_inf(const jpoint *a) { return fe_is_zero(a->z); }

/* r = (x, y, 1), x and y in Montgomery form. */
static void jp_set_affine(jpoint *r, const fe x, const fe y) {
  memcpy(r->x, x, sizeof(fe));
  memcpy(r->y, y, sizeof(fe));
  memcpy(r->z, ONE, sizeof(fe));
}

/* r = (x, y, 1) from plain big-endian coordinates. */
static void jp_from_bytes(jpoint *r, const unsigned char x[32], const unsigned char y[32]) {
  fe px, py;
  fe_from_bytes(px, x);
  fe_from_bytes(py, y);
  fe_to_mont(px, px);
  fe_to_mont(py, py);
  jp_set_affine(r, px, py);
}

/* dbl-2001-b (a = -3). Infinity maps to infinity (Z3 = 0). */
static void jp_dbl(jpoint *r, const jpoint *a) {
  fe delta, gamma, beta, alpha, t1, t2;
  fe_sqr(delta, a->z);
  fe_sqr(gamma, a->y);
  fe_mul(beta, a->x, gamma);
  fe_sub(t1, a->x, delta);
  fe_add(t2, a->x, delta);
  fe_mul(alpha, t1, t2);
  fe_add(t1, alpha, alpha);
  fe_add(alpha, t1, alpha); /* alpha = 3 (X - delta)(X + delta) */
  fe_add(t1, a->y, a->z);
  fe_sqr(t1, t1);
  fe_sub(t1, t1, gamma);
  fe_sub(r->z, t1, delta); /* Z3 = (Y + Z)^2 - gamma - delta */
  fe_add(beta, beta, beta);
  fe_add(beta, beta, beta); /* 4 beta */
  fe_sqr(t1, alpha);
  fe_add(t2, beta, beta);
  fe_sub(r->x, t1, t2); /* X3 = alpha^2 - 8 beta */
  fe_sub(t1, beta, r->x);
  fe_mul(t1, alpha, t1);
  fe_sqr(gamma, gamma);
  fe_add(gamma, gamma, gamma);
  fe_add(gamma, gamma, gamma);
  fe_add(gamma, gamma, gamma); /* 8 gamma^2 */
  fe_sub(r->y, t1, gamma);
}

/* The common end of add-2007-bl and madd-2007-bl: X3 = rr^2 - J - 2V, Y3 = rr (V - X3) - 2 S1 J. */
static void add_finish(jpoint *r, const fe rr, const fe j, const fe v, const fe s1j) {
  fe t, twice;
  fe_sqr(t, rr);
  fe_sub(t, t, j);
  fe_sub(t, t, v);
  fe_sub(r->x, t, v);
  fe_sub(t, v, r->x);
  fe_mul(t, rr, t);
  fe_add(twice, s1j, s1j);
  fe_sub(r->y, t, twice);
}

/* add-2007-bl, with every special case handled exactly. r may alias a. */
static void jp_add(jpoint *r, const jpoint *a, const jpoint *b) {
  if (jp_is_inf(a)) {
    *r = *b;
    return;
  }
  if (jp_is_inf(b)) {
    *r = *a;
    return;
  }
  fe z1z1, z2z2, u1, u2, s1, s2, h, i, j, rr, v, t;
  fe_sqr(z1z1, a->z);
  fe_sqr(z2z2, b->z);
  fe_mul(u1, a->x, z2z2);
  fe_mul(u2, b->x, z1z1);
  fe_mul(s1, a->y, b->z);
  fe_mul(s1, s1, z2z2);
  fe_mul(s2, b->y, a->z);
  fe_mul(s2, s2, z1z1);
  fe_sub(h, u2, u1);
  fe_sub(rr, s2, s1);
  if (fe_is_zero(h)) {
    if (fe_is_zero(rr)) jp_dbl(r, a);
    else jp_set_inf(r);
    return;
  }
  fe_add(rr, rr, rr);
  fe_add(i, h, h);
  fe_sqr(i, i);
  fe_mul(j, h, i);
  fe_mul(v, u1, i);
  fe_add(t, a->z, b->z);
  fe_sqr(t, t);
  fe_sub(t, t, z1z1);
  fe_sub(t, t, z2z2);
  fe_mul(r->z, t, h);
  fe_mul(s1, s1, j);
  add_finish(r, rr, j, v, s1);
}

/* madd-2007-bl: r = a + (bx, by, 1). r may alias a. */
static void jp_add_affine(jpoint *r, const jpoint *a, const fe bx, const fe by) {
  if (jp_is_inf(a)) {
    jp_set_affine(r, bx, by);
    return;
  }
  fe z1z1, u2, s2, h, hh, i, j, rr, v, t;
  fe_sqr(z1z1, a->z);
  fe_mul(u2, bx, z1z1);
  fe_mul(s2, by, a->z);
  fe_mul(s2, s2, z1z1);
  fe_sub(h, u2, a->x);
  fe_sub(rr, s2, a->y);
  if (fe_is_zero(h)) {
    if (fe_is_zero(rr)) jp_dbl(r, a);
    else jp_set_inf(r);
    return;
  }
  fe_add(rr, rr, rr);
  fe_sqr(hh, h);
  fe_add(i, hh, hh);
  fe_add(i, i, i);
  fe_mul(j, h, i);
  fe_mul(v, a->x, i);
  fe_add(t, a->z, h);
  fe_sqr(t, t);
  fe_sub(t, t, z1z1);
  fe_sub(r->z, t, hh);
  fe_mul(s2, a->y, j); /* Y1 * J, before Y is overwritten */
  add_finish(r, rr, j, v, s2);
}

/* Width-w NAF of a 256-bit scalar (big-endian bytes). Returns the number of digits (<= 257). */
static int wnaf(int8_t out[258], const unsigned char k[32], int w) {
  uint64_t v[5];
  fe_from_bytes(v, k);
  v[4] = 0;
  /* digits are odd with |d| < 2^(w-1): table index |d| >> 1 < 2^(w-2) */
  const int64_t full = (int64_t)1 << w, half = (int64_t)1 << (w - 1);
  int len = 0;
  while ((v[0] | v[1] | v[2] | v[3] | v[4]) != 0) {
    int64_t d = 0;
    if (v[0] & 1) {
      d = (int64_t)(v[0] & (uint64_t)(full - 1));
      if (d >= half) d -= full;
      /* v -= d */
      if (d > 0) {
        u128 borrow = (u128)(uint64_t)d;
        for (int i = 0; i < 5 && borrow; i++) {
          u128 x = (u128)v[i] - borrow;
          v[i] = (uint64_t)x;
          borrow = (x >> 64) & 1;
        }
      } else {
        u128 c = (u128)(uint64_t)(-d);
        for (int i = 0; i < 5 && c; i++) {
          c += v[i];
          v[i] = (uint64_t)c;
          c >>= 64;
        }
      }
    }
    out[len++] = (int8_t)d;
    for (int i = 0; i < 4; i++) v[i] = (v[i] >> 1) | (v[i + 1] << 63);
    v[4] >>= 1;
  }
  return len;
}

_Static_assert(TQ == SM2C_QTABLE, "the Q table's size is the window's");
_Static_assert(SPAN * COMB == 256, "the runs split 256 digits evenly");

/*
 * pts[i] = (2i + 1) base for i < count, Jacobian: one doubling, then additions. base must not be
 * infinity; with base a multiple of a point of prime order n, no (2i + 1) base below n is.
 */
static void odd_multiples(jpoint *pts, const jpoint *base, int count) {
  jpoint twice;
  pts[0] = *base;
  jp_dbl(&twice, base);
  for (int i = 1; i < count; i++) jp_add(&pts[i], &pts[i - 1], &twice);
}

/* The most points to_affine converts at once: G's run, or Q's runs after the first. */
#define AFFINE_MAX ((COMB - 1) * TQ > TG ? (COMB - 1) * TQ : TG)
_Static_assert(TQ <= AFFINE_MAX, "to_affine's product buffer holds every count passed");

/* Affine x, y of `count` (at most AFFINE_MAX) finite Jacobian points with one inversion (Montgomery's trick). */
static void to_affine(fe *xs, fe *ys, const jpoint *pts, int count) {
  fe prod[AFFINE_MAX], inv, zi, zi2;
  memcpy(prod[0], pts[0].z, sizeof(fe));
  for (int i = 1; i < count; i++) fe_mul(prod[i], prod[i - 1], pts[i].z);
  fe_inv(inv, prod[count - 1]);
  for (int i = count - 1; i >= 0; i--) {
    if (i > 0) {
      fe_mul(zi, inv, prod[i - 1]);
      fe_mul(inv, inv, pts[i].z);
    } else {
      memcpy(zi, inv, sizeof(fe));
    }
    fe_sqr(zi2, zi);
    fe_mul(xs[i], pts[i].x, zi2);
    fe_mul(zi2, zi2, zi);
    fe_mul(ys[i], pts[i].y, zi2);
  }
}

void sm2c_qtable_init(sm2c_qtable *out, const unsigned char qx[32], const unsigned char qy[32]) {
  jpoint q, pts[TQ];
  jp_from_bytes(&q, qx, qy);
  odd_multiples(pts, &q, TQ);
  to_affine(out->x[0], out->y[0], pts, TQ);
  out->runs = 1;
}

void sm2c_qtable_extend(sm2c_qtable *t) {
  if (t->runs == COMB) return;
  jpoint base, pts[(COMB - 1) * TQ];
  jp_set_affine(&base, t->x[0][0], t->y[0][0]);
  for (int k = 1; k < COMB; k++) {
    for (int i = 0; i < SPAN; i++) jp_dbl(&base, &base);
    odd_multiples(&pts[(k - 1) * TQ], &base, TQ);
  }
  to_affine(t->x[1], t->y[1], pts, (COMB - 1) * TQ);
  t->runs = COMB;
}

/* acc += (d > 0 ? tab[d >> 1] : -tab[-d >> 1]) for an odd wNAF digit d, or nothing for 0. */
static inline void add_digit(jpoint *acc, int d, const fe *xs, const fe *ys) {
  if (d > 0) {
    jp_add_affine(acc, acc, xs[d >> 1], ys[d >> 1]);
  } else if (d < 0) {
    fe neg;
    fe_sub(neg, (fe){0, 0, 0, 0}, ys[(-d) >> 1]);
    jp_add_affine(acc, acc, xs[(-d) >> 1], neg);
  }
}

/*
 * acc = s*G + t*Q (Jacobian), interleaved wNAF over affine tables. With runs = COMB, digit
 * i = SPAN k + j of a scalar is added from the table of 2^(SPAN k) times the point at step j, so
 * at most SPAN doublings are done (the first step's accumulator is infinity); with runs = 1 (Q's
 * first table only) it is plain interleaved wNAF over all 257 digit positions. A scalar below 2^256 has at most 257 digits: the last
 * (position 256) belongs to the top run at step SPAN, which no other run has.
 */
static void double_mul(jpoint *acc, const unsigned char s[32], const unsigned char t[32], const sm2c_qtable *q) {
  int8_t ns[258], nt[258];
  const int ls = wnaf(ns, s, WG), lt = wnaf(nt, t, WQ);
  const int runs = q->runs, span = 256 / runs;
  jp_set_inf(acc);
  for (int j = span; j >= 0; j--) {
    if (!jp_is_inf(acc)) jp_dbl(acc, acc);
    for (int k = j == span ? runs - 1 : 0; k < runs; k++) {
      const int i = k * span + j;
      if (i < ls) add_digit(acc, ns[i], GX[k], GY[k]);
      if (i < lt) add_digit(acc, nt[i], q->x[k], q->y[k]);
    }
  }
}

/* Whether plain c (< p) is the affine x of Jacobian a: X == c * Z^2, no inversion needed. */
static int x_is(const jpoint *a, const fe zz, const fe c) {
  fe cm, lhs;
  fe_to_mont(cm, c);
  fe_mul(lhs, cm, zz);
  return fe_equal(lhs, a->x);
}

int sm2c_double_mul_x_matches(const unsigned char s[32], const unsigned char t[32], const sm2c_qtable *q,
                              const unsigned char c[32]) {
  jpoint acc;
  double_mul(&acc, s, t, q);
  if (jp_is_inf(&acc)) return 0;
  fe zz, cv, c2;
  fe_sqr(zz, acc.z);
  fe_from_bytes(cv, c);
  if (!fe_lt_p(cv)) return 0;
  if (x_is(&acc, zz, cv)) return 1;
  /* x = c + n, when that is still below p */
  u128 carry = 0;
  for (int i = 0; i < 4; i++) {
    carry += (u128)cv[i] + N[i];
    c2[i] = (uint64_t)carry;
    carry >>= 64;
  }
  return carry == 0 && fe_lt_p(c2) && x_is(&acc, zz, c2);
}

/* x^3 - 3x + b, all Montgomery. */
static void curve_rhs(fe r, const fe x) {
  fe t, x3;
  fe_sqr(t, x);
  fe_mul(x3, t, x);
  fe_add(t, x, x);
  fe_add(t, t, x);
  fe_sub(x3, x3, t);
  fe_add(r, x3, B_M);
}

int sm2c_decode_point(unsigned char xy[64], const unsigned char *pub, size_t len) {
  fe x, y, xm, ym, rhs, t;
  if (len == 65 && pub[0] == 4) {
    fe_from_bytes(x, pub + 1);
    fe_from_bytes(y, pub + 33);
    if (!fe_lt_p(x) || !fe_lt_p(y)) return 0;
    fe_to_mont(xm, x);
    fe_to_mont(ym, y);
    curve_rhs(rhs, xm);
    fe_sqr(t, ym);
    if (!fe_equal(t, rhs)) return 0;
    memcpy(xy, pub + 1, 64);
    return 1;
  }
  if (len == 33 && (pub[0] == 2 || pub[0] == 3)) {
    fe_from_bytes(x, pub + 1);
    if (!fe_lt_p(x)) return 0;
    fe_to_mont(xm, x);
    curve_rhs(rhs, xm);
    fe_pow(ym, rhs, SQRT_E);
    fe_sqr(t, ym);
    if (!fe_equal(t, rhs)) return 0; /* no square root: x is not on the curve */
    fe_from_mont(y, ym);
    if ((y[0] & 1) != (uint64_t)(pub[0] & 1)) {
      if (fe_is_zero(y)) return 0;
      fe zero = {0, 0, 0, 0};
      fe_sub(y, zero, y);
    }
    memcpy(xy, pub + 1, 32);
    fe_to_bytes(xy + 32, y);
    return 1;
  }
  return 0;
}

int sm2c_init(const unsigned char p[32], const unsigned char n[32], const unsigned char b[32], const unsigned char gx[32],
              const unsigned char gy[32]) {
  {
    fe given;
    fe_from_bytes(given, p);
    if (!fe_equal(given, P)) return 0; /* the arithmetic here is for this one curve */
    fe_from_bytes(given, n);
    if (!fe_equal(given, N)) return 0;
  }
  /* ONE = 2^256 mod p = 2^256 - p (p > 2^255); R2 = ONE shifted left 256 times mod p. */
  {
    u128 borrow = 0;
    for (int i = 0; i < 4; i++) {
      u128 v = (u128)0 - P[i] - borrow;
      ONE[i] = (uint64_t)v;
      borrow = (v >> 64) & 1;
    }
  }
  memcpy(R2, ONE, sizeof(fe));
  for (int i = 0; i < 256; i++) fe_add(R2, R2, R2);
  {
    /* (p + 1) / 4 */
    uint64_t q[5];
    u128 c = 1;
    for (int i = 0; i < 4; i++) {
      c += P[i];
      q[i] = (uint64_t)c;
      c >>= 64;
    }
    q[4] = (uint64_t)c;
    for (int i = 0; i < 4; i++) SQRT_E[i] = (q[i] >> 2) | (q[i + 1] << 62);
  }
  {
    fe tb;
    fe_from_bytes(tb, b);
    fe_to_mont(B_M, tb);
  }

  jpoint g, pts[TG];
  jp_from_bytes(&g, gx, gy);
  for (int k = 0; k < COMB; k++) {
    if (k > 0)
      for (int i = 0; i < SPAN; i++) jp_dbl(&g, &g);
    odd_multiples(pts, &g, TG);
    to_affine(GX[k], GY[k], pts, TG);
  }
  return 1;
}
