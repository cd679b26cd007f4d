/* mizu_core._speedups: the module's function table and init. C versions of the loops that
 * bound Mizu's speed from Python, one concern a file (each names the Python it mirrors):
 *
 *   scan.c        KeyReader, IdStream       repo/kv.py: LmdbTxn.key_reader, unpack_ids
 *   terms.c       intern_terms              repo/index.py: TermDictionary.intern_terms
 *   index_keys.c  index_keys, KeyPairs      repo/index.py: _index_keys, _key_pairs
 *   dagcbor.c     Encoder                   message/codec.py: _encode_python
 *   reserved.c    has_reserved              message/validate.py: validate_message's walk
 *   multibase.c   base32, b58encode         message/cid.py: _b32encode_lower, _b58encode
 *   blake2b.c     term_hash                 repo/index.py: _term_hash
 *   claims.c      term_claims, bloom_probe, term_rows   repo/index.py: _term_claims, ...
 *   triples.c     message_triples           message/triples.py: message_triples
 *
 * All optional: mizu_core/speedups.py imports this module when it was built, and the
 * Python stays the fallback; tests/core/test_speedups.py compares the two. */
#include "speedups.h"

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
