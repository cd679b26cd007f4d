/* The triples of a message: message_triples mirrors message_triples in
 * mizu_core/message/triples.py, the same triples in the same order. */
#include "speedups.h"

/* The rare parts call back into Python: predicates not cached yet, resolving a
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

PyObject *message_triples(PyObject *module, PyObject *args) {
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
