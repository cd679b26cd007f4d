/* The rows of a write's new terms (TermDictionary.settle): term_claims, the sorted
 * `term_ids` rows (by term_hash, blake2b.c); bloom_probe, the writer's filter of the terms it
 * claimed; term_rows, the `terms` rows. They mirror _term_claims, _bloom_probe and _term_rows
 * in mizu_core/repo/index.py. */
#include "speedups.h"

typedef struct { unsigned char hash[TERM_HASH_LEN]; uint64_t id; } Claim;

/* Sort claims by hash: an LSD radix sort on the hash's first 33 bits (hashes are uniform,
 * so that orders all but a rare few), then insertion over whole hashes for those. A third
 * of the time qsort took. */
static void sort_claims(Claim *claims, Claim *tmp, Py_ssize_t n) {
    Claim *from = claims, *to = tmp;
    for (int shift = 31; shift < 64; shift += DIGIT_BITS) {
        Py_ssize_t start[DIGITS] = {0};
        for (Py_ssize_t i = 0; i < n; i++) start[(read_be64(from[i].hash) >> shift) & (DIGITS - 1)]++;
        for (Py_ssize_t d = 0, sum = 0; d < DIGITS; d++) {
            Py_ssize_t count = start[d];
            start[d] = sum;
            sum += count;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            to[start[(read_be64(from[i].hash) >> shift) & (DIGITS - 1)]++] = from[i];
        Claim *swap = from;
        from = to;
        to = swap;
    }
    if (from != claims) memcpy(claims, from, sizeof(Claim) * (size_t)n);
    for (Py_ssize_t i = 1; i < n; i++) {
        Claim c = claims[i];
        Py_ssize_t j = i;
        for (; j > 0 && memcmp(claims[j - 1].hash, c.hash, TERM_HASH_LEN) > 0; j--)
            claims[j] = claims[j - 1];
        claims[j] = c;
    }
}

/* 8-byte big-endian id as bytes */
static PyObject *packed_id(uint64_t id) {
    unsigned char raw[8];
    write_be64(raw, id);
    return PyBytes_FromStringAndSize((const char *)raw, 8);
}

PyObject *term_claims(PyObject *module, PyObject *new) {
    if (!PyDict_Check(new)) {
        PyErr_SetString(PyExc_TypeError, "term_claims() takes a dict of term → id");
        return NULL;
    }
    Py_ssize_t n = PyDict_GET_SIZE(new), pos = 0, i = 0;
    Claim *claims = PyMem_Malloc(sizeof(Claim) * (size_t)(n ? n : 1));
    Claim *tmp = PyMem_Malloc(sizeof(Claim) * (size_t)(n ? n : 1));
    if (claims == NULL || tmp == NULL) {
        PyMem_Free(claims);
        PyMem_Free(tmp);
        return PyErr_NoMemory();
    }
    PyObject *term, *id, *out = NULL;
    while (PyDict_Next(new, &pos, &term, &id)) {
        if (!PyBytes_CheckExact(term)) {
            PyErr_SetString(PyExc_TypeError, "a term that is not bytes");
            goto done;
        }
        if (id_value(id, &claims[i].id) < 0) goto done;
        term_hash((const unsigned char *)PyBytes_AS_STRING(term), (size_t)PyBytes_GET_SIZE(term),
                  claims[i].hash);
        i++;
    }
    sort_claims(claims, tmp, n);
    out = PyList_New(n);
    if (out == NULL) goto done;
    for (i = 0; i < n; i++) {
        PyObject *key = PyBytes_FromStringAndSize((const char *)claims[i].hash, TERM_HASH_LEN);
        PyObject *value = key ? packed_id(claims[i].id) : NULL;
        PyObject *pair = value ? PyTuple_Pack(2, key, value) : NULL;
        Py_XDECREF(key);
        Py_XDECREF(value);
        if (pair == NULL) { Py_CLEAR(out); goto done; }
        PyList_SET_ITEM(out, i, pair);
    }
done:
    PyMem_Free(claims);
    PyMem_Free(tmp);
    return out;
}

/* Little-endian 8 bytes as an integer (a bloom bit's position, from a term hash) */
static uint64_t read_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

PyObject *bloom_probe(PyObject *module, PyObject *args) {
    PyObject *bloom, *claims;
    if (!PyArg_ParseTuple(args, "O!O!:bloom_probe", &PyByteArray_Type, &bloom, &PyList_Type, &claims))
        return NULL;
    uint64_t bits = (uint64_t)PyByteArray_GET_SIZE(bloom) * 8;
    if (bits == 0 || (bits & (bits - 1))) {
        PyErr_SetString(PyExc_ValueError, "bloom_probe() takes a bloom of 2**n bytes");
        return NULL;
    }
    unsigned char *set = (unsigned char *)PyByteArray_AS_STRING(bloom);
    PyObject *maybe = PyList_New(0);
    for (Py_ssize_t i = 0; maybe != NULL && i < PyList_GET_SIZE(claims); i++) {
        PyObject *claim = PyList_GET_ITEM(claims, i);
        PyObject *hash = PyTuple_Check(claim) && PyTuple_GET_SIZE(claim) == 2
            ? PyTuple_GET_ITEM(claim, 0) : NULL;
        if (hash == NULL || !PyBytes_CheckExact(hash) || PyBytes_GET_SIZE(hash) != TERM_HASH_LEN) {
            PyErr_SetString(PyExc_TypeError, "bloom_probe() takes (16-byte hash, id) claims");
            Py_CLEAR(maybe);
            break;
        }
        const unsigned char *h = (const unsigned char *)PyBytes_AS_STRING(hash);
        uint64_t a = read_le64(h) & (bits - 1), b = read_le64(h + 8) & (bits - 1);
        int seen = (set[a / 8] >> (a % 8) & 1) && (set[b / 8] >> (b % 8) & 1);
        set[a / 8] |= (unsigned char)(1 << (a % 8));
        set[b / 8] |= (unsigned char)(1 << (b % 8));
        if (seen) {
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(maybe, index) < 0) Py_CLEAR(maybe);
            Py_XDECREF(index);
        }
    }
    return maybe;
}

PyObject *term_rows(PyObject *module, PyObject *args) {
    PyObject *new, *skip;
    if (!PyArg_ParseTuple(args, "O!O!:term_rows", &PyDict_Type, &new, &PyDict_Type, &skip))
        return NULL;
    PyObject *out = PyList_New(0), *term, *id;
    Py_ssize_t pos = 0;
    if (out == NULL) return NULL;
    while (PyDict_Next(new, &pos, &term, &id)) {
        int skipped = PyDict_Contains(skip, id);
        uint64_t value;
        if (skipped < 0 || id_value(id, &value) < 0) goto fail;
        if (skipped) continue;
        PyObject *key = packed_id(value);
        PyObject *pair = key ? PyTuple_Pack(2, key, term) : NULL;
        Py_XDECREF(key);
        if (pair == NULL) goto fail;
        int failed = PyList_Append(out, pair) < 0;
        Py_DECREF(pair);
        if (failed) goto fail;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}
