/* otelkit's C module, built by setup.py where a C compiler is there (OTELKIT_COMPILE unset or 1),
 * loaded by native.py: the OTLP encoder for the common span and log record (the export threads),
 * and two steps of a log record's path on the thread that logs — the console's JSON line and the
 * record queued as its fields. Each has a Python reference and fallback, which the unit tests hold
 * it to on hostile input: for the same input these functions return exactly what the Python code
 * returns, or None where they leave the item to it.
 *
 *   log_record(timestamp, observed, trace_id, span_id, trace_flags, severity_text, severity_number,
 *              body, attributes, event_name, attribute_filter, text_filter, dropped) -> bytes | None
 *   span(fields, attribute_filter) -> bytes | None
 *   json_line(record, facts) -> str | None                        (logs/line.py's format_json)
 *   plain_log(record, facts, reserved, ...) -> tuple | None       (sdk_compat/_log_emit.py's FastEmit.plain)
 *   configure_redaction(...)   redact.py's tables, for the redaction calls all of these can leave out
 *
 * The encoder's functions return the item as the length-delimited field 2 of its ScopeLogs/ScopeSpans.
 * None means "not this one" and is decided before any filter runs, so the Python encoder then does the whole
 * item: a span with events, links, a trace state or a status description; a value of a type or range
 * the Python encoder would fail the batch on; a severity not in the table. Attribute mappings that
 * are not a plain dict, or hold a key or value other than str/int/bool/float (or an int outside
 * int64, a str that is not UTF-8), are encoded by the Python encode_attributes (after the filter, as
 * there), which logs and leaves out what cannot be encoded. configure() hands over the tables and
 * the Python functions once, at import. Exceptions from a filter or from the Python helpers
 * propagate (the batch fails, as with the Python encoder).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <time.h>

/* ------------------------------------------------------------------------------------ the buffer */

typedef struct {
    char *buf;
    Py_ssize_t len;
    Py_ssize_t cap;
    char small[2048];
} Out;

static void out_init(Out *o) {
    o->buf = o->small;
    o->len = 0;
    o->cap = (Py_ssize_t)sizeof(o->small);
}

static void out_free(Out *o) {
    if (o->buf != o->small) {
        PyMem_Free(o->buf);
    }
}

static int out_reserve(Out *o, Py_ssize_t n) {
    if (o->len + n <= o->cap) {
        return 0;
    }
    Py_ssize_t cap = o->cap;
    while (o->len + n > cap) {
        cap *= 2;
    }
    char *buf;
    if (o->buf == o->small) {
        buf = PyMem_Malloc((size_t)cap);
        if (buf != NULL) {
            memcpy(buf, o->small, (size_t)o->len);
        }
    } else {
        buf = PyMem_Realloc(o->buf, (size_t)cap);
    }
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    o->buf = buf;
    o->cap = cap;
    return 0;
}

static inline int varint_len(uint64_t n) {
    int len = 1;
    while (n >= 0x80) {
        n >>= 7;
        len++;
    }
    return len;
}

/* The writers below assume room was reserved. */
static inline void put_byte(Out *o, unsigned char b) { o->buf[o->len++] = (char)b; }

static inline void put_raw(Out *o, const char *p, Py_ssize_t n) {
    memcpy(o->buf + o->len, p, (size_t)n);
    o->len += n;
}

static inline void put_varint(Out *o, uint64_t n) {
    while (n >= 0x80) {
        put_byte(o, (unsigned char)((n & 0x7F) | 0x80));
        n >>= 7;
    }
    put_byte(o, (unsigned char)n);
}

static inline void put_fixed64(Out *o, uint64_t n) {
    for (int i = 0; i < 8; i++) {
        put_byte(o, (unsigned char)(n >> (8 * i)));
    }
}

static inline void put_fixed32(Out *o, uint32_t n) {
    for (int i = 0; i < 4; i++) {
        put_byte(o, (unsigned char)(n >> (8 * i)));
    }
}

static inline void put_be64(Out *o, uint64_t n) {
    for (int i = 7; i >= 0; i--) {
        put_byte(o, (unsigned char)(n >> (8 * i)));
    }
}

static int write_bytes_object(Out *o, PyObject *bytes) {
    if (!PyBytes_Check(bytes)) {
        PyErr_SetString(PyExc_TypeError, "otelkit native encoder: a Python helper returned a non-bytes value");
        return -1;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(bytes);
    if (out_reserve(o, n) < 0) {
        return -1;
    }
    put_raw(o, PyBytes_AS_STRING(bytes), n);
    return 0;
}

/* A length-delimited field holding a UTF-8 string: tag, length, bytes. */
static int put_string_field(Out *o, unsigned char tag, const char *s, Py_ssize_t n) {
    if (out_reserve(o, 1 + 10 + n) < 0) {
        return -1;
    }
    put_byte(o, tag);
    put_varint(o, (uint64_t)n);
    put_raw(o, s, n);
    return 0;
}

/* ------------------------------------------------------------------------------------ the tables */

/* Set by configure(); each table a tuple of (object, encoded field) pairs, looked up by identity. */
static PyObject *kinds = NULL;
static PyObject *status_fields = NULL;
static PyObject *severities = NULL;
static PyObject *empty_trace_state = NULL;
static PyObject *py_encode_attributes = NULL; /* encode_attributes(parts, tag, attributes, None) */
static PyObject *py_encode_body = NULL;       /* _encode_body(body) -> bytes */
static PyObject *sixty_four = NULL;           /* the int 64, for a trace id's upper half */
/* Attribute names, interned once. */
static PyObject *str_trace_id, *str_span_id, *str_trace_state, *str_is_remote, *str_description, *str_status_code;

static PyObject *lookup(PyObject *table, PyObject *key) {
    Py_ssize_t n = PyTuple_GET_SIZE(table);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyTuple_GET_ITEM(table, i);
        if (PyTuple_GET_ITEM(pair, 0) == key) {
            return PyTuple_GET_ITEM(pair, 1); /* borrowed */
        }
    }
    return NULL;
}

static int check_table(PyObject *table, const char *name) {
    if (!PyTuple_Check(table)) {
        PyErr_Format(PyExc_TypeError, "configure(): %s must be a tuple of (object, bytes) pairs", name);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(table); i++) {
        PyObject *pair = PyTuple_GET_ITEM(table, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(pair, 1))) {
            PyErr_Format(PyExc_TypeError, "configure(): %s must be a tuple of (object, bytes) pairs", name);
            return -1;
        }
    }
    return 0;
}

static void set_ref(PyObject **slot, PyObject *value) {
    Py_INCREF(value);
    Py_XSETREF(*slot, value);
}

static PyObject *configure(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "configure(kinds, status_fields, severities, empty_trace_state, encode_attributes, encode_body)");
        return NULL;
    }
    if (check_table(args[0], "kinds") < 0 || check_table(args[1], "status_fields") < 0 ||
        check_table(args[2], "severities") < 0) {
        return NULL;
    }
    if (!PyCallable_Check(args[4]) || !PyCallable_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "configure(): encode_attributes and encode_body must be callable");
        return NULL;
    }
    set_ref(&kinds, args[0]);
    set_ref(&status_fields, args[1]);
    set_ref(&severities, args[2]);
    set_ref(&empty_trace_state, args[3]);
    set_ref(&py_encode_attributes, args[4]);
    set_ref(&py_encode_body, args[5]);
    Py_RETURN_NONE;
}

static int configured(void) {
    if (kinds == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "otelkit native encoder used before configure()");
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------ redaction */

/* The redaction calls these functions can leave out. redact.py's functions return their argument
 * itself when redaction changes nothing, and the common case is decided by a table lookup: an
 * attribute mapping whose every key the active Redactor has already found plain (its ``_kinds``)
 * and whose every value is an atom; a short text it has already found unchanged (``_messages``).
 * filtered_by() answers those from the same tables, without calling Python (~0.2-0.5 µs a call), and
 * calls the Python function for everything else: a key not seen yet or not plain, a nested value,
 * a text not seen yet or long, another filter than redact.py's. configure_redaction() hands over
 * ``redact._active`` (the active Redactor is read from it at each use: redact.configure() may
 * replace it) and the rest, once; without it every filter is called. */

static PyObject *red_active = NULL;     /* redact._active: [the process-wide Redactor] */
static PyObject *red_attributes = NULL; /* redact.redact_attributes */
static PyObject *red_body = NULL;       /* redact.redact_body */
static PyObject *red_message = NULL;    /* redact.redact_message */
static PyObject *red_unchanged = NULL;  /* redact._UNCHANGED: _messages' value for a text left as it is */
static long red_plain = 0;              /* redact._PLAIN: _kinds' value for a plain key */
static Py_ssize_t red_message_max = 0;  /* redact._MESSAGE_CACHE_LEN_MAX: longer texts are not in _messages */
static PyObject *str_kinds_table, *str_messages_table;

static PyObject *configure_redaction(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7 || !PyList_CheckExact(args[0]) || !PyCallable_Check(args[1]) || !PyCallable_Check(args[2]) ||
        !PyCallable_Check(args[3]) || !PyLong_CheckExact(args[4]) || !PyUnicode_CheckExact(args[5]) ||
        !PyLong_CheckExact(args[6])) {
        PyErr_SetString(PyExc_TypeError, "configure_redaction(active: list, redact_attributes, redact_body, "
                                         "redact_message, plain: int, unchanged: str, message_max: int)");
        return NULL;
    }
    long plain = PyLong_AsLong(args[4]);
    Py_ssize_t message_max = PyLong_AsSsize_t(args[6]);
    if ((plain == -1 || message_max == -1) && PyErr_Occurred()) {
        return NULL;
    }
    set_ref(&red_active, args[0]);
    set_ref(&red_attributes, args[1]);
    set_ref(&red_body, args[2]);
    set_ref(&red_message, args[3]);
    set_ref(&red_unchanged, args[5]);
    red_plain = plain;
    red_message_max = message_max;
    Py_RETURN_NONE;
}

/* The active Redactor's table ``name`` (a new reference to an exact dict), or NULL with no error set. */
static PyObject *redactor_table(PyObject *name) {
    if (red_active == NULL || PyList_GET_SIZE(red_active) < 1) {
        return NULL;
    }
    PyObject *redactor = PyList_GET_ITEM(red_active, 0);
    Py_INCREF(redactor);
    PyObject *table = PyObject_GetAttr(redactor, name);
    Py_DECREF(redactor);
    if (table == NULL) {
        PyErr_Clear();
        return NULL;
    }
    if (!PyDict_CheckExact(table)) {
        Py_DECREF(table);
        return NULL;
    }
    return table;
}

static int is_atom(PyObject *value) {
    PyTypeObject *type = Py_TYPE(value);
    return type == &PyUnicode_Type || type == &PyLong_Type || type == &PyBool_Type || type == &PyFloat_Type ||
           type == &PyBytes_Type || value == Py_None;
}

/* 1 when redact_attributes(attributes) returns attributes itself without another lookup, 0 when
 * only the Python function can tell, -1 on error. */
static int attributes_unchanged(PyObject *attributes) {
    if (!PyDict_CheckExact(attributes)) {
        return 0;
    }
    PyObject *kinds = redactor_table(str_kinds_table);
    if (kinds == NULL) {
        return 0;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    int rc = 1;
    while (rc == 1 && PyDict_Next(attributes, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key) || !is_atom(value)) {
            rc = 0;
            break;
        }
        PyObject *kind = PyDict_GetItemWithError(kinds, key); /* an exact str key: no Python code runs */
        int overflow = 0;
        if (kind == NULL) {
            rc = PyErr_Occurred() ? -1 : 0;
        } else if (!PyLong_CheckExact(kind) || PyLong_AsLongAndOverflow(kind, &overflow) != red_plain || overflow) {
            rc = 0;
        }
    }
    Py_DECREF(kinds);
    return rc;
}

/* 1 when redact_message(text) returns text itself from its table, 0 when only the Python function can tell, -1 on error. */
static int message_unchanged(PyObject *text) {
    if (!PyUnicode_CheckExact(text) || PyUnicode_GET_LENGTH(text) > red_message_max) {
        return 0;
    }
    PyObject *messages = redactor_table(str_messages_table);
    if (messages == NULL) {
        return 0;
    }
    PyObject *known = PyDict_GetItemWithError(messages, text);
    int rc = known != NULL && known == red_unchanged ? 1 : (PyErr_Occurred() ? -1 : 0);
    Py_DECREF(messages);
    return rc;
}

/* ``filter(value)`` (a new reference, or NULL with an error set), the call left out where redact.py's
 * filter would return ``value`` itself and the tables above say so. */
static PyObject *filtered_by(PyObject *filter, PyObject *value) {
    int same = 0;
    if (red_active != NULL) {
        if (filter == red_attributes) {
            same = attributes_unchanged(value);
        } else if (filter == red_message) {
            same = message_unchanged(value);
        } else if (filter == red_body) { /* a text as redact_message, another atom as it is */
            same = PyUnicode_CheckExact(value) ? message_unchanged(value) : is_atom(value);
        }
    }
    if (same < 0) {
        return NULL;
    }
    if (same) {
        Py_INCREF(value);
        return value;
    }
    return PyObject_CallOneArg(filter, value);
}

/* ------------------------------------------------------------------------------------ numbers */

/* An int for a fixed64 field: 0 <= n < 2**64. Returns 0, or 1 when the Python encoder would fail. */
static int as_u64(PyObject *value, uint64_t *out) {
    if (!PyLong_Check(value)) {
        return 1;
    }
    unsigned long long n = PyLong_AsUnsignedLongLong(value);
    if (n == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 1;
    }
    *out = (uint64_t)n;
    return 0;
}

/* Whether ``value`` is truthy; -1 on error. */
static inline int truthy(PyObject *value) {
    if (value == Py_None || value == Py_False) {
        return 0;
    }
    if (value == Py_True) {
        return 1;
    }
    return PyObject_IsTrue(value);
}

/* A trace id as (hi, lo) when it is an int in [0, 2**128); 1 when not (the Python encoder fails). */
static int as_u128(PyObject *value, uint64_t *hi, uint64_t *lo) {
    if (!PyLong_Check(value)) {
        return 1;
    }
    PyObject *upper = PyNumber_Rshift(value, sixty_four);
    if (upper == NULL) {
        PyErr_Clear();
        return 1;
    }
    int bad = as_u64(upper, hi);
    Py_DECREF(upper);
    if (bad) {
        return 1;
    }
    unsigned long long low = PyLong_AsUnsignedLongLongMask(value);
    if (low == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 1;
    }
    *lo = (uint64_t)low;
    return 0;
}

/* The checks below return 0 (go on), 1 (leave the item to the Python encoder) or -1 (an error). */

/* A fixed64/varint field sent when ``value`` is truthy: whether it is, and its value. */
static int optional_u64(PyObject *value, int *present, uint64_t *out) {
    int yes = truthy(value);
    if (yes < 0) {
        return -1;
    }
    *present = yes;
    return yes ? as_u64(value, out) : 0;
}

/* A trace id sent when truthy: whether it is, and its two halves. */
static int optional_u128(PyObject *value, int *present, uint64_t *hi, uint64_t *lo) {
    int yes = truthy(value);
    if (yes < 0) {
        return -1;
    }
    *present = yes;
    return yes ? as_u128(value, hi, lo) : 0;
}

/* A string field sent when truthy: its UTF-8 (NULL when absent); ``exact``: an exact str only. */
static int optional_text(PyObject *value, int exact, const char **text, Py_ssize_t *len) {
    *text = NULL;
    *len = 0;
    int yes = truthy(value);
    if (yes <= 0) {
        return yes;
    }
    if (exact ? !PyUnicode_CheckExact(value) : !PyUnicode_Check(value)) {
        return 1;
    }
    *text = PyUnicode_AsUTF8AndSize(value, len);
    if (*text == NULL) {
        PyErr_Clear();
        return 1;
    }
    return 0;
}

/* In the functions Python calls: an error raises, a 1 returns None (the Python encoder's item). */
#define CHECK(call)                  \
    do {                             \
        int checked_ = (call);       \
        if (checked_ < 0) {          \
            return NULL;             \
        }                            \
        if (checked_ > 0) {          \
            Py_RETURN_NONE;          \
        }                            \
    } while (0)

/* ------------------------------------------------------------------------------------ attributes */

/* One KeyValue, wrapped in ``tag``; 0 done, 1 not a simple pair (the Python encoder does the mapping). */
static int put_pair(Out *o, unsigned char tag, PyObject *key, PyObject *value) {
    if (!PyUnicode_CheckExact(key)) {
        return 1;
    }
    Py_ssize_t klen;
    const char *k = PyUnicode_AsUTF8AndSize(key, &klen);
    if (k == NULL) {
        PyErr_Clear();
        return 1;
    }
    Py_ssize_t kf = klen ? 1 + varint_len((uint64_t)klen) + klen : 0; /* proto3 omits an empty key */
    PyTypeObject *type = Py_TYPE(value);
    if (type == &PyUnicode_Type) {
        Py_ssize_t slen;
        const char *s = PyUnicode_AsUTF8AndSize(value, &slen);
        if (s == NULL) {
            PyErr_Clear();
            return 1;
        }
        Py_ssize_t any = 1 + varint_len((uint64_t)slen) + slen;
        Py_ssize_t vf = 1 + varint_len((uint64_t)any) + any;
        Py_ssize_t n = kf + vf;
        if (out_reserve(o, 1 + varint_len((uint64_t)n) + n) < 0) {
            return -1;
        }
        put_byte(o, tag);
        put_varint(o, (uint64_t)n);
        if (klen) {
            put_byte(o, 0x0a);
            put_varint(o, (uint64_t)klen);
            put_raw(o, k, klen);
        }
        put_byte(o, 0x12);
        put_varint(o, (uint64_t)any);
        put_byte(o, 0x0a);
        put_varint(o, (uint64_t)slen);
        put_raw(o, s, slen);
        return 0;
    }
    unsigned char small[11];
    Py_ssize_t vlen = 0; /* the AnyValue's bytes, in small */
    if (type == &PyLong_Type) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow) {
            return 1; /* outside int64: the Python encoder logs it and leaves it out */
        }
        if (v == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 1;
        }
        uint64_t u = (uint64_t)v;
        small[vlen++] = 0x18;
        while (u >= 0x80) {
            small[vlen++] = (unsigned char)((u & 0x7F) | 0x80);
            u >>= 7;
        }
        small[vlen++] = (unsigned char)u;
    } else if (type == &PyBool_Type) {
        small[vlen++] = 0x10;
        small[vlen++] = value == Py_True ? 1 : 0;
    } else if (type == &PyFloat_Type) {
        double d = PyFloat_AS_DOUBLE(value);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        small[vlen++] = 0x21;
        for (int i = 0; i < 8; i++) {
            small[vlen++] = (unsigned char)(bits >> (8 * i));
        }
    } else {
        return 1;
    }
    Py_ssize_t n = kf + 2 + vlen; /* vlen < 128: the value field's length is one byte */
    if (out_reserve(o, 1 + varint_len((uint64_t)n) + n) < 0) {
        return -1;
    }
    put_byte(o, tag);
    put_varint(o, (uint64_t)n);
    if (klen) {
        put_byte(o, 0x0a);
        put_varint(o, (uint64_t)klen);
        put_raw(o, k, klen);
    }
    put_byte(o, 0x12);
    put_byte(o, (unsigned char)vlen);
    put_raw(o, (const char *)small, vlen);
    return 0;
}

/* The ``tag`` KeyValue fields of ``attributes`` after ``attribute_filter``, as encode_attributes writes them. */
static int put_attributes(Out *o, unsigned char tag, PyObject *attributes, PyObject *attribute_filter) {
    int yes = truthy(attributes);
    if (yes <= 0) {
        return yes;
    }
    PyObject *filtered = NULL;
    if (attribute_filter != Py_None) {
        filtered = filtered_by(attribute_filter, attributes);
        if (filtered == NULL) {
            return -1;
        }
        attributes = filtered;
        yes = truthy(attributes);
        if (yes <= 0) {
            Py_DECREF(filtered);
            return yes;
        }
    }
    int rc = 1;
    Py_ssize_t start = o->len;
    if (PyDict_CheckExact(attributes)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        rc = 0;
        while (PyDict_Next(attributes, &pos, &key, &value)) {
            rc = put_pair(o, tag, key, value);
            if (rc != 0) {
                break;
            }
        }
    }
    if (rc == 1) { /* not simple: the Python encoder does the whole mapping */
        o->len = start;
        PyObject *parts = PyList_New(0);
        PyObject *tag_bytes = PyBytes_FromStringAndSize((const char *)&tag, 1);
        PyObject *done = NULL;
        if (parts != NULL && tag_bytes != NULL) {
            PyObject *call_args[4] = {parts, tag_bytes, attributes, Py_None};
            done = PyObject_Vectorcall(py_encode_attributes, call_args, 4, NULL);
        }
        rc = done == NULL ? -1 : 0;
        Py_XDECREF(done);
        Py_XDECREF(tag_bytes);
        if (rc == 0) {
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(parts); i++) {
                if (write_bytes_object(o, PyList_GET_ITEM(parts, i)) < 0) {
                    rc = -1;
                    break;
                }
            }
        }
        Py_XDECREF(parts);
    }
    Py_XDECREF(filtered);
    return rc;
}

/* ------------------------------------------------------------------------------------ the result */

/* ``tag`` + varint(len) + the buffer, as a new bytes object. */
static PyObject *wrapped(Out *o, unsigned char tag) {
    Py_ssize_t n = o->len;
    int prefix = 1 + varint_len((uint64_t)n);
    PyObject *result = PyBytes_FromStringAndSize(NULL, prefix + n);
    if (result == NULL) {
        return NULL;
    }
    char *p = PyBytes_AS_STRING(result);
    *p++ = (char)tag;
    uint64_t len = (uint64_t)n;
    while (len >= 0x80) {
        *p++ = (char)((len & 0x7F) | 0x80);
        len >>= 7;
    }
    *p++ = (char)len;
    memcpy(p, o->buf, (size_t)n);
    return result;
}

/* ------------------------------------------------------------------------------------ log records */

static PyObject *log_record(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 13) {
        PyErr_SetString(PyExc_TypeError, "log_record() takes 13 arguments");
        return NULL;
    }
    if (!configured()) {
        return NULL;
    }
    PyObject *timestamp = args[0], *observed = args[1], *trace_id = args[2], *span_id = args[3];
    PyObject *trace_flags = args[4], *severity_text = args[5], *severity_number = args[6], *body = args[7];
    PyObject *attributes = args[8], *event_name = args[9], *attribute_filter = args[10], *text_filter = args[11];
    PyObject *dropped = args[12];

    /* Everything that could send the record to the Python encoder, before any filter runs. */
    uint64_t stamp = 0, seen = 0, tid_hi = 0, tid_lo = 0, sid = 0, dropped_n = 0;
    int has_stamp, has_seen, has_tid, has_sid, has_dropped, yes;
    CHECK(optional_u64(timestamp, &has_stamp, &stamp));
    CHECK(optional_u64(observed, &has_seen, &seen));
    PyObject *severity_field = NULL;
    if (severity_number != Py_None) {
        severity_field = lookup(severities, severity_number);
        if (severity_field == NULL) Py_RETURN_NONE;
    }
    const char *level, *event;
    Py_ssize_t level_len, event_len;
    CHECK(optional_text(severity_text, 1, &level, &level_len));
    if (!PyLong_Check(trace_flags)) Py_RETURN_NONE;
    unsigned long flags = PyLong_AsUnsignedLong(trace_flags);
    if ((flags == (unsigned long)-1 && PyErr_Occurred()) || flags > 0xFFFFFFFFUL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    CHECK(optional_u128(trace_id, &has_tid, &tid_hi, &tid_lo));
    CHECK(optional_u64(span_id, &has_sid, &sid));
    CHECK(optional_text(event_name, 0, &event, &event_len));
    CHECK(optional_u64(dropped, &has_dropped, &dropped_n));

    Out o;
    out_init(&o);
    PyObject *result = NULL;
    PyObject *new_body = NULL;
    if (has_stamp) {
        put_byte(&o, 0x09);
        put_fixed64(&o, stamp);
    }
    if (severity_field != NULL && write_bytes_object(&o, severity_field) < 0) goto done;
    if (level != NULL && put_string_field(&o, 0x1a, level, level_len) < 0) goto done;
    if (text_filter != Py_None) {
        if ((yes = truthy(body)) < 0) goto done;
        if (yes) {
            new_body = filtered_by(text_filter, body);
            if (new_body == NULL) goto done;
            body = new_body;
        }
    }
    if (PyUnicode_Check(body)) { /* AnyValue.string_value in LogRecord.body (5) */
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(body, &n);
        if (s == NULL) goto done; /* not UTF-8: the batch fails, as in the Python encoder */
        Py_ssize_t any = 1 + varint_len((uint64_t)n) + n;
        if (out_reserve(&o, 2 + 10 + any) < 0) goto done;
        put_byte(&o, 0x2a);
        put_varint(&o, (uint64_t)any);
        put_byte(&o, 0x0a);
        put_varint(&o, (uint64_t)n);
        put_raw(&o, s, n);
    } else if (body == Py_None) { /* LogRecord.body has presence: sent even when None */
        if (out_reserve(&o, 2) < 0) goto done;
        put_byte(&o, 0x2a);
        put_byte(&o, 0x00);
    } else {
        PyObject *encoded = PyObject_CallOneArg(py_encode_body, body);
        if (encoded == NULL) goto done;
        int bad = write_bytes_object(&o, encoded);
        Py_DECREF(encoded);
        if (bad < 0) goto done;
    }
    if (put_attributes(&o, 0x32, attributes, attribute_filter) < 0) goto done;
    if (out_reserve(&o, 11 + 5 + 18 + 10 + 9) < 0) goto done;
    if (has_dropped) {
        put_byte(&o, 0x38);
        put_varint(&o, dropped_n);
    }
    if (flags) {
        put_byte(&o, 0x45);
        put_fixed32(&o, (uint32_t)flags);
    }
    if (has_tid) {
        put_byte(&o, 0x4a);
        put_byte(&o, 0x10);
        put_be64(&o, tid_hi);
        put_be64(&o, tid_lo);
    }
    if (has_sid) {
        put_byte(&o, 0x52);
        put_byte(&o, 0x08);
        put_be64(&o, sid);
    }
    if (has_seen) {
        put_byte(&o, 0x59);
        put_fixed64(&o, seen);
    }
    if (event != NULL && put_string_field(&o, 0x62, event, event_len) < 0) goto done;
    result = wrapped(&o, 0x12);
done:
    Py_XDECREF(new_body);
    out_free(&o);
    return result;
}

/* ------------------------------------------------------------------------------------ spans */

/* A span context's int attribute as u64/u128; 1 when the Python encoder should do the span. */
static int context_id(PyObject *context, PyObject *name, int wide, uint64_t *hi, uint64_t *lo) {
    PyObject *value = PyObject_GetAttr(context, name);
    if (value == NULL) {
        PyErr_Clear();
        return 1;
    }
    int bad = wide ? as_u128(value, hi, lo) : as_u64(value, lo);
    Py_DECREF(value);
    return bad;
}

static PyObject *span(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "span(fields, attribute_filter)");
        return NULL;
    }
    if (!configured()) {
        return NULL;
    }
    PyObject *fields = args[0], *attribute_filter = args[1];
    if (!PyTuple_Check(fields) || PyTuple_GET_SIZE(fields) < 13) Py_RETURN_NONE;
    PyObject *context = PyTuple_GET_ITEM(fields, 0), *parent = PyTuple_GET_ITEM(fields, 1);
    PyObject *name = PyTuple_GET_ITEM(fields, 2), *kind = PyTuple_GET_ITEM(fields, 3);
    PyObject *start = PyTuple_GET_ITEM(fields, 4), *end = PyTuple_GET_ITEM(fields, 5);
    PyObject *attributes = PyTuple_GET_ITEM(fields, 6), *dropped_attributes = PyTuple_GET_ITEM(fields, 7);
    PyObject *status = PyTuple_GET_ITEM(fields, 12);

    /* Everything that could send the span to the Python encoder, before the filter runs. */
    if (context == Py_None) Py_RETURN_NONE;
    for (int i = 8; i < 12; i++) { /* events, dropped events, links, dropped links */
        int yes = truthy(PyTuple_GET_ITEM(fields, i));
        if (yes < 0) return NULL;
        if (yes) Py_RETURN_NONE;
    }
    uint64_t tid_hi = 0, tid_lo = 0, sid = 0, parent_sid = 0, t0 = 0, t1 = 0, dropped_n = 0;
    if (context_id(context, str_trace_id, 1, &tid_hi, &tid_lo) || context_id(context, str_span_id, 0, NULL, &sid)) {
        Py_RETURN_NONE;
    }
    PyObject *trace_state = PyObject_GetAttr(context, str_trace_state);
    if (trace_state == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    int yes = trace_state == empty_trace_state ? 0 : truthy(trace_state);
    Py_DECREF(trace_state);
    if (yes != 0) {
        if (yes < 0) PyErr_Clear();
        Py_RETURN_NONE;
    }
    int has_parent = truthy(parent), remote_parent = 0;
    if (has_parent < 0) return NULL;
    if (has_parent) {
        if (context_id(parent, str_span_id, 0, NULL, &parent_sid)) Py_RETURN_NONE;
        PyObject *is_remote = PyObject_GetAttr(parent, str_is_remote);
        if (is_remote == NULL) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        remote_parent = truthy(is_remote);
        Py_DECREF(is_remote);
        if (remote_parent < 0) return NULL;
    }
    const char *name_s;
    Py_ssize_t name_len;
    CHECK(optional_text(name, 0, &name_s, &name_len));
    PyObject *kind_field = lookup(kinds, kind);
    if (kind_field == NULL) Py_RETURN_NONE;
    int has_start, has_end, has_dropped;
    CHECK(optional_u64(start, &has_start, &t0));
    CHECK(optional_u64(end, &has_end, &t1));
    CHECK(optional_u64(dropped_attributes, &has_dropped, &dropped_n));
    PyObject *status_field = NULL;
    if (status != Py_None) {
        PyObject *description = PyObject_GetAttr(status, str_description);
        if (description == NULL) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        yes = truthy(description);
        Py_DECREF(description);
        if (yes != 0) { /* a description: the text filter's, in the Python encoder */
            if (yes < 0) PyErr_Clear();
            Py_RETURN_NONE;
        }
        PyObject *code = PyObject_GetAttr(status, str_status_code);
        if (code == NULL) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        status_field = lookup(status_fields, code);
        Py_DECREF(code);
        if (status_field == NULL) Py_RETURN_NONE;
    }

    Out o;
    out_init(&o);
    PyObject *result = NULL;
    put_byte(&o, 0x0a);
    put_byte(&o, 0x10);
    put_be64(&o, tid_hi);
    put_be64(&o, tid_lo);
    put_byte(&o, 0x12);
    put_byte(&o, 0x08);
    put_be64(&o, sid);
    if (has_parent) {
        put_byte(&o, 0x22);
        put_byte(&o, 0x08);
        put_be64(&o, parent_sid);
    }
    if (name_s != NULL && put_string_field(&o, 0x2a, name_s, name_len) < 0) goto done;
    if (write_bytes_object(&o, kind_field) < 0) goto done;
    if (out_reserve(&o, 18) < 0) goto done;
    if (has_start) {
        put_byte(&o, 0x39);
        put_fixed64(&o, t0);
    }
    if (has_end) {
        put_byte(&o, 0x41);
        put_fixed64(&o, t1);
    }
    if (put_attributes(&o, 0x4a, attributes, attribute_filter) < 0) goto done;
    if (out_reserve(&o, 11) < 0) goto done;
    if (has_dropped) {
        put_byte(&o, 0x50);
        put_varint(&o, dropped_n);
    }
    if (status_field != NULL && write_bytes_object(&o, status_field) < 0) goto done;
    if (out_reserve(&o, 6) < 0) goto done;
    put_byte(&o, 0x85); /* Span.flags (16), fixed32: CONTEXT_HAS_IS_REMOTE, and IS_REMOTE for a remote parent */
    put_byte(&o, 0x01);
    put_fixed32(&o, (has_parent && remote_parent) ? 0x300 : 0x100);
    result = wrapped(&o, 0x12);
done:
    out_free(&o);
    return result;
}

/* ------------------------------------------------------------------------- the console's JSON line */

/* json_line(record, facts) -> str | None: the console's JSON line (line.py's format_json with the
 * console's own extras and message redaction), or None for line.py to write it. Exactly
 * json.dumps(doc, default=str, ensure_ascii=False) of the document, as format_json's own fast path
 * writes it; None where that path would not be taken or where this one stops short: a record of
 * another class than logging.LogRecord, one with exc_info or a suppressed count, a created time
 * outside [0, year 10000), a string that is not UTF-8 (a lone surrogate), an extra= field whose
 * name is not an exact str or is one of the line's own keys, or whose value is not an exact
 * str/int/bool or None. configure_line() hands over the names and the Python functions once. Errors from the redaction functions or the span context's properties raise. */

static PyObject *line_record_type = NULL;   /* logging.LogRecord, imported with this module */
static PyObject *line_reserved = NULL;        /* frozenset: the LogRecord fields that are not extras */
static PyObject *line_first_keys = NULL;      /* frozenset: the line's own keys */
static PyObject *py_redact_message = NULL;    /* redact_message(text) -> str */
static PyObject *py_redact_attributes = NULL; /* redact_attributes(mapping) -> mapping */
static PyObject *str_created, *str_levelname, *str_name, *str_exc_info, *str_suppressed, *str_message,
    *str_span_context, *str_request_id, *str_is_valid;

/* The last span context's hex ids (a request's records share it), as line.py's _ids. */
static PyObject *ids_context = NULL;
static int ids_valid = 0;
static char ids_hex[48];

/* The last second's "YYYY-MM-DDTHH:MM:SS", as line.py's iso_millis. */
static long long stamp_second = -1;
static char stamp_text[32];
static Py_ssize_t stamp_len = 0;

static PyObject *configure_line(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyFrozenSet_Check(args[0]) || !PyFrozenSet_Check(args[1]) || !PyCallable_Check(args[2]) ||
        !PyCallable_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "configure_line(reserved: frozenset, first_keys: frozenset, redact_message, redact_attributes)");
        return NULL;
    }
    set_ref(&line_reserved, args[0]);
    set_ref(&line_first_keys, args[1]);
    set_ref(&py_redact_message, args[2]);
    set_ref(&py_redact_attributes, args[3]);
    Py_RETURN_NONE;
}

static const char hex_digits[] = "0123456789abcdef";

static void put_hex(char *p, uint64_t n, int digits) {
    for (int i = digits - 1; i >= 0; i--) {
        p[i] = hex_digits[n & 0xF];
        n >>= 4;
    }
}

/* A JSON string as json's C encoder writes it with ensure_ascii=False; *wide set for non-ASCII. */
static int put_json_text(Out *o, PyObject *text, int *wide) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    if (s == NULL) {
        PyErr_Clear();
        return 1; /* a lone surrogate: line.py's to write */
    }
    if (!PyUnicode_IS_ASCII(text)) {
        *wide = 1;
    }
    if (out_reserve(o, 6 * n + 2) < 0) {
        return -1;
    }
    char *p = o->buf + o->len;
    *p++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = (char)c;
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex_digits[c >> 4];
            *p++ = hex_digits[c & 0xF];
        }
    }
    *p++ = '"';
    o->len = p - o->buf;
    return 0;
}

static int put_text(Out *o, const char *s, Py_ssize_t n) {
    if (out_reserve(o, n) < 0) {
        return -1;
    }
    put_raw(o, s, n);
    return 0;
}

/* "YYYY-MM-DDTHH:MM:SS.mmm+00:00" of ``created`` (a float), rounded as line.py's iso_millis. */
static int put_stamp(Out *o, PyObject *created) {
    if (!PyFloat_CheckExact(created)) {
        return 1;
    }
    double t = PyFloat_AS_DOUBLE(created);
    if (!(t >= 0.0 && t < 253402300800.0)) { /* NaN too; the years line.py's strftime writes alike */
        return 1;
    }
    long long second = (long long)t;
    /* volatile: each step rounded to a double as Python's floats are (no fused multiply-add) */
    volatile double scaled = (t - (double)second) * 1e6;
    long long micros = (long long)scaled;
    volatile double rest = scaled - (double)micros;
    if (rest > 0.5 || (rest == 0.5 && (micros & 1))) {
        micros += 1;
    }
    if (micros >= 1000000) {
        second += 1;
        micros -= 1000000;
    }
    if (second != stamp_second) {
        time_t when = (time_t)second;
        struct tm tm;
        if (gmtime_r(&when, &tm) == NULL) {
            return 1;
        }
        size_t n = strftime(stamp_text, sizeof(stamp_text), "%Y-%m-%dT%H:%M:%S", &tm);
        if (n == 0) {
            stamp_second = -1;
            return 1;
        }
        stamp_len = (Py_ssize_t)n;
        stamp_second = second;
    }
    int millis = (int)(micros / 1000);
    char tail[10] = {'.', (char)('0' + millis / 100), (char)('0' + millis / 10 % 10), (char)('0' + millis % 10),
                     '+', '0', '0', ':', '0', '0'};
    if (out_reserve(o, stamp_len + 10 + 2) < 0) {
        return -1;
    }
    put_byte(o, '"');
    put_raw(o, stamp_text, stamp_len);
    put_raw(o, tail, 10);
    put_byte(o, '"');
    return 0;
}

/* ``, "trace_id": "…", "span_id": "…"`` of a valid span context (nothing for an invalid one). */
static int put_ids(Out *o, PyObject *context) {
    if (context != ids_context) {
        PyObject *valid_obj = PyObject_GetAttr(context, str_is_valid);
        if (valid_obj == NULL) {
            return -1;
        }
        int valid = truthy(valid_obj);
        Py_DECREF(valid_obj);
        if (valid < 0) {
            return -1;
        }
        char hex[48] = {0};
        if (valid) {
            uint64_t hi = 0, lo = 0, span = 0;
            PyObject *trace_id = PyObject_GetAttr(context, str_trace_id);
            if (trace_id == NULL) {
                return -1;
            }
            int bad = as_u128(trace_id, &hi, &lo);
            Py_DECREF(trace_id);
            if (bad) {
                return 1;
            }
            PyObject *span_id = PyObject_GetAttr(context, str_span_id);
            if (span_id == NULL) {
                return -1;
            }
            bad = as_u64(span_id, &span);
            Py_DECREF(span_id);
            if (bad) {
                return 1;
            }
            put_hex(hex, hi, 16);
            put_hex(hex + 16, lo, 16);
            put_hex(hex + 32, span, 16);
        }
        /* The cache is written whole before the old context is let go (its release may run code). */
        PyObject *old = ids_context;
        Py_INCREF(context);
        ids_context = context;
        ids_valid = valid;
        memcpy(ids_hex, hex, sizeof(hex));
        Py_XDECREF(old);
    }
    if (!ids_valid) {
        return 0;
    }
    static const char trace_key[] = ", \"trace_id\": \"";
    static const char span_key[] = "\", \"span_id\": \"";
    if (out_reserve(o, 64 + 48) < 0) {
        return -1;
    }
    put_raw(o, trace_key, sizeof(trace_key) - 1);
    put_raw(o, ids_hex, 32);
    put_raw(o, span_key, sizeof(span_key) - 1);
    put_raw(o, ids_hex + 32, 16);
    put_byte(o, '"');
    return 0;
}

/* The record's fields not in ``reserved`` (nor the _private ones when ``skip_private``), in its
 * order: a new dict; NULL with *bad 1 (a name that is not an exact str: the Python code's) or -1. */
static PyObject *own_fields(PyObject *fields, PyObject *reserved, int skip_private, int *bad) {
    PyObject *own = PyDict_New();
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    *bad = -1;
    if (own == NULL) {
        return NULL;
    }
    while (PyDict_Next(fields, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            *bad = 1;
            goto fail;
        }
        int skip = PySet_Contains(reserved, key);
        if (skip < 0) {
            goto fail;
        }
        if (skip || (skip_private && PyUnicode_GET_LENGTH(key) > 0 && PyUnicode_READ_CHAR(key, 0) == '_')) {
            continue;
        }
        if (PyDict_SetItem(own, key, value) < 0) {
            goto fail;
        }
    }
    *bad = 0;
    return own;
fail:
    Py_DECREF(own);
    return NULL;
}

/* The record's extra= fields (not reserved, not _private), redacted, as ``, key: value`` each. */
static int put_extras(Out *o, PyObject *fields, int *wide) {
    PyObject *redacted = NULL;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    int rc = 1, bad;
    PyObject *extras = own_fields(fields, line_reserved, 1, &bad);
    if (extras == NULL) {
        return bad;
    }
    if (PyDict_GET_SIZE(extras) == 0) {
        Py_DECREF(extras);
        return 0;
    }
    redacted = filtered_by(py_redact_attributes, extras);
    if (redacted == NULL) {
        goto error;
    }
    if (!PyDict_CheckExact(redacted)) {
        goto done;
    }
    while (PyDict_Next(redacted, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            goto done;
        }
        int first = PySet_Contains(line_first_keys, key);
        if (first < 0) {
            goto error;
        }
        if (first) {
            goto done;
        }
        if (put_text(o, ", ", 2) < 0) {
            goto error;
        }
        if ((bad = put_json_text(o, key, wide)) != 0) {
            rc = bad;
            goto done;
        }
        if (put_text(o, ": ", 2) < 0) {
            goto error;
        }
        if (PyUnicode_CheckExact(value)) {
            if ((bad = put_json_text(o, value, wide)) != 0) {
                rc = bad;
                goto done;
            }
            continue;
        }
        if (value == Py_True) {
            bad = put_text(o, "true", 4);
        } else if (value == Py_False) {
            bad = put_text(o, "false", 5);
        } else if (value == Py_None) {
            bad = put_text(o, "null", 4);
        } else if (PyLong_CheckExact(value)) {
            PyObject *digits = PyObject_Str(value);
            if (digits == NULL) {
                goto error;
            }
            Py_ssize_t n;
            const char *s = PyUnicode_AsUTF8AndSize(digits, &n);
            bad = s == NULL ? -1 : put_text(o, s, n);
            Py_DECREF(digits);
        } else {
            goto done; /* a float (NaN?), a list, an object, a subclass: json.dumps's, in line.py */
        }
        if (bad) {
            goto error;
        }
    }
    rc = 0;
    goto done;
error:
    rc = -1;
done:
    Py_XDECREF(extras);
    Py_XDECREF(redacted);
    return rc;
}

/* A str field of the record (borrowed), or NULL with *bad set: 1 absent or not a str, -1 an error. */
static PyObject *record_text(PyObject *fields, PyObject *name, int *bad) {
    PyObject *value = PyDict_GetItemWithError(fields, name);
    if (value == NULL) {
        *bad = PyErr_Occurred() ? -1 : 1;
        return NULL;
    }
    if (!PyUnicode_Check(value)) {
        *bad = 1;
        return NULL;
    }
    return value;
}

/* Whether a field of the record is there and truthy (line.py then writes the line): 0, 1 or -1. */
static int record_flag(PyObject *fields, PyObject *name) {
    PyObject *value = PyDict_GetItemWithError(fields, name);
    if (value == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    return truthy(value);
}

/* The whole line into ``o``: 0, 1 (line.py's to write) or -1 (an error). */
static int write_line(Out *o, PyObject *fields, PyObject *facts, int *wide) {
    int bad = record_flag(fields, str_exc_info);
    if (bad == 0) {
        bad = record_flag(fields, str_suppressed);
    }
    if (bad) {
        return bad;
    }
    PyObject *created = PyDict_GetItemWithError(fields, str_created);
    if (created == NULL) {
        return PyErr_Occurred() ? -1 : 1;
    }
    static const char head[] = "{\"timestamp\": ";
    if (put_text(o, head, sizeof(head) - 1) < 0) {
        return -1;
    }
    if ((bad = put_stamp(o, created)) != 0) {
        return bad;
    }
    /* No code but this function's runs until the message's redaction: the record's fields stay put. */
    PyObject *level = record_text(fields, str_levelname, &bad);
    if (level == NULL) {
        return bad;
    }
    if (put_text(o, ", \"level\": ", 11) < 0 || (bad = put_json_text(o, level, wide)) != 0) {
        return bad ? bad : -1;
    }
    PyObject *name = record_text(fields, str_name, &bad);
    if (name == NULL) {
        return bad;
    }
    if (put_text(o, ", \"logger\": ", 12) < 0 || (bad = put_json_text(o, name, wide)) != 0) {
        return bad ? bad : -1;
    }
    PyObject *message = PyObject_GetAttr(facts, str_message);
    if (message == NULL) {
        return -1;
    }
    PyObject *text = filtered_by(py_redact_message, message);
    Py_DECREF(message);
    if (text == NULL) {
        return -1;
    }
    bad = PyUnicode_Check(text) ? 0 : 1;
    if (bad == 0 && put_text(o, ", \"message\": ", 13) < 0) {
        bad = -1;
    }
    if (bad == 0) {
        bad = put_json_text(o, text, wide);
    }
    Py_DECREF(text);
    if (bad) {
        return bad;
    }
    PyObject *context = PyObject_GetAttr(facts, str_span_context);
    if (context == NULL) {
        return -1;
    }
    bad = put_ids(o, context);
    Py_DECREF(context);
    if (bad) {
        return bad;
    }
    PyObject *request_id = PyObject_GetAttr(facts, str_request_id);
    if (request_id == NULL) {
        return -1;
    }
    bad = truthy(request_id);
    if (bad > 0) {
        if (!PyUnicode_Check(request_id)) {
            bad = 1;
        } else if (put_text(o, ", \"request_id\": ", 16) < 0) {
            bad = -1;
        } else {
            bad = put_json_text(o, request_id, wide);
        }
    }
    Py_DECREF(request_id);
    if (bad) {
        return bad;
    }
    if ((bad = put_extras(o, fields, wide)) != 0) {
        return bad;
    }
    return put_text(o, "}", 1);
}

static PyObject *json_line(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "json_line(record, facts)");
        return NULL;
    }
    if (line_reserved == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "otelkit native console line used before configure_line()");
        return NULL;
    }
    PyObject *record = args[0];
    if ((PyObject *)Py_TYPE(record) != line_record_type) {
        Py_RETURN_NONE;
    }
    PyObject *fields = PyObject_GenericGetDict(record, NULL);
    if (fields == NULL) {
        return NULL;
    }
    Out o;
    out_init(&o);
    int wide = 0;
    int bad = PyDict_CheckExact(fields) ? write_line(&o, fields, args[1], &wide) : 1;
    Py_DECREF(fields);
    PyObject *result = NULL;
    if (bad == 0) {
        if (wide) {
            result = PyUnicode_DecodeUTF8(o.buf, o.len, NULL);
        } else if ((result = PyUnicode_New(o.len, 127)) != NULL) {
            memcpy(PyUnicode_1BYTE_DATA(result), o.buf, (size_t)o.len);
        }
    } else if (bad > 0) {
        Py_INCREF(Py_None);
        result = Py_None;
    }
    out_free(&o);
    return result;
}

/* --------------------------------------------------------------- a log record queued as its fields */

/* plain_log(record, facts, reserved, max_attributes, max_length, severities, severity_texts,
 *           resource, scope) -> tuple | None
 *
 * The PlainLog tuple FastEmit.plain builds (sdk_compat/_log_emit.py) for a stdlib record, from
 * what the caller read of the SDK's logger (resource, scope, the attribute limits) and of the
 * record's shared facts, or None for FastEmit.plain to build it (or decide there is none): a
 * record of another class than logging.LogRecord, a created time that is not
 * a finite float, a level not in ``severities`` yet (a dict the caller fills), an extra= field with
 * a name that is not a non-empty exact str or names an event, a value not of an exact plain type
 * (str, int, float, bool, bytes, None), a str longer than ``max_length``, more fields than
 * ``max_attributes``. Errors from the span context's properties raise. */

static PyObject *str_levelno, *str_trace_flags, *str_event_name, *str_otel_event_name;

/* The record's own fields (not in ``reserved``), when FastEmit.plain would keep them as they are: a
 * new dict; NULL with *bad 1 (plain's to decide) or -1 (an error). */
static PyObject *kept_fields(PyObject *fields, PyObject *reserved, Py_ssize_t max_attributes, Py_ssize_t max_length,
                             int *bad) {
    PyObject *attributes = own_fields(fields, reserved, 0, bad);
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    if (attributes == NULL) {
        return NULL;
    }
    *bad = 1;
    if (max_attributes >= 0 && PyDict_GET_SIZE(attributes) > max_attributes) {
        goto leave;
    }
    while (PyDict_Next(attributes, &pos, &key, &value)) {
        if (PyUnicode_GET_LENGTH(key) == 0) {
            goto leave;
        }
        if (PyUnicode_CheckExact(value)) {
            if (max_length >= 0 && PyUnicode_GET_LENGTH(value) > max_length) {
                goto leave;
            }
        } else if (!(value == Py_None || PyBool_Check(value) || PyLong_CheckExact(value) || PyFloat_CheckExact(value) ||
                     PyBytes_CheckExact(value))) {
            goto leave;
        }
    }
    int event = PyDict_Contains(attributes, str_event_name);
    if (event == 0) {
        event = PyDict_Contains(attributes, str_otel_event_name);
    }
    if (event == 0) {
        *bad = 0;
        return attributes;
    }
    if (event < 0) {
        *bad = -1;
    }
leave:
    Py_DECREF(attributes);
    return NULL;
}

/* A limit: -1 for None, else a non-negative int (1: not one plain_log takes). */
static int limit_of(PyObject *value, Py_ssize_t *out) {
    if (value == Py_None) {
        *out = -1;
        return 0;
    }
    if (!PyLong_CheckExact(value)) {
        return 1;
    }
    Py_ssize_t n = PyLong_AsSsize_t(value);
    if (n < 0) {
        PyErr_Clear();
        return 1;
    }
    *out = n;
    return 0;
}

static PyObject *plain_log(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 9 || !PyFrozenSet_Check(args[2]) || !PyDict_Check(args[5]) || !PyDict_Check(args[6])) {
        PyErr_SetString(PyExc_TypeError,
                        "plain_log(record, facts, reserved: frozenset, max_attributes, max_length, severities: dict, "
                        "severity_texts: dict, resource, scope)");
        return NULL;
    }
    PyObject *record = args[0], *facts = args[1];
    Py_ssize_t max_attributes, max_length;
    if ((PyObject *)Py_TYPE(record) != line_record_type || limit_of(args[3], &max_attributes) ||
        limit_of(args[4], &max_length)) {
        Py_RETURN_NONE;
    }
    PyObject *fields = PyObject_GenericGetDict(record, NULL);
    if (fields == NULL) {
        return NULL;
    }
    PyObject *result = NULL, *attributes = NULL, *timestamp = NULL, *observed = NULL, *context = NULL;
    PyObject *trace_id = NULL, *span_id = NULL, *trace_flags = NULL, *message = NULL;
    int bad = 1;
    if (!PyDict_CheckExact(fields)) {
        goto done;
    }
    /* The record's own fields are read first, while no code but this function's runs. */
    PyObject *created = PyDict_GetItemWithError(fields, str_created);
    PyObject *levelno = created == NULL ? NULL : PyDict_GetItemWithError(fields, str_levelno);
    PyObject *levelname = levelno == NULL ? NULL : PyDict_GetItemWithError(fields, str_levelname);
    if (levelname == NULL) {
        bad = PyErr_Occurred() ? -1 : 1;
        goto done;
    }
    /* int(record.created * 1e9) where it is a float; anything else (or inf, NaN): plain's */
    double stamp = PyFloat_CheckExact(created) ? PyFloat_AS_DOUBLE(created) * 1e9 : NAN;
    if (!isfinite(stamp) || !PyLong_CheckExact(levelno) || !PyUnicode_CheckExact(levelname)) {
        goto done;
    }
    PyObject *severity = PyDict_GetItemWithError(args[5], levelno);
    if (severity == NULL) {
        bad = PyErr_Occurred() ? -1 : 1;
        goto done;
    }
    PyObject *severity_text = PyDict_GetItemWithError(args[6], levelname);
    if (severity_text == NULL) {
        if (PyErr_Occurred()) {
            bad = -1;
            goto done;
        }
        severity_text = levelname;
    }
    Py_INCREF(severity);
    Py_INCREF(severity_text);
    attributes = kept_fields(fields, args[2], max_attributes, max_length, &bad);
    if (attributes == NULL) {
        Py_DECREF(severity);
        Py_DECREF(severity_text);
        goto done;
    }
    bad = -1;
    timestamp = PyLong_FromDouble(stamp);
    struct timespec now;
    if (timestamp == NULL || clock_gettime(CLOCK_REALTIME, &now) != 0) {
        if (timestamp != NULL) {
            PyErr_SetFromErrno(PyExc_OSError);
        }
        goto fail;
    }
    observed = PyLong_FromLongLong((long long)now.tv_sec * 1000000000LL + (long long)now.tv_nsec);
    if (observed == NULL || (context = PyObject_GetAttr(facts, str_span_context)) == NULL ||
        (trace_id = PyObject_GetAttr(context, str_trace_id)) == NULL ||
        (span_id = PyObject_GetAttr(context, str_span_id)) == NULL ||
        (trace_flags = PyObject_GetAttr(context, str_trace_flags)) == NULL ||
        (message = PyObject_GetAttr(facts, str_message)) == NULL) {
        goto fail;
    }
    result = PyTuple_New(12);
    if (result == NULL) {
        goto fail;
    }
    PyObject *items[12] = {args[7],     args[8],  timestamp, observed,   trace_id, span_id,
                           trace_flags, severity_text, severity, message, attributes, Py_None};
    for (int i = 0; i < 12; i++) {
        Py_INCREF(items[i]);
        PyTuple_SET_ITEM(result, i, items[i]);
    }
    bad = 0;
fail:
    Py_DECREF(severity);
    Py_DECREF(severity_text);
done:
    Py_DECREF(fields);
    Py_XDECREF(attributes);
    Py_XDECREF(timestamp);
    Py_XDECREF(observed);
    Py_XDECREF(context);
    Py_XDECREF(trace_id);
    Py_XDECREF(span_id);
    Py_XDECREF(trace_flags);
    Py_XDECREF(message);
    if (bad > 0) {
        Py_RETURN_NONE;
    }
    return bad == 0 ? result : NULL;
}

/* ------------------------------------------------------------------------------------ the module */

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(kinds, status_fields, severities, empty_trace_state, encode_attributes, encode_body)"},
    {"log_record", (PyCFunction)(void (*)(void))log_record, METH_FASTCALL,
     "One LogRecord as the field 2 of a ScopeLogs, or None: the Python encoder's to do."},
    {"span", (PyCFunction)(void (*)(void))span, METH_FASTCALL,
     "One Span (from its SpanFields) as the field 2 of a ScopeSpans, or None: the Python encoder's to do."},
    {"configure_redaction", (PyCFunction)(void (*)(void))configure_redaction, METH_FASTCALL,
     "configure_redaction(active, redact_attributes, redact_body, redact_message, plain, unchanged, message_max)"},
    {"configure_line", (PyCFunction)(void (*)(void))configure_line, METH_FASTCALL,
     "configure_line(reserved, first_keys, redact_message, redact_attributes)"},
    {"json_line", (PyCFunction)(void (*)(void))json_line, METH_FASTCALL,
     "The console's JSON line of a record, or None: line.py's to write."},
    {"plain_log", (PyCFunction)(void (*)(void))plain_log, METH_FASTCALL,
     "A log record as its fields (FastEmit.plain's PlainLog tuple), or None: FastEmit.plain's to build."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "otelkit._runtime.otlp.cencoder",
    "otelkit's OTLP encoder for the common span and log record; see native.py and encode.py.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_cencoder(void) {
    sixty_four = PyLong_FromLong(64);
    str_trace_id = PyUnicode_InternFromString("trace_id");
    str_span_id = PyUnicode_InternFromString("span_id");
    str_trace_state = PyUnicode_InternFromString("trace_state");
    str_is_remote = PyUnicode_InternFromString("is_remote");
    str_description = PyUnicode_InternFromString("description");
    str_status_code = PyUnicode_InternFromString("status_code");
    str_created = PyUnicode_InternFromString("created");
    str_levelname = PyUnicode_InternFromString("levelname");
    str_name = PyUnicode_InternFromString("name");
    str_exc_info = PyUnicode_InternFromString("exc_info");
    str_suppressed = PyUnicode_InternFromString("otelkit_suppressed");
    str_message = PyUnicode_InternFromString("message");
    str_span_context = PyUnicode_InternFromString("span_context");
    str_request_id = PyUnicode_InternFromString("request_id");
    str_is_valid = PyUnicode_InternFromString("is_valid");
    str_levelno = PyUnicode_InternFromString("levelno");
    str_trace_flags = PyUnicode_InternFromString("trace_flags");
    str_event_name = PyUnicode_InternFromString("event.name");
    str_otel_event_name = PyUnicode_InternFromString("otel.event.name");
    str_kinds_table = PyUnicode_InternFromString("_kinds");
    str_messages_table = PyUnicode_InternFromString("_messages");
    if (str_kinds_table == NULL || str_messages_table == NULL) {
        return NULL;
    }
    if (str_created == NULL || str_levelname == NULL || str_name == NULL || str_exc_info == NULL ||
        str_suppressed == NULL || str_message == NULL || str_span_context == NULL || str_request_id == NULL ||
        str_is_valid == NULL || str_levelno == NULL || str_trace_flags == NULL || str_event_name == NULL ||
        str_otel_event_name == NULL) {
        return NULL;
    }
    if (sixty_four == NULL || str_trace_id == NULL || str_span_id == NULL || str_trace_state == NULL ||
        str_is_remote == NULL || str_description == NULL || str_status_code == NULL) {
        return NULL;
    }
    PyObject *logging_module = PyImport_ImportModule("logging");
    if (logging_module == NULL) {
        return NULL;
    }
    line_record_type = PyObject_GetAttrString(logging_module, "LogRecord");
    Py_DECREF(logging_module);
    if (line_record_type == NULL) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
#ifdef OTELKIT_SOURCE_SHA256
    /* setup.py's: native.py uses this module only if it matches the cencoder.c beside it. */
    if (PyModule_AddStringConstant(m, "SOURCE_SHA256", OTELKIT_SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#endif
    return m;
}
