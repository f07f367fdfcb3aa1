/* Variable-time arithmetic on sm2p256v1 for signature verification (public data only). */
#ifndef CUSTOS_SM2_CURVE_H
#define CUSTOS_SM2_CURVE_H
#include <stddef.h>
#include <stdint.h>

/*
 * Sets up constants and the table of multiples of G. Returns 0 unless p and n are sm2p256v1's
 * (the arithmetic is written for them). Not thread-safe; call once.
 */
int sm2c_init(const unsigned char p[32], const unsigned char n[32], const unsigned char b[32], const unsigned char gx[32],
              const unsigned char gy[32]);

/*
 * Decodes a public key, 33 bytes (02/03 || x) or 65 bytes (04 || x || y), into affine x||y.
 * Returns 0 unless it is a point on the curve with coordinates below p.
 */
int sm2c_decode_point(unsigned char xy[64], const unsigned char *pub, size_t len);

/*
 * Q, 3Q, 5Q, ..., 15Q of a public key Q in affine Montgomery form, and once extended the same
 * multiples of 2^(32 k) Q for k = 1..7: what a verification with Q needs. With the first run
 * only, a verification does 256 doublings; with all eight, 32.
 */
#define SM2C_QTABLE 8
#define SM2C_COMB 8
typedef struct {
  int runs; /* 1 after sm2c_qtable_init, SM2C_COMB after sm2c_qtable_extend */
  uint64_t x[SM2C_COMB][SM2C_QTABLE][4];
  uint64_t y[SM2C_COMB][SM2C_QTABLE][4];
} sm2c_qtable;

/* Fills the first run of `t` for Q = (qx, qy), an affine point already checked to be on the curve. */
void sm2c_qtable_init(sm2c_qtable *t, const unsigned char qx[32], const unsigned char qy[32]);

/* Adds the other runs to a table made by sm2c_qtable_init (224 doublings, 56 additions, an inversion). */
void sm2c_qtable_extend(sm2c_qtable *t);

/*
 * Whether the affine x of s*G + t*Q is c or c + n (c plain, big-endian, below n; c + n counts only
 * while below p): SM2's check that (e + x1) mod n = r, with c = (r - e) mod n, done without
 * inverting Z. Q is given by its table; s, t < n, big-endian. Returns 0 for the point at
 * infinity. Thread-safe after sm2c_init.
 */
int sm2c_double_mul_x_matches(const unsigned char s[32], const unsigned char t[32], const sm2c_qtable *q,
                              const unsigned char c[32]);

#endif
