/* has_reserved: whether a message holds any reserved ($) field, so that validate_message
 * in mizu_core/message/validate.py walks only the messages that do (its _Walk is the
 * Python that checks them; tests compare this answer with a Python walk). */
#include "speedups.h"

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

PyObject *has_reserved(PyObject *module, PyObject *value) {
    if (!PyDict_CheckExact(value) && !PyList_CheckExact(value)) Py_RETURN_FALSE;
    return PyBool_FromLong(reserved_in(value, 0));
}
