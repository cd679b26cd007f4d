/* C versions of the two loops that bound the triple index's speed from Python.
 *
 * KeyReader: a query's many short prefix scans (set_range, then key/next while the key
 *   starts with the prefix), each key unpacked to three ids; IdStream: the same for the
 *   rest of a long scan, from a cursor's key iterator. Same contract as the Python reader
 *   in mizu_core/repo/kv.py, which stays the fallback.
 * index_keys: the 24-byte spo, pos and osp keys of many id triples, each list sorted, as
 *   (key, b"") pairs ready for LMDB's putmulti. Same result as IndexWriter's Python loop.
 *
 * Both are optional: mizu_core/speedups.py imports this module when it was built.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_LEN 24 /* three 8-byte big-endian ids */

static uint64_t read_be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
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
    .tp_doc = "KeyReader(cursor, more, short): read(prefix) -> list of id triples, or "
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
    .tp_doc = "IdStream(keys, prefix): the id triples of the keys, until one lacks the prefix",
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

/* --- index_keys ----------------------------------------------------------------------- */

typedef struct { uint64_t id[3]; } Row;

static int compare_rows(const void *a, const void *b) {
    const Row *x = a, *y = b;
    for (int i = 0; i < 3; i++) {
        if (x->id[i] != y->id[i]) return x->id[i] < y->id[i] ? -1 : 1;
    }
    return 0;
}

/* (key, b"") pairs of rows, in their order */
static PyObject *pairs(const Row *rows, Py_ssize_t n, PyObject *empty) {
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    unsigned char key[KEY_LEN];
    for (Py_ssize_t i = 0; i < n; i++) {
        for (int j = 0; j < 3; j++) write_be64(key + 8 * j, rows[i].id[j]);
        PyObject *bytes = PyBytes_FromStringAndSize((const char *)key, KEY_LEN);
        if (bytes == NULL) { Py_DECREF(out); return NULL; }
        PyObject *pair = PyTuple_Pack(2, bytes, empty);
        Py_DECREF(bytes);
        if (pair == NULL) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, i, pair);
    }
    return out;
}

static PyObject *index_keys(PyObject *module, PyObject *triples) {
    static const int orders[3][3] = {{0, 1, 2}, {1, 2, 0}, {2, 0, 1}}; /* spo, pos, osp */
    PyObject *seq = PySequence_Fast(triples, "index_keys() takes a sequence of id triples");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Row *spo = PyMem_Malloc(sizeof(Row) * (size_t)(n ? n : 1));
    Row *sorted = PyMem_Malloc(sizeof(Row) * (size_t)(n ? n : 1));
    PyObject *empty = PyBytes_FromStringAndSize("", 0);
    PyObject *result = NULL;
    if (spo == NULL || sorted == NULL || empty == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 3) {
            PyErr_SetString(PyExc_TypeError, "index_keys() takes tuples of three ids");
            goto done;
        }
        for (int j = 0; j < 3; j++) {
            spo[i].id[j] = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(t, j));
            if (spo[i].id[j] == (uint64_t)-1 && PyErr_Occurred()) goto done;
        }
    }
    result = PyTuple_New(3);
    if (result == NULL) goto done;
    for (int k = 0; k < 3; k++) {
        for (Py_ssize_t i = 0; i < n; i++)
            for (int j = 0; j < 3; j++) sorted[i].id[j] = spo[i].id[orders[k][j]];
        qsort(sorted, (size_t)n, sizeof(Row), compare_rows);
        PyObject *keys = pairs(sorted, n, empty);
        if (keys == NULL) { Py_CLEAR(result); goto done; }
        PyTuple_SET_ITEM(result, k, keys);
    }
done:
    PyMem_Free(spo);
    PyMem_Free(sorted);
    Py_XDECREF(empty);
    Py_DECREF(seq);
    return result;
}

/* --- the module ----------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"index_keys", index_keys, METH_O,
     "index_keys(triples) -> (spo, pos, osp): each a sorted list of (24-byte key, b'')"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mizu_core._speedups",
    "C versions of the triple index's hottest loops (optional; see mizu_core/speedups.py)",
    -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (PyType_Ready(&KeyReaderType) < 0 || PyType_Ready(&IdStreamType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "KeyReader", (PyObject *)&KeyReaderType) < 0 ||
        PyModule_AddObjectRef(m, "IdStream", (PyObject *)&IdStreamType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
