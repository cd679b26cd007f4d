/* The DAG-CBOR encoder: Encoder, canonical DAG-CBOR byte for byte as _encode_python in
 * mizu_core/message/codec.py writes it, with the same refusals and messages (a message's
 * CID depends on every byte: tests/core/test_speedups.py compares the two).
 * Measured against libraries (bench/native.py): cbrrr's encoder is slower (0.7x); libipld's
 * is faster (1.4-1.6x) but writes -0.0 as 0.0, takes subclasses of dict, list, str, int
 * and float and nesting past MAX_DEPTH, and cannot write Mizu's CID as tag 42, so matching
 * this would take a walk in Python that costs several times what it saves. */
#include "speedups.h"
#include <math.h>

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

PyTypeObject EncoderType = {
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
