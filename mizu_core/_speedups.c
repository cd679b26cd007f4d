/* C versions of the two loops that bound the triple index's speed from Python.
 *
 * KeyReader: a query's many short prefix scans (set_range, then key/next while the key
 *   starts with the prefix), each key unpacked to three ids; IdStream: the same for the
 *   rest of a long scan, from a cursor's key iterator. Same contract as the Python reader
 *   in mizu_core/repo/kv.py, which stays the fallback.
 * index_keys: the 24-byte spo, pos and osp keys of many id triples, each table's sorted
 *   and packed end to end, and the triples of each predicate. Same result as index.py's
 *   _index_keys. KeyPairs: such keys as (key, b"") pairs for LMDB's putmulti.
 * base32: CIDs' text form, RFC 4648 base32 in lower case without padding; b58encode and
 *   b58decode: base58btc, for the keys and signatures of $signatures.
 * intern_terms: a write's term ids for many triples (TermDictionary.intern in a loop).
 * message_triples: a message's triples (message/triples.py). has_reserved: whether a message
 *   holds any reserved ($) field for message/validate.py to check.
 * term_claims and term_rows: the sorted `term_ids` and `terms` rows of a write's new terms
 *   (TermDictionary.settle), with term_hash, BLAKE2b-128 written out after RFC 7693, and
 *   bloom_probe, the writer's filter of the terms it claimed.
 * Encoder: canonical DAG-CBOR, byte for byte what message/codec.py's encoder writes, with
 *   the same refusals (a message's CID depends on every byte: tests compare the two).
 *
 * Both are optional: mizu_core/speedups.py imports this module when it was built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_LEN 24 /* three 8-byte big-endian ids */

static uint64_t read_be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

/* A term id (a Python int) as a C integer: 0, or -1 with an error if it is not one */
static int id_value(PyObject *id, uint64_t *out) {
    *out = PyLong_AsUnsignedLongLong(id);
    return (*out == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

static void write_be64(unsigned char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (unsigned char)(v & 0xff); v >>= 8; }
}

static PyObject *unpack_ids(PyObject *key) {
    if (PyBytes_GET_SIZE(key) != KEY_LEN) {
        PyErr_Format(PyExc_ValueError, "index key of %zd bytes, not %d",
                     PyBytes_GET_SIZE(key), KEY_LEN);
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(key);
    PyObject *row = PyTuple_New(3);
    if (row == NULL) return NULL;
    for (int i = 0; i < 3; i++) {
        PyObject *id = PyLong_FromUnsignedLongLong(read_be64(p + 8 * i));
        if (id == NULL) { Py_DECREF(row); return NULL; }
        PyTuple_SET_ITEM(row, i, id);
    }
    return row;
}

/* --- KeyReader ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *set_range, *key, *next; /* the cursor's bound methods */
    PyObject *more;                   /* more(found, last_key, prefix): the stream of a long scan */
    Py_ssize_t short_len;             /* found this many: hand over to `more` */
} KeyReader;

/* cursor.set_range(prefix) or cursor.next(): 1 positioned, 0 not, -1 error */
static int step(PyObject *method, PyObject *arg) {
    PyObject *ok = arg ? PyObject_CallOneArg(method, arg) : PyObject_CallNoArgs(method);
    if (ok == NULL) return -1;
    int positioned = PyObject_IsTrue(ok);
    Py_DECREF(ok);
    return positioned;
}

static PyObject *KeyReader_call(KeyReader *self, PyObject *args, PyObject *kwargs) {
    PyObject *prefix;
    if (!PyArg_ParseTuple(args, "O!:read", &PyBytes_Type, &prefix)) return NULL;
    const char *want = PyBytes_AS_STRING(prefix);
    Py_ssize_t want_len = PyBytes_GET_SIZE(prefix);
    PyObject *found = PyList_New(0);
    if (found == NULL) return NULL;
    int positioned = step(self->set_range, prefix);
    while (positioned > 0) {
        PyObject *key = PyObject_CallNoArgs(self->key);
        if (key == NULL) goto fail;
        if (!PyBytes_Check(key)) {
            Py_DECREF(key);
            PyErr_SetString(PyExc_TypeError, "cursor.key() did not return bytes");
            goto fail;
        }
        if (PyBytes_GET_SIZE(key) < want_len || memcmp(PyBytes_AS_STRING(key), want, want_len) != 0) {
            Py_DECREF(key);
            break;
        }
        PyObject *row = unpack_ids(key);
        if (row == NULL || PyList_Append(found, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(key);
            goto fail;
        }
        Py_DECREF(row);
        if (PyList_GET_SIZE(found) == self->short_len) { /* a long scan: stream the rest */
            PyObject *stream = PyObject_CallFunctionObjArgs(self->more, found, key, prefix, NULL);
            Py_DECREF(key);
            Py_DECREF(found);
            return stream;
        }
        Py_DECREF(key);
        positioned = step(self->next, NULL);
    }
    if (positioned < 0) goto fail;
    return found;
fail:
    Py_DECREF(found);
    return NULL;
}

static int KeyReader_init(KeyReader *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"cursor", "more", "short", NULL};
    PyObject *cursor, *more;
    Py_ssize_t short_len;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOn:KeyReader", names, &cursor, &more, &short_len))
        return -1;
    if (short_len < 1) {
        PyErr_SetString(PyExc_ValueError, "short must be at least 1");
        return -1;
    }
    Py_CLEAR(self->set_range);
    Py_CLEAR(self->key);
    Py_CLEAR(self->next);
    Py_CLEAR(self->more);
    self->set_range = PyObject_GetAttrString(cursor, "set_range");
    self->key = PyObject_GetAttrString(cursor, "key");
    self->next = PyObject_GetAttrString(cursor, "next");
    if (self->set_range == NULL || self->key == NULL || self->next == NULL) return -1;
    Py_INCREF(more);
    self->more = more;
    self->short_len = short_len;
    return 0;
}

static int KeyReader_traverse(KeyReader *self, visitproc visit, void *arg) {
    Py_VISIT(self->set_range);
    Py_VISIT(self->key);
    Py_VISIT(self->next);
    Py_VISIT(self->more);
    return 0;
}

static int KeyReader_clear(KeyReader *self) {
    Py_CLEAR(self->set_range);
    Py_CLEAR(self->key);
    Py_CLEAR(self->next);
    Py_CLEAR(self->more);
    return 0;
}

static void KeyReader_dealloc(KeyReader *self) {
    PyObject_GC_UnTrack(self);
    KeyReader_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject KeyReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mizu_core._speedups.KeyReader",
    .tp_doc = "KeyReader(cursor, more, short)\n--\n\nread(prefix) -> list of id triples, or "
              "more(found, last_key, prefix) once `short` keys are found",
    .tp_basicsize = sizeof(KeyReader),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)KeyReader_init,
    .tp_call = (ternaryfunc)KeyReader_call,
    .tp_traverse = (traverseproc)KeyReader_traverse,
    .tp_clear = (inquiry)KeyReader_clear,
    .tp_dealloc = (destructor)KeyReader_dealloc,
};

/* --- IdStream -------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *keys;   /* an iterator of keys in order (a cursor's iternext(values=False)) */
    PyObject *prefix; /* bytes: the stream ends at the first key without it */
} IdStream;

static PyObject *IdStream_next(IdStream *self) {
    if (self->keys == NULL) return NULL;
    PyObject *key = PyIter_Next(self->keys);
    if (key == NULL) return NULL; /* the end, or an error set by the iterator */
    if (!PyBytes_Check(key)) {
        Py_DECREF(key);
        PyErr_SetString(PyExc_TypeError, "a key that is not bytes");
        return NULL;
    }
    Py_ssize_t want_len = PyBytes_GET_SIZE(self->prefix);
    if (PyBytes_GET_SIZE(key) < want_len ||
        memcmp(PyBytes_AS_STRING(key), PyBytes_AS_STRING(self->prefix), want_len) != 0) {
        Py_DECREF(key);
        Py_CLEAR(self->keys); /* past the prefix: done for good */
        return NULL;
    }
    PyObject *row = unpack_ids(key);
    Py_DECREF(key);
    return row;
}

static int IdStream_init(IdStream *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"keys", "prefix", NULL};
    PyObject *keys, *prefix;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!:IdStream", names, &keys, &PyBytes_Type, &prefix))
        return -1;
    PyObject *iterator = PyObject_GetIter(keys);
    if (iterator == NULL) return -1;
    Py_XSETREF(self->keys, iterator);
    Py_INCREF(prefix);
    Py_XSETREF(self->prefix, prefix);
    return 0;
}

static int IdStream_traverse(IdStream *self, visitproc visit, void *arg) {
    Py_VISIT(self->keys);
    Py_VISIT(self->prefix);
    return 0;
}

static int IdStream_clear(IdStream *self) {
    Py_CLEAR(self->keys);
    Py_CLEAR(self->prefix);
    return 0;
}

static void IdStream_dealloc(IdStream *self) {
    PyObject_GC_UnTrack(self);
    IdStream_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject IdStreamType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mizu_core._speedups.IdStream",
    .tp_doc = "IdStream(keys, prefix)\n--\n\nThe id triples of the keys, until one lacks the prefix",
    .tp_basicsize = sizeof(IdStream),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)IdStream_init,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)IdStream_next,
    .tp_traverse = (traverseproc)IdStream_traverse,
    .tp_clear = (inquiry)IdStream_clear,
    .tp_dealloc = (destructor)IdStream_dealloc,
};

/* --- intern_terms --------------------------------------------------------------------- */

/* The id of `term`: cached in `ids`, given since the last settle (`new`), or the next id. */
static PyObject *term_id(PyObject *term, PyObject *ids, PyObject *new, PyObject *new_terms,
                         uint64_t *next, Py_ssize_t cache_limit, Py_ssize_t cached_term_size) {
    if (!PyBytes_CheckExact(term)) {
        PyErr_SetString(PyExc_TypeError, "a term that is not bytes");
        return NULL;
    }
    PyObject *id = PyDict_GetItemWithError(ids, term);
    if (id == NULL && !PyErr_Occurred()) id = PyDict_GetItemWithError(new, term);
    if (id != NULL || PyErr_Occurred()) {
        Py_XINCREF(id);
        return id;
    }
    id = PyLong_FromUnsignedLongLong((*next)++);
    if (id == NULL || PyDict_SetItem(new, term, id) < 0 || PyList_Append(new_terms, term) < 0)
        goto fail;
    if (PyBytes_GET_SIZE(term) <= cached_term_size) {
        if (PyDict_GET_SIZE(ids) >= cache_limit) PyDict_Clear(ids);
        if (PyDict_SetItem(ids, term, id) < 0) goto fail;
    }
    return id;
fail:
    Py_XDECREF(id);
    return NULL;
}

/* Term ids already found in one intern_terms call, by the term object's address: a
 * record's subject and predicates recur in its triples, and unpickled records share one
 * object per predicate, so most terms are found here without hashing them. */
typedef struct { PyObject *term; uint64_t id; } Seen;

static Seen *seen_slot(Seen *seen, size_t mask, PyObject *term) {
    size_t h = ((uintptr_t)term >> 4) * 0x9E3779B97F4A7C15ull >> 20;
    for (size_t probe = 0; probe < 8; probe++) {
        Seen *slot = &seen[(h + probe) & mask];
        if (slot->term == term || slot->term == NULL) return slot;
    }
    return NULL; /* crowded: look the term up in the dictionaries */
}

static PyObject *intern_terms(PyObject *module, PyObject *args) {
    PyObject *lists, *out, *ids, *new, *new_terms;
    unsigned long long next;
    Py_ssize_t cache_limit, cached_term_size;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!Knn:intern_terms", &PyList_Type, &lists,
                          &PyByteArray_Type, &out, &PyDict_Type, &ids, &PyDict_Type, &new,
                          &PyList_Type, &new_terms, &next, &cache_limit, &cached_term_size))
        return NULL;
    Py_ssize_t total = 0;
    for (Py_ssize_t r = 0; r < PyList_GET_SIZE(lists); r++) {
        PyObject *terms = PyList_GET_ITEM(lists, r);
        if (!PyList_Check(terms) || PyList_GET_SIZE(terms) % 3) {
            PyErr_SetString(PyExc_ValueError, "intern_terms() takes lists of the terms of whole triples");
            return NULL;
        }
        total += PyList_GET_SIZE(terms);
    }
    size_t size = 64;
    while (size < (size_t)total * 2 && size < (1u << 16)) size <<= 1;
    Seen *seen = PyMem_Calloc(size, sizeof(Seen));
    if (seen == NULL) return PyErr_NoMemory();
    Py_ssize_t start = PyByteArray_GET_SIZE(out), i = 0;
    uint64_t next_id = next;
    if (PyByteArray_Resize(out, start + (Py_ssize_t)sizeof(uint64_t) * total) < 0) goto fail;
    for (Py_ssize_t r = 0; r < PyList_GET_SIZE(lists); r++) {
        PyObject *terms = PyList_GET_ITEM(lists, r);
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(terms); k++, i++) {
            PyObject *term = PyList_GET_ITEM(terms, k);
            Seen *slot = seen_slot(seen, size - 1, term);
            uint64_t value;
            if (slot != NULL && slot->term == term) {
                value = slot->id;
            } else {
                PyObject *id = term_id(term, ids, new, new_terms, &next_id, cache_limit,
                                       cached_term_size);
                int failed = id == NULL || id_value(id, &value) < 0;
                Py_XDECREF(id);
                if (failed) {
                    PyByteArray_Resize(out, start);
                    goto fail;
                }
                if (slot != NULL) *slot = (Seen){term, value};
            }
            /* the bytearray may have moved: term_id runs Python code (dict lookups) */
            memcpy(PyByteArray_AS_STRING(out) + start + (Py_ssize_t)sizeof(uint64_t) * i, &value,
                   sizeof value);
        }
    }
    PyMem_Free(seen);
    return PyLong_FromUnsignedLongLong(next_id);
fail:
    PyMem_Free(seen);
    return NULL;
}

/* --- index_keys ----------------------------------------------------------------------- */

typedef struct { uint64_t id[3]; } Row;

#define DIGIT_BITS 11
#define DIGITS (1 << DIGIT_BITS)

/* Sort rows by (id[0], id[1], id[2]): an LSD radix sort, stable passes over 11-bit digits
 * from the last id's lowest to the first id's highest, skipping digits that no row varies
 * in (ids are mostly small, so most are skipped). Several times faster than qsort here.
 * `tmp` holds n rows. */
static void sort_rows(Row *rows, Row *tmp, Py_ssize_t n) {
    Row *from = rows, *to = tmp;
    for (int key = 2; key >= 0; key--) {
        uint64_t any = 0, all = ~(uint64_t)0;
        for (Py_ssize_t i = 0; i < n; i++) { any |= rows[i].id[key]; all &= rows[i].id[key]; }
        uint64_t varies = any ^ all;
        for (int shift = 0; shift < 64; shift += DIGIT_BITS) {
            if (((varies >> shift) & (DIGITS - 1)) == 0) continue;
            Py_ssize_t start[DIGITS] = {0};
            for (Py_ssize_t i = 0; i < n; i++) start[(from[i].id[key] >> shift) & (DIGITS - 1)]++;
            for (Py_ssize_t d = 0, sum = 0; d < DIGITS; d++) {
                Py_ssize_t count = start[d];
                start[d] = sum;
                sum += count;
            }
            for (Py_ssize_t i = 0; i < n; i++) to[start[(from[i].id[key] >> shift) & (DIGITS - 1)]++] = from[i];
            Row *swap = from;
            from = to;
            to = swap;
        }
    }
    if (from != rows) memcpy(rows, from, sizeof(Row) * (size_t)n);
}

/* rows' 24-byte big-endian keys, packed end to end in their order */
static PyObject *packed_keys(const Row *rows, Py_ssize_t n) {
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * KEY_LEN);
    if (out == NULL) return NULL;
    unsigned char *key = (unsigned char *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++, key += KEY_LEN)
        for (int j = 0; j < 3; j++) write_be64(key + 8 * j, rows[i].id[j]);
    return out;
}

/* KeyPairs(keys): (key, b"") for each KEY_LEN-byte key packed in `keys`, for LMDB's
 * putmulti. Like zip, it hands out the same pair again when its consumer has let go of it,
 * so a key costs one small bytes object, freed at once. */
typedef struct {
    PyObject_HEAD
    PyObject *keys, *pair, *empty;
    Py_ssize_t pos, stop;
} KeyPairs;

static PyObject *KeyPairs_next(KeyPairs *self) {
    if (self->pos + KEY_LEN > self->stop) return NULL;
    PyObject *key = PyBytes_FromStringAndSize(PyBytes_AS_STRING(self->keys) + self->pos, KEY_LEN);
    if (key == NULL) return NULL;
    self->pos += KEY_LEN;
    if (self->pair != NULL && Py_REFCNT(self->pair) == 1) {
        PyObject *old = PyTuple_GET_ITEM(self->pair, 0);
        PyTuple_SET_ITEM(self->pair, 0, key);
        Py_DECREF(old);
    } else {
        Py_XDECREF(self->pair);
        self->pair = PyTuple_Pack(2, key, self->empty);
        Py_DECREF(key);
        if (self->pair == NULL) return NULL;
    }
    return Py_NewRef(self->pair);
}

static int KeyPairs_init(KeyPairs *self, PyObject *args, PyObject *kwargs) {
    PyObject *keys;
    if (!PyArg_ParseTuple(args, "O!:KeyPairs", &PyBytes_Type, &keys)) return -1;
    if (PyBytes_GET_SIZE(keys) % KEY_LEN) {
        PyErr_SetString(PyExc_ValueError, "KeyPairs() takes whole 24-byte keys");
        return -1;
    }
    Py_XSETREF(self->keys, Py_NewRef(keys));
    Py_CLEAR(self->pair);
    if (self->empty == NULL && (self->empty = PyBytes_FromStringAndSize("", 0)) == NULL) return -1;
    self->pos = 0;
    self->stop = PyBytes_GET_SIZE(keys);
    return 0;
}

static void KeyPairs_dealloc(KeyPairs *self) {
    Py_XDECREF(self->keys);
    Py_XDECREF(self->pair);
    Py_XDECREF(self->empty);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject KeyPairsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mizu_core._speedups.KeyPairs",
    .tp_basicsize = sizeof(KeyPairs),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "KeyPairs(keys, /)\n--\n\n(key, b'') for each 24-byte key packed in keys",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)KeyPairs_init,
    .tp_dealloc = (destructor)KeyPairs_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)KeyPairs_next,
};

/* `replaced` ({id: id}) as pairs sorted by the id replaced, for `replace` */
typedef struct { uint64_t from, to; } Replacement;

static int compare_replacements(const void *a, const void *b) {
    uint64_t x = ((const Replacement *)a)->from, y = ((const Replacement *)b)->from;
    return (x > y) - (x < y);
}

static uint64_t replace(uint64_t id, const Replacement *r, Py_ssize_t n) {
    if (n == 0 || id < r[0].from || id > r[n - 1].from) return id; /* most ids: no search */
    Py_ssize_t lo = 0, hi = n - 1;
    while (lo <= hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (r[mid].from == id) return r[mid].to;
        if (r[mid].from < id) lo = mid + 1; else hi = mid - 1;
    }
    return id;
}

/* {p: triples with predicate p} of rows sorted in pos order */
static PyObject *predicate_counts(const Row *pos, Py_ssize_t n) {
    PyObject *counts = PyDict_New();
    for (Py_ssize_t i = 0, run = 0; counts != NULL && i < n; i += run) {
        for (run = 1; i + run < n && pos[i + run].id[0] == pos[i].id[0]; run++) {}
        PyObject *p = PyLong_FromUnsignedLongLong(pos[i].id[0]);
        PyObject *count = p ? PyLong_FromSsize_t(run) : NULL;
        if (count == NULL || PyDict_SetItem(counts, p, count) < 0) Py_CLEAR(counts);
        Py_XDECREF(p);
        Py_XDECREF(count);
    }
    return counts;
}

static PyObject *index_keys(PyObject *module, PyObject *args) {
    static const int orders[3][3] = {{0, 1, 2}, {1, 2, 0}, {2, 0, 1}}; /* spo, pos, osp */
    Py_buffer rows;
    PyObject *replaced;
    if (!PyArg_ParseTuple(args, "y*O!:index_keys", &rows, &PyDict_Type, &replaced)) return NULL;
    Py_ssize_t n = rows.len / (Py_ssize_t)sizeof(Row);
    Py_ssize_t nr = PyDict_GET_SIZE(replaced);
    Row *spo = PyMem_Malloc(sizeof(Row) * (size_t)(n ? n : 1));
    Row *sorted = PyMem_Malloc(sizeof(Row) * (size_t)(n ? n : 1));
    Row *tmp = PyMem_Malloc(sizeof(Row) * (size_t)(n ? n : 1));
    Replacement *by = PyMem_Malloc(sizeof(Replacement) * (size_t)(nr ? nr : 1));
    PyObject *result = NULL;
    if (spo == NULL || sorted == NULL || tmp == NULL || by == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (rows.len % (Py_ssize_t)sizeof(Row)) {
        PyErr_SetString(PyExc_ValueError, "index_keys() takes whole rows of three ids");
        goto done;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0, k = 0;
    while (PyDict_Next(replaced, &pos, &key, &value)) {
        if (id_value(key, &by[k].from) < 0 || id_value(value, &by[k].to) < 0) goto done;
        k++;
    }
    qsort(by, (size_t)nr, sizeof(Replacement), compare_replacements);
    memcpy(spo, rows.buf, (size_t)rows.len);
    for (Py_ssize_t i = 0; nr && i < n; i++)
        for (int j = 0; j < 3; j++) spo[i].id[j] = replace(spo[i].id[j], by, nr);
    result = PyTuple_New(4);
    if (result == NULL) goto done;
    for (int k = 0; k < 3; k++) {
        for (Py_ssize_t i = 0; i < n; i++)
            for (int j = 0; j < 3; j++) sorted[i].id[j] = spo[i].id[orders[k][j]];
        sort_rows(sorted, tmp, n);
        PyObject *keys = packed_keys(sorted, n);
        if (keys == NULL) { Py_CLEAR(result); goto done; }
        PyTuple_SET_ITEM(result, k, keys);
        if (k == 1) {
            PyObject *counts = predicate_counts(sorted, n);
            if (counts == NULL) { Py_CLEAR(result); goto done; }
            PyTuple_SET_ITEM(result, 3, counts);
        }
    }
done:
    PyMem_Free(spo);
    PyMem_Free(sorted);
    PyMem_Free(tmp);
    PyMem_Free(by);
    PyBuffer_Release(&rows);
    return result;
}

/* --- Encoder: canonical DAG-CBOR ------------------------------------------------------- */

#define MAX_DEPTH 256 /* as codec.MAX_DEPTH */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buffer;

static int reserve(Buffer *b, Py_ssize_t more) {
    if (b->len + more <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more) cap *= 2;
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) { PyErr_NoMemory(); return -1; }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int put_bytes(Buffer *b, const void *src, Py_ssize_t n) {
    if (reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, src, (size_t)n);
    b->len += n;
    return 0;
}

/* a CBOR head: major type and argument, in the shortest form */
static int put_head(Buffer *b, int major, uint64_t n) {
    unsigned char head[9];
    int size;
    if (n < 24) { head[0] = (unsigned char)(major << 5 | n); size = 1; }
    else if (n < 0x100) { head[0] = (unsigned char)(major << 5 | 24); head[1] = (unsigned char)n; size = 2; }
    else if (n < 0x10000) {
        head[0] = (unsigned char)(major << 5 | 25);
        head[1] = (unsigned char)(n >> 8); head[2] = (unsigned char)n; size = 3;
    } else if (n < 0x100000000ULL) {
        head[0] = (unsigned char)(major << 5 | 26);
        for (int i = 0; i < 4; i++) head[1 + i] = (unsigned char)(n >> (24 - 8 * i));
        size = 5;
    } else {
        head[0] = (unsigned char)(major << 5 | 27);
        write_be64(head + 1, n);
        size = 9;
    }
    return put_bytes(b, head, size);
}

typedef struct {
    PyObject_HEAD
    PyObject *cid_type; /* codec's CID class: encoded as tag 42 over 0x00 + cid.raw */
    PyObject *error;    /* InvalidMessage: what every refusal raises */
} Encoder;

typedef struct {
    const char *key;
    Py_ssize_t len;
    PyObject *value;
} Entry;

/* canonical map order: shorter UTF-8 keys first, then bytewise */
static int compare_entries(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return memcmp(x->key, y->key, (size_t)x->len);
}

static int encode_value(Encoder *self, PyObject *v, Buffer *b, int depth);

static int encode_int(Encoder *self, PyObject *v, Buffer *b) {
    int overflow;
    long long small = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (small == -1 && PyErr_Occurred()) return -1;
    if (!overflow) {
        return small >= 0 ? put_head(b, 0, (uint64_t)small) : put_head(b, 1, (uint64_t)(-1 - small));
    }
    /* beyond 64 signed bits: unsigned 64 bits still fit, for -1 - v when v is negative */
    PyObject *magnitude = overflow > 0 ? Py_NewRef(v) : PyNumber_Invert(v);
    if (magnitude == NULL) return -1;
    uint64_t n = PyLong_AsUnsignedLongLong(magnitude);
    Py_DECREF(magnitude);
    if (n == (uint64_t)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
        PyErr_Clear();
        PyErr_Format(self->error, "integer %S does not fit in 64 bits", v);
        return -1;
    }
    return put_head(b, overflow > 0 ? 0 : 1, n);
}

static int encode_map(Encoder *self, PyObject *v, Buffer *b, int depth) {
    Py_ssize_t n = PyDict_GET_SIZE(v), pos = 0, i = 0;
    Entry *entries = PyMem_Malloc(sizeof(Entry) * (size_t)(n ? n : 1));
    if (entries == NULL) { PyErr_NoMemory(); return -1; }
    PyObject *key, *value;
    int failed = 0;
    while (PyDict_Next(v, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            PyErr_Format(self->error, "map key %R is not a string", key);
            failed = 1;
            break;
        }
        entries[i].key = PyUnicode_AsUTF8AndSize(key, &entries[i].len);
        if (entries[i].key == NULL) { failed = 1; break; }
        entries[i++].value = value; /* borrowed: the dict keeps keys and values alive */
    }
    if (!failed) {
        qsort(entries, (size_t)n, sizeof(Entry), compare_entries);
        failed = put_head(b, 5, (uint64_t)n) < 0;
        for (i = 0; i < n && !failed; i++) {
            failed = put_head(b, 3, (uint64_t)entries[i].len) < 0 ||
                     put_bytes(b, entries[i].key, entries[i].len) < 0 ||
                     encode_value(self, entries[i].value, b, depth + 1) < 0;
        }
    }
    PyMem_Free(entries);
    return failed ? -1 : 0;
}

static int encode_value(Encoder *self, PyObject *v, Buffer *b, int depth) {
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyUnicode_Type) {
        Py_ssize_t n;
        const char *text = PyUnicode_AsUTF8AndSize(v, &n); /* a lone surrogate raises */
        if (text == NULL) return -1;
        return put_head(b, 3, (uint64_t)n) < 0 ? -1 : put_bytes(b, text, n);
    }
    if (t == &PyDict_Type || t == &PyList_Type) {
        if (depth >= MAX_DEPTH) {
            PyErr_Format(self->error, "nesting deeper than %d levels", MAX_DEPTH);
            return -1;
        }
        if (t == &PyDict_Type) return encode_map(self, v, b, depth);
        Py_ssize_t n = PyList_GET_SIZE(v);
        if (put_head(b, 4, (uint64_t)n) < 0) return -1;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++) {
            if (encode_value(self, PyList_GET_ITEM(v, i), b, depth + 1) < 0) return -1;
        }
        return 0;
    }
    if (t == &PyLong_Type) return encode_int(self, v, b);
    if (t == &PyFloat_Type) {
        double x = PyFloat_AS_DOUBLE(v);
        if (!isfinite(x)) {
            PyErr_SetString(self->error, "NaN and infinite numbers cannot be stored");
            return -1;
        }
        unsigned char out[9] = {0xfb};
        if (PyFloat_Pack8(x, (char *)out + 1, 0) < 0) return -1; /* big-endian */
        return put_bytes(b, out, 9);
    }
    if (v == Py_True || v == Py_False) {
        unsigned char simple = v == Py_True ? 0xf5 : 0xf4;
        return put_bytes(b, &simple, 1);
    }
    if (v == Py_None) {
        unsigned char simple = 0xf6;
        return put_bytes(b, &simple, 1);
    }
    if (t == &PyBytes_Type) {
        Py_ssize_t n = PyBytes_GET_SIZE(v);
        return put_head(b, 2, (uint64_t)n) < 0 ? -1 : put_bytes(b, PyBytes_AS_STRING(v), n);
    }
    if ((PyObject *)t == self->cid_type) {
        PyObject *raw = PyObject_GetAttrString(v, "raw");
        if (raw == NULL) return -1;
        if (!PyBytes_Check(raw)) {
            Py_DECREF(raw);
            PyErr_SetString(PyExc_TypeError, "CID.raw is not bytes");
            return -1;
        }
        static const unsigned char tag[2] = {0xd8, 0x2a}, zero = 0;
        Py_ssize_t n = PyBytes_GET_SIZE(raw);
        int failed = put_bytes(b, tag, 2) < 0 || put_head(b, 2, (uint64_t)n + 1) < 0 ||
                     put_bytes(b, &zero, 1) < 0 || put_bytes(b, PyBytes_AS_STRING(raw), n) < 0;
        Py_DECREF(raw);
        return failed ? -1 : 0;
    }
    PyObject *name = PyType_GetName(t);
    if (name != NULL) {
        PyErr_Format(self->error, "value of type %U cannot be stored", name);
        Py_DECREF(name);
    }
    return -1;
}

static PyObject *Encoder_call(Encoder *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"value", "depth", NULL};
    PyObject *value;
    int depth = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|i:encode", names, &value, &depth)) return NULL;
    Buffer b = {NULL, 0, 0};
    PyObject *out = NULL;
    if (encode_value(self, value, &b, depth) == 0) out = PyBytes_FromStringAndSize(b.data, b.len);
    PyMem_Free(b.data);
    return out;
}

static int Encoder_init(Encoder *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"cid_type", "error", NULL};
    PyObject *cid_type, *error;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:Encoder", names, &cid_type, &error)) return -1;
    if (!PyType_Check(cid_type) || !PyExceptionClass_Check(error)) {
        PyErr_SetString(PyExc_TypeError, "Encoder(cid_type, error) takes a class and an exception class");
        return -1;
    }
    Py_INCREF(cid_type);
    Py_XSETREF(self->cid_type, cid_type);
    Py_INCREF(error);
    Py_XSETREF(self->error, error);
    return 0;
}

static int Encoder_traverse(Encoder *self, visitproc visit, void *arg) {
    Py_VISIT(self->cid_type);
    Py_VISIT(self->error);
    return 0;
}

static int Encoder_clear(Encoder *self) {
    Py_CLEAR(self->cid_type);
    Py_CLEAR(self->error);
    return 0;
}

static void Encoder_dealloc(Encoder *self) {
    PyObject_GC_UnTrack(self);
    Encoder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mizu_core._speedups.Encoder",
    .tp_doc = "Encoder(cid_type, error)\n--\n\nencode(value, depth=0) -> canonical DAG-CBOR bytes",
    .tp_basicsize = sizeof(Encoder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Encoder_init,
    .tp_call = (ternaryfunc)Encoder_call,
    .tp_traverse = (traverseproc)Encoder_traverse,
    .tp_clear = (inquiry)Encoder_clear,
    .tp_dealloc = (destructor)Encoder_dealloc,
};

/* --- has_reserved ------------------------------------------------------------------------ */

/* 1 if a dict or list holds, at any depth, a key that starts with '$' (the reserved fields
 * message/validate.py checks) or anything else that walk should see: a key that is not a
 * string, or nesting past MAX_DEPTH. Most messages hold none and skip the Python walk. */
static int reserved_in(PyObject *v, int depth) {
    if (depth > MAX_DEPTH) return 1;
    if (PyList_CheckExact(v)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++) {
            PyObject *item = PyList_GET_ITEM(v, i);
            if ((PyDict_CheckExact(item) || PyList_CheckExact(item)) && reserved_in(item, depth + 1))
                return 1;
        }
        return 0;
    }
    PyObject *key, *item;
    Py_ssize_t pos = 0;
    while (PyDict_Next(v, &pos, &key, &item)) {
        if (!PyUnicode_Check(key) ||
            (PyUnicode_GET_LENGTH(key) > 0 && PyUnicode_READ_CHAR(key, 0) == '$'))
            return 1;
        if ((PyDict_CheckExact(item) || PyList_CheckExact(item)) && reserved_in(item, depth + 1))
            return 1;
    }
    return 0;
}

static PyObject *has_reserved(PyObject *module, PyObject *value) {
    if (!PyDict_CheckExact(value) && !PyList_CheckExact(value)) Py_RETURN_FALSE;
    return PyBool_FromLong(reserved_in(value, 0));
}

/* --- base32 ------------------------------------------------------------------------------ */

static PyObject *base32(PyObject *module, PyObject *arg) {
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
static PyObject *b58encode(PyObject *module, PyObject *arg) {
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

static PyObject *b58decode(PyObject *module, PyObject *arg) {
    static signed char index[128];
    static int ready = 0;
    if (!ready) {
        memset(index, -1, sizeof index);
        for (int i = 0; i < 58; i++) index[(unsigned char)B58[i]] = (signed char)i;
        ready = 1;
    }
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "b58decode() takes a str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg), zeros = 0;
    int kind = PyUnicode_KIND(arg);
    const void *chars = PyUnicode_DATA(arg);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, chars, i);
        if (c >= 128 || index[c] < 0) {
            PyObject *bad = PyUnicode_Substring(arg, i, i + 1);
            if (bad != NULL) {
                PyErr_Format(PyExc_ValueError, "invalid base58 character %R", bad);
                Py_DECREF(bad);
            }
            return NULL;
        }
    }
    while (zeros < n && PyUnicode_READ(kind, chars, zeros) == '1') zeros++;
    Py_ssize_t size = (n - zeros) * 733 / 1000 + 1; /* log(58) / log(256) < 0.733 */
    unsigned char *bytes = PyMem_Calloc((size_t)size, 1);
    if (bytes == NULL) return PyErr_NoMemory();
    Py_ssize_t used = 0;
    for (Py_ssize_t i = zeros; i < n; i++) {
        unsigned int carry = (unsigned int)index[PyUnicode_READ(kind, chars, i)];
        Py_ssize_t j = 0;
        for (Py_ssize_t k = size - 1; k >= 0 && (carry || j < used); k--, j++) {
            carry += 58u * bytes[k];
            bytes[k] = (unsigned char)(carry & 0xff);
            carry >>= 8;
        }
        used = j;
    }
    Py_ssize_t start = size - used;
    while (start < size && bytes[start] == 0) start++;
    PyObject *out = PyBytes_FromStringAndSize(NULL, zeros + size - start);
    if (out != NULL) {
        char *dst = PyBytes_AS_STRING(out);
        memset(dst, 0, (size_t)zeros);
        memcpy(dst + zeros, bytes + start, (size_t)(size - start));
    }
    PyMem_Free(bytes);
    return out;
}

/* --- term_claims and term_rows --------------------------------------------------------- */

/* BLAKE2b with a 16-byte digest and no key, after RFC 7693: the `term_ids` key of a term
 * (index.py's term_hash, which hashlib computes; the tests compare the two). */

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

#define TERM_HASH_LEN 16

static void term_hash(const unsigned char *data, size_t n, unsigned char out[TERM_HASH_LEN]) {
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

static PyObject *py_term_hash(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    unsigned char digest[TERM_HASH_LEN];
    term_hash(view.buf, (size_t)view.len, digest);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)digest, TERM_HASH_LEN);
}

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

static PyObject *term_claims(PyObject *module, PyObject *new) {
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

static PyObject *bloom_probe(PyObject *module, PyObject *args) {
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

static PyObject *term_rows(PyObject *module, PyObject *args) {
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

/* --- message_triples ------------------------------------------------------------------ */

/* message/triples.py's mapping of a message to its triples, the same triples in the same
 * order. The rare parts call back into Python: predicates not cached yet, resolving a
 * pointer, a CID link's IRI, and the canonical order of a set that is not all strings. */

typedef struct {
    PyObject *out;        /* {triple: None}: distinct triples in the order found */
    PyObject *predicates; /* {key: (predicate term, path segment)}, filled by `predicate` */
    PyObject *predicate, *resolve, *link_iri, *set_elements; /* the Python helpers */
    PyObject *cid_type;
} Mapping;

static int is_iri_field(PyObject *key) {
    return PyUnicode_CompareWithASCIIString(key, "$prev") == 0 ||
           PyUnicode_CompareWithASCIIString(key, "$include") == 0 ||
           PyUnicode_CompareWithASCIIString(key, "$schema") == 0;
}

static int is_pattern_key(PyObject *key) {
    return PyUnicode_CompareWithASCIIString(key, "@where") == 0 ||
           PyUnicode_CompareWithASCIIString(key, "@construct") == 0;
}

/* kind byte + UTF-8 text */
static PyObject *text_term(char kind, PyObject *text) {
    Py_ssize_t n;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &n);
    if (utf8 == NULL) return NULL;
    PyObject *term = PyBytes_FromStringAndSize(NULL, n + 1);
    if (term == NULL) return NULL;
    PyBytes_AS_STRING(term)[0] = kind;
    memcpy(PyBytes_AS_STRING(term) + 1, utf8, (size_t)n);
    return term;
}

/* terms.literal: NULL with TypeError for a value that is no literal */
static PyObject *literal_term(PyObject *v) {
    if (PyUnicode_CheckExact(v)) return text_term('S', v);
    if (PyBool_Check(v)) return PyBytes_FromStringAndSize(v == Py_True ? "b1" : "b0", 2);
    if (PyLong_CheckExact(v)) {
        PyObject *digits = PyObject_Str(v);
        PyObject *term = digits ? text_term('i', digits) : NULL;
        Py_XDECREF(digits);
        return term;
    }
    if (PyFloat_CheckExact(v)) {
        union { double d; uint64_t u; } bits = {.d = PyFloat_AS_DOUBLE(v)};
        unsigned char raw[9] = {'d'};
        write_be64(raw + 1, bits.u);
        return PyBytes_FromStringAndSize((const char *)raw, 9);
    }
    if (PyBytes_CheckExact(v)) {
        Py_ssize_t n = PyBytes_GET_SIZE(v);
        PyObject *term = PyBytes_FromStringAndSize(NULL, n + 1);
        if (term == NULL) return NULL;
        PyBytes_AS_STRING(term)[0] = 'x';
        memcpy(PyBytes_AS_STRING(term) + 1, PyBytes_AS_STRING(v), (size_t)n);
        return term;
    }
    PyErr_Format(PyExc_TypeError, "no literal for %s", Py_TYPE(v)->tp_name);
    return NULL;
}

/* `base` (an IRI term) + "/" + suffix */
static PyObject *child_term(PyObject *base, const char *suffix, Py_ssize_t n) {
    Py_ssize_t len = PyBytes_GET_SIZE(base);
    PyObject *term = PyBytes_FromStringAndSize(NULL, len + 1 + n);
    if (term == NULL) return NULL;
    char *p = PyBytes_AS_STRING(term);
    memcpy(p, PyBytes_AS_STRING(base), (size_t)len);
    p[len] = '/';
    memcpy(p + len + 1, suffix, (size_t)n);
    return term;
}

/* The IRI term of what a Python helper returned (an IRI as str) */
static PyObject *iri_of(PyObject *text) {
    if (text == NULL) return NULL;
    PyObject *term = PyUnicode_Check(text) ? text_term('I', text) : NULL;
    if (term == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "a triple helper returned what is not an IRI");
    Py_DECREF(text);
    return term;
}

static int add_triple(Mapping *m, PyObject *s, PyObject *p, PyObject *o) {
    if (o == NULL) return -1;
    PyObject *triple = PyTuple_Pack(3, s, p, o);
    Py_DECREF(o);
    if (triple == NULL) return -1;
    int failed = PyDict_SetItem(m->out, triple, Py_None);
    Py_DECREF(triple);
    return failed;
}

static int describe(Mapping *m, PyObject *subject, PyObject *node, int plain);
static int describe_field(Mapping *m, PyObject *subject, PyObject *key, PyObject *value,
                          PyObject *predicate, int plain);

/* The object term of `value`, describing it first when it is a node (triples.py's obj) */
static PyObject *object_term(Mapping *m, PyObject *value, PyObject *node, PyObject *key, int plain) {
    if (PyDict_CheckExact(value)) {
        if (!plain && PyDict_GET_SIZE(value) == 1) {
            PyObject *ref = PyDict_GetItemString(value, "$ref");
            if (ref != NULL && PyUnicode_CheckExact(ref))
                return iri_of(PyObject_CallOneArg(m->resolve, ref));
        }
        if (describe(m, node, value, plain) < 0) return NULL;
        Py_INCREF(node);
        return node;
    }
    if ((PyObject *)Py_TYPE(value) == m->cid_type) return iri_of(PyObject_CallOneArg(m->link_iri, value));
    if (!plain && PyUnicode_CheckExact(value) && is_iri_field(key))
        return iri_of(PyObject_CallOneArg(m->resolve, value));
    return literal_term(value);
}

/* A set's distinct elements in canonical order: strings sorted here, the rest by Python */
static int flatten(PyObject *list, PyObject *flat, int *all_text) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *v = PyList_GET_ITEM(list, i);
        if (PyList_CheckExact(v)) {
            if (flatten(v, flat, all_text) < 0) return -1;
        } else if (v != Py_None) {
            if (!PyUnicode_CheckExact(v)) *all_text = 0;
            if (PyList_Append(flat, v) < 0) return -1;
        }
    }
    return 0;
}

typedef struct { const char *utf8; Py_ssize_t n; PyObject *text; } Text;

static int compare_texts(const void *a, const void *b) {
    const Text *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? -1 : 1;
    return memcmp(x->utf8, y->utf8, (size_t)x->n);
}

static PyObject *set_elements(Mapping *m, PyObject *list) {
    PyObject *flat = PyList_New(0);
    int all_text = 1;
    if (flat == NULL || flatten(list, flat, &all_text) < 0) goto fail;
    Py_ssize_t n = PyList_GET_SIZE(flat);
    if (n < 2) return flat;
    if (!all_text) {
        Py_DECREF(flat);
        return PyObject_CallOneArg(m->set_elements, list);
    }
    Text *texts = PyMem_Malloc(sizeof(Text) * (size_t)n);
    if (texts == NULL) { PyErr_NoMemory(); goto fail; }
    for (Py_ssize_t i = 0; i < n; i++) {
        texts[i].text = PyList_GET_ITEM(flat, i);
        texts[i].utf8 = PyUnicode_AsUTF8AndSize(texts[i].text, &texts[i].n);
        if (texts[i].utf8 == NULL) { PyMem_Free(texts); goto fail; }
    }
    qsort(texts, (size_t)n, sizeof(Text), compare_texts);
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        if (i > 0 && compare_texts(&texts[i - 1], &texts[i]) == 0) continue;
        if (PyList_Append(out, texts[i].text) < 0) Py_CLEAR(out);
    }
    PyMem_Free(texts);
    Py_DECREF(flat);
    return out;
fail:
    Py_XDECREF(flat);
    return NULL;
}

static int describe(Mapping *m, PyObject *subject, PyObject *node, int plain) {
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(node, &pos, &key, &value)) {
        if (!PyUnicode_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "a map key that is not a string");
            return -1;
        }
        if (value == Py_None || is_pattern_key(key)) continue;
        PyObject *predicate = PyDict_GetItemWithError(m->predicates, key);
        if (predicate != NULL) Py_INCREF(predicate);
        else if (!PyErr_Occurred()) predicate = PyObject_CallOneArg(m->predicate, key);
        if (predicate == NULL) return -1;
        int failed = describe_field(m, subject, key, value, predicate, plain);
        Py_DECREF(predicate);
        if (failed) return -1;
    }
    return 0;
}

/* The triples of one field of a node */
static int describe_field(Mapping *m, PyObject *subject, PyObject *key, PyObject *value,
                          PyObject *predicate, int plain) {
    const char *seg;
    Py_ssize_t seg_len;
    if (!PyTuple_Check(predicate) || PyTuple_GET_SIZE(predicate) != 2 ||
        !PyBytes_Check(PyTuple_GET_ITEM(predicate, 0)) ||
        (seg = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(predicate, 1), &seg_len)) == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "a predicate is a (term, segment) pair");
        return -1;
    }
    PyObject *p = PyTuple_GET_ITEM(predicate, 0);
    int is_list = PyList_CheckExact(value);
    if (!is_list && !PyDict_CheckExact(value) && (PyObject *)Py_TYPE(value) != m->cid_type &&
        (!PyUnicode_CheckExact(value) || plain || !is_iri_field(key)))
        return add_triple(m, subject, p, literal_term(value)); /* most values: no node IRI */
    int field_plain = plain || (PyUnicode_GET_LENGTH(key) >= 2 && PyUnicode_READ_CHAR(key, 0) == '$' &&
                                PyUnicode_READ_CHAR(key, 1) == '$');
    PyObject *base = child_term(subject, seg, seg_len);
    if (base == NULL) return -1;
    if (!is_list) {
        int failed = add_triple(m, subject, p, object_term(m, value, base, key, field_plain));
        Py_DECREF(base);
        return failed;
    }
    PyObject *elements = set_elements(m, value);
    int failed = elements == NULL || !PyList_Check(elements);
    if (elements != NULL && failed) PyErr_SetString(PyExc_TypeError, "set elements are a list");
    for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(elements); i++) {
        char rank[24];
        int n = snprintf(rank, sizeof rank, "%zd", i);
        PyObject *element_node = child_term(base, rank, n);
        failed = element_node == NULL ||
                 add_triple(m, subject, p,
                            object_term(m, PyList_GET_ITEM(elements, i), element_node, key, field_plain)) < 0;
        Py_XDECREF(element_node);
    }
    Py_XDECREF(elements);
    Py_DECREF(base);
    return failed ? -1 : 0;
}

/* The terms of the triples (the keys of `triples`), each triple's in turn: s, p, o, s, … */
static PyObject *flat_terms(PyObject *triples) {
    PyObject *out = PyList_New(3 * PyDict_GET_SIZE(triples));
    PyObject *triple, *value;
    Py_ssize_t pos = 0, i = 0;
    if (out == NULL) return NULL;
    while (PyDict_Next(triples, &pos, &triple, &value)) {
        for (int k = 0; k < 3; k++) {
            PyObject *term = PyTuple_GET_ITEM(triple, k);
            Py_INCREF(term);
            PyList_SET_ITEM(out, i++, term);
        }
    }
    return out;
}

static PyObject *message_triples(PyObject *module, PyObject *args) {
    PyObject *root, *message;
    Mapping m;
    int flat = 0;
    if (!PyArg_ParseTuple(args, "UO!O!OOOOO|p:message_triples", &root, &PyDict_Type, &message,
                          &PyDict_Type, &m.predicates, &m.predicate, &m.resolve, &m.link_iri,
                          &m.set_elements, &m.cid_type, &flat))
        return NULL;
    PyObject *subject = text_term('I', root);
    m.out = PyDict_New();
    PyObject *result = NULL;
    if (subject != NULL && m.out != NULL && describe(&m, subject, message, 0) == 0)
        result = flat ? flat_terms(m.out) : PyDict_Keys(m.out);
    Py_XDECREF(subject);
    Py_XDECREF(m.out);
    return result;
}

/* --- the module ----------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"intern_terms", intern_terms, METH_VARARGS,
     "intern_terms($module, term_lists, out, ids, new, new_terms, next_id, cache_limit,"
     " cached_term_size, /)\n--\n\n"
     "-> next_id: TermDictionary.intern over the terms of many triples, each list's in turn"
     " (s, p, o, s, ...), their ids appended to out (native uint64s)"},
    {"has_reserved", has_reserved, METH_O,
     "has_reserved($module, value, /)\n--\n\n"
     "Whether a dict or list holds a '$' key at any depth (or a key that is not a string, or"
     " nesting past MAX_DEPTH)"},
    {"base32", base32, METH_O,
     "base32($module, data, /)\n--\n\nRFC 4648 base32 text, lower case, unpadded"},
    {"b58encode", b58encode, METH_O,
     "b58encode($module, data, /)\n--\n\nbase58btc text (bitcoin alphabet)"},
    {"b58decode", b58decode, METH_O,
     "b58decode($module, text, /)\n--\n\nbytes; ValueError on a bad character"},
    {"term_hash", py_term_hash, METH_O,
     "term_hash($module, term, /)\n--\n\n16-byte BLAKE2b digest"},
    {"term_claims", term_claims, METH_O,
     "term_claims($module, new, /)\n--\n\n"
     "[(term_hash(term), 8-byte id)] of a {term: id} dict, by hash"},
    {"bloom_probe", bloom_probe, METH_VARARGS,
     "bloom_probe($module, bloom, claims, /)\n--\n\n"
     "Indexes of the claims whose hash the bloom may hold; it then holds them all (two bits"
     " each, from the hash's two halves)"},
    {"term_rows", term_rows, METH_VARARGS,
     "term_rows($module, new, skip, /)\n--\n\n"
     "[(8-byte id, term)] of a {term: id} dict, in its order, but for the ids in skip"},
    {"message_triples", message_triples, METH_VARARGS,
     "message_triples($module, root_iri, message, predicates, predicate, resolve, link_iri,"
     " set_elements, cid_type, flat=False, /)\n--\n\n"
     "Triples (flat: their terms in turn): message/triples.py's mapping, with its helpers for"
     " the rare parts"},
    {"index_keys", index_keys, METH_VARARGS,
     "index_keys($module, rows, replaced, /)\n--\n\n"
     "(spo, pos, osp, predicate_counts): of id triples packed as native uint64s (intern_terms),"
     " each its sorted 24-byte keys packed end to end (for KeyPairs), ids mapped through"
     " replaced; and {p: triples with p}"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mizu_core._speedups",
    "C versions of the triple index's hottest loops (optional; see mizu_core/speedups.py)",
    -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (PyType_Ready(&KeyReaderType) < 0 || PyType_Ready(&IdStreamType) < 0 ||
        PyType_Ready(&EncoderType) < 0 || PyType_Ready(&KeyPairsType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "KeyReader", (PyObject *)&KeyReaderType) < 0 ||
        PyModule_AddObjectRef(m, "IdStream", (PyObject *)&IdStreamType) < 0 ||
        PyModule_AddObjectRef(m, "Encoder", (PyObject *)&EncoderType) < 0 ||
        PyModule_AddObjectRef(m, "KeyPairs", (PyObject *)&KeyPairsType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
