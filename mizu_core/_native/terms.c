/* Term interning: intern_terms, a write's term ids for many triples at once; mirrors
 * TermDictionary.intern_terms (TermDictionary.intern in a loop) in mizu_core/repo/index.py. */
#include "speedups.h"

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

PyObject *intern_terms(PyObject *module, PyObject *args) {
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
