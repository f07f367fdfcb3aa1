/* Variable-time arithmetic on sm2p256v1 for signature verification (public data only). */
#ifndef CUSTOS_SM2_CURVE_H
#define CUSTOS_SM2_CURVE_H
#include <stddef.h>
#include <stdint.h>

/* Sets up constants and the table of multiples of G. Returns 1 on success. Not thread-safe; call once. */
int sm2c_init(const unsigned char p[32], const unsigned char b[32], const unsigned char gx[32],
              const unsigned char gy[32]);

/*
 * Decodes a public key, 33 bytes (02/03 || x) or 65 bytes (04 || x || y), into affine x||y.
 * Returns 0 unless it is a point on the curve with coordinates below p.
 */
int sm2c_decode_point(unsigned char xy[64], const unsigned char *pub, size_t len);

/*
 * x1 = affine x of (s*G + t*Q), with Q = (qx, qy) an affine point already checked to be on the
 * curve, and s, t < n given big-endian. Returns 0 when the sum is the point at infinity.
 * Thread-safe after sm2c_init.
 */
int sm2c_double_mul_x(unsigned char x1[32], const unsigned char s[32], const unsigned char t[32],
                      const unsigned char qx[32], const unsigned char qy[32]);

#endif
