/* What the C files of mizu_core._speedups share: the helpers for 8-byte ids and the
 * limits they agree on, and each file's functions and types for module.c's table.
 * Internal to the extension (setup.py builds the files in this folder into one module);
 * mizu_core/speedups.py says when Mizu uses it, _speedups.pyi what it offers. */
#ifndef MIZU_SPEEDUPS_H
#define MIZU_SPEEDUPS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_LEN 24        /* an index key: three 8-byte big-endian ids */
#define MAX_DEPTH 256     /* as codec.MAX_DEPTH */
#define TERM_HASH_LEN 16  /* a term's key in `term_ids`: BLAKE2b-128 */
#define DIGIT_BITS 11     /* the radix sorts' digit (index_keys.c, claims.c) */
#define DIGITS (1 << DIGIT_BITS)

static inline uint64_t read_be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static inline void write_be64(unsigned char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (unsigned char)(v & 0xff); v >>= 8; }
}

/* A term id (a Python int) as a C integer: 0, or -1 with an error if it is not one */
static inline int id_value(PyObject *id, uint64_t *out) {
    *out = PyLong_AsUnsignedLongLong(id);
    return (*out == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

/* scan.c */
extern PyTypeObject KeyReaderType, IdStreamType;
/* terms.c */
PyObject *intern_terms(PyObject *module, PyObject *args);
/* index_keys.c */
extern PyTypeObject KeyPairsType;
PyObject *index_keys(PyObject *module, PyObject *args);
/* dagcbor.c */
extern PyTypeObject EncoderType;
/* reserved.c */
PyObject *has_reserved(PyObject *module, PyObject *value);
/* multibase.c */
PyObject *base32(PyObject *module, PyObject *arg);
PyObject *b58encode(PyObject *module, PyObject *arg);
/* blake2b.c */
void term_hash(const unsigned char *data, size_t n, unsigned char out[TERM_HASH_LEN]);
PyObject *py_term_hash(PyObject *module, PyObject *arg);
/* claims.c */
PyObject *term_claims(PyObject *module, PyObject *new);
PyObject *bloom_probe(PyObject *module, PyObject *args);
PyObject *term_rows(PyObject *module, PyObject *args);
/* triples.c */
PyObject *message_triples(PyObject *module, PyObject *args);

#endif
