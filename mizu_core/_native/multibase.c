/* Multibase: base32, the text of CIDs (RFC 4648 base32, lower case, unpadded); b58encode,
 * base58btc for the keys and signatures of $signatures and peer ids. They mirror
 * _b32encode_lower and _b58encode in mizu_core/message/cid.py. Both write text 1.4 to 1.8
 * times as fast as libipld's encode_multibase (bench/native.py), so they stay; base58btc
 * decoding went to libipld (message/cid.py), 2.8 times as fast as the C it replaced. */
#include "speedups.h"

/* --- base32 ------------------------------------------------------------------------------ */

PyObject *base32(PyObject *module, PyObject *arg) {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *data = view.buf;
    Py_ssize_t n = view.len, out_len = (n * 8 + 4) / 5;
    PyObject *text = PyUnicode_New(out_len, 127);
    if (text == NULL) { PyBuffer_Release(&view); return NULL; }
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    uint32_t bits = 0;
    int held = 0;
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        bits = (bits << 8) | data[i];
        held += 8;
        while (held >= 5) {
            held -= 5;
            out[k++] = (Py_UCS1)alphabet[(bits >> held) & 31];
        }
    }
    if (held > 0) out[k++] = (Py_UCS1)alphabet[(bits << (5 - held)) & 31];
    PyBuffer_Release(&view);
    return text;
}

/* --- base58btc (keys and signatures in $signatures, peer ids) ------------------------- */

static const char B58[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

#define B58_LIMB 656356768u /* 58^5: each limb holds five base58 digits */

/* Base58btc: the number is kept in base-58^5 limbs, least significant first, and the
 * input is taken four bytes at a time (limb * 2^32 + carry fits in 64 bits), ~30 times
 * fewer steps than a digit at a time. Leading zero bytes become '1's. */
PyObject *b58encode(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *data = view.buf;
    Py_ssize_t n = view.len, zeros = 0;
    while (zeros < n && data[zeros] == 0) zeros++;
    Py_ssize_t most = (n - zeros) * 138 / 100 / 5 + 2; /* log(256) / log(58) < 1.38 */
    uint32_t *limbs = PyMem_Malloc(sizeof(uint32_t) * (size_t)most);
    char *digits = PyMem_Malloc((size_t)(most * 5));
    PyObject *text = NULL;
    if (limbs == NULL || digits == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t used = 0;
    for (Py_ssize_t i = zeros; i < n;) {
        int take = (int)((n - i) % 4 ? (n - i) % 4 : 4); /* the first word may be short */
        if (i > zeros) take = 4;
        uint64_t carry = 0;
        for (int k = 0; k < take; k++) carry = (carry << 8) | data[i + k];
        i += take;
        for (Py_ssize_t j = 0; j < used; j++) {
            carry += (uint64_t)limbs[j] << (8 * take);
            limbs[j] = (uint32_t)(carry % B58_LIMB);
            carry /= B58_LIMB;
        }
        while (carry) {
            limbs[used++] = (uint32_t)(carry % B58_LIMB);
            carry /= B58_LIMB;
        }
    }
    Py_ssize_t count = 0; /* digits, most significant first */
    for (Py_ssize_t j = used - 1; j >= 0; j--) {
        uint32_t limb = limbs[j];
        for (int k = 4; k >= 0; k--) {
            digits[count + k] = B58[limb % 58];
            limb /= 58;
        }
        count += 5;
    }
    Py_ssize_t start = 0;
    while (start < count && digits[start] == '1') start++; /* the top limb's zero digits */
    text = PyUnicode_New(zeros + count - start, 127);
    if (text != NULL) {
        Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
        memset(out, '1', (size_t)zeros);
        memcpy(out + zeros, digits + start, (size_t)(count - start));
    }
done:
    PyBuffer_Release(&view);
    PyMem_Free(limbs);
    PyMem_Free(digits);
    return text;
}
