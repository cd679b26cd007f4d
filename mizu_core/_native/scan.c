/* Index scans: KeyReader, a query's many short prefix scans (set_range, then key/next
 * while the key starts with the prefix), each key unpacked to three ids; IdStream, the same
 * for the rest of a long scan, from a cursor's key iterator. They mirror LmdbTxn.key_reader's
 * `read` and unpack_ids in mizu_core/repo/kv.py, which stay the fallback. */
#include "speedups.h"

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

PyTypeObject KeyReaderType = {
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

PyTypeObject IdStreamType = {
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
