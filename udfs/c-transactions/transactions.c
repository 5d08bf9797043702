/*
 * Deserializer UDF in C for the seeds' transaction records, through the row interface (guest-sdk/c/weir.h).
 *
 * Each Kafka value is a flat JSON object such as
 * {"name":"name7","surname":"sur7","amount":"12.50","delta_t":"30","flag":1,"ts":1700000000000}
 * and becomes one row of the same schema as the Rust `json-transactions` module, so the two are
 * interchangeable in a pipeline and comparable in the benchmarks. Unknown keys are skipped; a value that is
 * not such an object becomes a row error naming what was wrong, and the host applies the stage's on_error.
 */
#include <stdlib.h>
#include "weir.h"

WEIR_UDF(WEIR_DESERIALIZER)

enum { NAME, SURNAME, AMOUNT, DELTA_T, FLAG, TS, FIELDS };
static const char *const KEYS[FIELDS] = {"name", "surname", "amount", "delta_t", "flag", "ts"};

static int32_t value_col;
static char *buffer;
static int32_t buffer_cap;
/* Decoded strings that contained escapes; plain strings are passed straight from `buffer`. */
static char *scratch;

WEIR_INIT {
    value_col = weir_in_column_named("value");
    if (value_col < 0) return weir_fail("the input has no `value` column; is this stage a deserializer?");
    buffer_cap = 64 * 1024;
    buffer = malloc(buffer_cap);
    scratch = malloc(buffer_cap);
    if (!buffer || !scratch) return weir_fail("out of memory");
    return weir_declare("name STRING, surname STRING, amount STRING, delta_t STRING, flag INT, ts BIGINT");
}

typedef struct {
    const char *p, *end;
    char *out; /* where the next decoded string goes in `scratch` */
} Cursor;

static void skip_ws(Cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int hex(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Reads a JSON string at c->p (which is at the opening quote) into (*s, *len); NULL on error. */
static const char *read_string(Cursor *c, const char **s, int32_t *len) {
    const char *start = ++c->p;
    while (c->p < c->end && *c->p != '"' && *c->p != '\\') c->p++;
    if (c->p < c->end && *c->p == '"') { /* no escapes: point into the record */
        *s = start;
        *len = (int32_t)(c->p - start);
        c->p++;
        return NULL;
    }
    char *out = c->out, *begin = c->out;
    for (const char *q = start; q < c->p; q++) *out++ = *q;
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p++;
        if (ch != '\\') { *out++ = ch; continue; }
        if (c->p >= c->end) return "unterminated escape";
        ch = *c->p++;
        switch (ch) {
        case '"': case '\\': case '/': *out++ = ch; break;
        case 'b': *out++ = '\b'; break;
        case 'f': *out++ = '\f'; break;
        case 'n': *out++ = '\n'; break;
        case 'r': *out++ = '\r'; break;
        case 't': *out++ = '\t'; break;
        case 'u': {
            if (c->end - c->p < 4) return "short \\u escape";
            int code = 0;
            for (int i = 0; i < 4; i++) {
                int h = hex(*c->p++);
                if (h < 0) return "bad \\u escape";
                code = code * 16 + h;
            }
            if (code >= 0xD800 && code <= 0xDFFF) return "surrogate \\u escapes are not supported";
            if (code < 0x80) *out++ = (char)code;
            else if (code < 0x800) { *out++ = (char)(0xC0 | code >> 6); *out++ = (char)(0x80 | (code & 0x3F)); }
            else {
                *out++ = (char)(0xE0 | code >> 12);
                *out++ = (char)(0x80 | ((code >> 6) & 0x3F));
                *out++ = (char)(0x80 | (code & 0x3F));
            }
            break;
        }
        default: return "unknown escape";
        }
    }
    if (c->p >= c->end) return "unterminated string";
    c->p++;
    *s = begin;
    *len = (int32_t)(out - begin);
    c->out = out;
    return NULL;
}

/* Reads a JSON integer; NULL on success. */
static const char *read_int(Cursor *c, int64_t *value) {
    int negative = 0;
    int64_t v = 0;
    if (c->p < c->end && *c->p == '-') { negative = 1; c->p++; }
    const char *digits = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (v > (INT64_MAX - 9) / 10) return "integer out of range";
        v = v * 10 + (*c->p++ - '0');
    }
    if (c->p == digits) return "expected an integer";
    if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E')) return "expected an integer, found a fraction";
    *value = negative ? -v : v;
    return NULL;
}

/* Skips any JSON value (for keys this UDF does not use). */
static const char *skip_value(Cursor *c) {
    int depth = 0;
    do {
        skip_ws(c);
        if (c->p >= c->end) return "truncated value";
        char ch = *c->p;
        if (ch == '"') {
            const char *s; int32_t len;
            const char *e = read_string(c, &s, &len);
            if (e) return e;
        } else if (ch == '{' || ch == '[') { depth++; c->p++; }
        else if (ch == '}' || ch == ']') { depth--; c->p++; }
        else if (ch == ',' || ch == ':') c->p++;
        else while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']') c->p++;
    } while (depth > 0);
    return NULL;
}

/* Parses one record into output columns; on error nothing of the row is written and the reason returned. */
static const char *parse(const char *text, int32_t len) {
    Cursor c = {text, text + len, scratch};
    const char *str[FIELDS] = {0};
    int32_t str_len[FIELDS] = {0};
    int64_t num[FIELDS] = {0};
    int seen[FIELDS] = {0};
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{') return "not a JSON object";
    c.p++;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') c.p++;
    else for (;;) {
        skip_ws(&c);
        if (c.p >= c.end || *c.p != '"') return "expected a key";
        const char *key; int32_t key_len;
        const char *e = read_string(&c, &key, &key_len);
        if (e) return e;
        skip_ws(&c);
        if (c.p >= c.end || *c.p++ != ':') return "expected ':' after a key";
        skip_ws(&c);
        int field = -1;
        for (int f = 0; f < FIELDS; f++)
            if ((int32_t)strlen(KEYS[f]) == key_len && memcmp(KEYS[f], key, key_len) == 0) field = f;
        if (field < 0) e = skip_value(&c);
        else if (field == FLAG || field == TS) {
            if (c.end - c.p >= 4 && memcmp(c.p, "null", 4) == 0) { c.p += 4; }
            else { e = read_int(&c, &num[field]); seen[field] = 1; }
        } else {
            if (c.p >= c.end || *c.p != '"') return "name, surname, amount and delta_t must be strings";
            e = read_string(&c, &str[field], &str_len[field]);
            seen[field] = 1;
        }
        if (e) return e;
        skip_ws(&c);
        if (c.p < c.end && *c.p == ',') { c.p++; continue; }
        if (c.p < c.end && *c.p == '}') { c.p++; break; }
        return "expected ',' or '}'";
    }
    skip_ws(&c);
    if (c.p != c.end) return "trailing characters after the object";
    for (int f = NAME; f <= FLAG; f++)
        if (!seen[f]) return f == FLAG ? "missing field `flag`" : "missing a string field (name, surname, amount, delta_t)";
    if (num[FLAG] < INT32_MIN || num[FLAG] > INT32_MAX) return "`flag` does not fit an INT";
    for (int f = NAME; f <= DELTA_T; f++) weir_out_bytes(f, str[f], str_len[f]);
    weir_out_i64(FLAG, num[FLAG]);
    if (seen[TS]) weir_out_i64(TS, num[TS]);
    weir_out_row();
    return NULL;
}

WEIR_PROCESS(rows) {
    for (int32_t row = 0; row < rows; row++) {
        int32_t len = weir_in_bytes(value_col, row, buffer, buffer_cap);
        if (len < 0) { weir_reject(row, "the record has no value"); continue; }
        if (len > buffer_cap) {
            char *bigger = realloc(buffer, len), *bigger_scratch = realloc(scratch, len);
            if (!bigger || !bigger_scratch) return weir_fail("out of memory for a large record");
            buffer = bigger; scratch = bigger_scratch; buffer_cap = len;
            weir_in_bytes(value_col, row, buffer, buffer_cap);
        }
        const char *error = parse(buffer, len);
        if (error) weir_reject(row, error);
    }
    return WEIR_OK;
}
