/* BLAKE2b-128, a term's key in `term_ids`: term_hash mirrors _term_hash in
 * mizu_core/repo/index.py (hashlib.blake2b(term, digest_size=16); tests compare the two).
 * This is the reference algorithm of RFC 7693 (BLAKE2b with a 16-byte digest and no key),
 * its rounds written out. It stays rather than calling hashlib from C: over the terms of the
 * ingest benchmark's messages it hashes 2.3 times as many terms a second, and term_claims
 * runs 1.9 times as fast with it (bench/native.py measures the first). */
#include "speedups.h"

static const uint64_t B2_IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const unsigned char B2_SIGMA[10][16] = { /* rounds 10 and 11 reuse rows 0 and 1 */
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

#define ROTR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))
#define B2_G(a, b, c, d, x, y)                                                               \
    do {                                                                                     \
        v[a] = v[a] + v[b] + (x); v[d] = ROTR64(v[d] ^ v[a], 32);                            \
        v[c] = v[c] + v[d];       v[b] = ROTR64(v[b] ^ v[c], 24);                            \
        v[a] = v[a] + v[b] + (y); v[d] = ROTR64(v[d] ^ v[a], 16);                            \
        v[c] = v[c] + v[d];       v[b] = ROTR64(v[b] ^ v[c], 63);                            \
    } while (0)

static void b2_compress(uint64_t h[8], const unsigned char block[128], uint64_t counter, int last) {
    uint64_t m[16], v[16];
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(m, block, sizeof m); /* the words are little-endian, as this machine's */
#else
    for (int i = 0; i < 16; i++) {
        uint64_t w = 0;
        for (int j = 7; j >= 0; j--) w = (w << 8) | block[8 * i + j];
        m[i] = w;
    }
#endif
    for (int i = 0; i < 8; i++) { v[i] = h[i]; v[i + 8] = B2_IV[i]; }
    v[12] ^= counter; /* messages here are far below 2**64 bytes: the high word stays 0 */
    if (last) v[14] = ~v[14];
    /* Rounds written out, so each message word's index is a constant (the compiler does
     * not unroll a loop this long); hashing terms is on every write's path. */
#define B2_ROUND(r)                                                                          \
    do {                                                                                     \
        const unsigned char *s = B2_SIGMA[(r) % 10];                                         \
        B2_G(0, 4, 8, 12, m[s[0]], m[s[1]]);                                                 \
        B2_G(1, 5, 9, 13, m[s[2]], m[s[3]]);                                                 \
        B2_G(2, 6, 10, 14, m[s[4]], m[s[5]]);                                                \
        B2_G(3, 7, 11, 15, m[s[6]], m[s[7]]);                                                \
        B2_G(0, 5, 10, 15, m[s[8]], m[s[9]]);                                                \
        B2_G(1, 6, 11, 12, m[s[10]], m[s[11]]);                                              \
        B2_G(2, 7, 8, 13, m[s[12]], m[s[13]]);                                               \
        B2_G(3, 4, 9, 14, m[s[14]], m[s[15]]);                                               \
    } while (0)
    B2_ROUND(0); B2_ROUND(1); B2_ROUND(2); B2_ROUND(3); B2_ROUND(4); B2_ROUND(5);
    B2_ROUND(6); B2_ROUND(7); B2_ROUND(8); B2_ROUND(9); B2_ROUND(10); B2_ROUND(11);
#undef B2_ROUND
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

void term_hash(const unsigned char *data, size_t n, unsigned char out[TERM_HASH_LEN]) {
    uint64_t h[8];
    memcpy(h, B2_IV, sizeof h);
    h[0] ^= 0x01010000ULL ^ TERM_HASH_LEN; /* depth 1, fanout 1, no key, 16-byte digest */
    size_t done = 0;
    while (n - done > 128) { /* every block but the last */
        b2_compress(h, data + done, done + 128, 0);
        done += 128;
    }
    unsigned char last[128] = {0};
    memcpy(last, data + done, n - done);
    b2_compress(h, last, n, 1);
    for (int i = 0; i < TERM_HASH_LEN; i++) out[i] = (unsigned char)(h[i / 8] >> (8 * (i % 8)));
}

PyObject *py_term_hash(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    unsigned char digest[TERM_HASH_LEN];
    term_hash(view.buf, (size_t)view.len, digest);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)digest, TERM_HASH_LEN);
}
