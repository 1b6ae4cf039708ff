/* jsonview.c -- see jsonview.h.
 *
 * Two halves: a validating scanner that runs once over the text (an explicit stack
 * of open containers, one bit each, so deep nesting costs no recursion), and
 * navigation that trusts validated text and only skips bytes. Numbers are converted
 * when asked for, not while validating, except for the checks jansson makes while
 * lexing them (int64 range, real overflow).
 */
#include "export/jsonview.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- validation --------------------------------------------------------------------------- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The 4 hex digits at p (p + 4 <= end checked by the caller); -1 if not hex. */
static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* One UTF-8 sequence starting at p (a byte >= 0x80): its length, or 0 if it is not
 * well formed (overlong forms, surrogates and code points above U+10FFFF are not, as
 * in jansson's utf8_check_full). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* A string whose opening quote is at p; returns the byte after its closing quote,
 * or NULL with *why. */
static const char *scan_string(const char *p, const char *end, const char **why)
{
    const unsigned char *s = (const unsigned char *)p + 1, *e = (const unsigned char *)end;
    while (s < e) {
        /* The common bytes first: printable ASCII other than the quote and backslash. */
        while (s < e && *s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\')
            s++;
        if (s == e)
            break;
        unsigned c = *s;
        if (c == '"')
            return (const char *)s + 1;
        if (c < 0x20) {
            *why = "control character in a string";
            return NULL;
        }
        if (c >= 0x80) {
            size_t n = utf8_seq(s, e);
            if (!n) {
                *why = "invalid UTF-8";
                return NULL;
            }
            s += n;
            continue;
        }
        if (c != '\\') {
            s++;
            continue;
        }
        if (s + 1 >= e)
            break;
        c = s[1];
        if (c != 'u') {
            if (!strchr("\"\\/bfnrt", (int)c) || !c) {
                *why = "invalid escape";
                return NULL;
            }
            s += 2;
            continue;
        }
        long v = e - s >= 6 ? hex4((const char *)s + 2) : -1;
        if (v < 0) {
            *why = "invalid escape";
            return NULL;
        }
        s += 6;
        if (v == 0) {
            *why = "\\u0000 is not allowed";
            return NULL;
        }
        if (v >= 0xDC00 && v <= 0xDFFF) {
            *why = "invalid Unicode (a lone low surrogate)";
            return NULL;
        }
        if (v >= 0xD800 && v <= 0xDBFF) {
            long v2 = e - s >= 6 && s[0] == '\\' && s[1] == 'u' ? hex4((const char *)s + 2) : -1;
            if (v2 < 0xDC00 || v2 > 0xDFFF) {
                *why = "invalid Unicode (an unpaired high surrogate)";
                return NULL;
            }
            s += 6;
        }
    }
    *why = "premature end of input in a string";
    return NULL;
}

/* strtod over a copy of p[0..len) (the text is not NUL-terminated where it ends);
 * *overflow set when strtod reports one, as jansson's jsonp_strtod checks. A stack
 * copy for numbers of ordinary length, the heap for absurdly long ones. */
static double strtod_span(const char *p, size_t len, int *overflow)
{
    char small[128], *buf = len < sizeof small ? small : malloc(len + 1);
    if (!buf) {
        *overflow = 1;   /* out of memory: refuse the text rather than guess */
        return 0;
    }
    memcpy(buf, p, len);
    buf[len] = 0;
    errno = 0;
    double v = strtod(buf, NULL);
    *overflow = (v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE;
    if (buf != small)
        free(buf);
    return v;
}

/* A number starting at p; returns the byte after it, or NULL with *why. */
static const char *scan_number(const char *p, const char *end, const char **why)
{
    const char *s = p;
    int neg = 0;
    if (s < end && *s == '-')
        neg = 1, s++;
    const char *digits = s;
    if (s < end && *s == '0') {
        s++;
        if (s < end && *s >= '0' && *s <= '9') {
            *why = "invalid number (a leading zero)";
            return NULL;
        }
    } else if (s < end && *s >= '1' && *s <= '9') {
        while (s < end && *s >= '0' && *s <= '9')
            s++;
    } else {
        *why = "invalid number";
        return NULL;
    }
    size_t int_digits = (size_t)(s - digits);
    if (s == end || (*s != '.' && *s != 'e' && *s != 'E')) {
        /* An integer: jansson reads it with strtoll and refuses what overflows int64
         * (which takes 19 digits or more: shorter ones need no check). */
        if (int_digits < 19)
            return s;
        uint64_t u = 0, limit = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
        for (const char *d = digits; d < s; d++) {
            unsigned dig = (unsigned)(*d - '0');
            if (u > (limit - dig) / 10) {
                *why = "too big integer";
                return NULL;
            }
            u = u * 10 + dig;
        }
        return s;
    }
    int big_exp = 0;
    if (*s == '.') {
        s++;
        if (s == end || *s < '0' || *s > '9') {
            *why = "invalid number (no digit after '.')";
            return NULL;
        }
        while (s < end && *s >= '0' && *s <= '9')
            s++;
    }
    if (s < end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < end && (*s == '+' || *s == '-'))
            s++;
        if (s == end || *s < '0' || *s > '9') {
            *why = "invalid number (no digit in the exponent)";
            return NULL;
        }
        const char *e0 = s;
        while (s < end && *s >= '0' && *s <= '9')
            s++;
        /* Only an exponent of three digits or more can overflow a double. */
        while (e0 < s - 1 && *e0 == '0')
            e0++;
        big_exp = s - e0 >= 3;
    }
    /* Without a large exponent a real overflows only with 309+ integer digits. */
    if (big_exp || int_digits > 300) {
        int overflow = 0;
        strtod_span(p, (size_t)(s - p), &overflow);
        if (overflow) {
            *why = "real number overflow";
            return NULL;
        }
    }
    return s;
}

/* The type of the value text[0..len) (validated). */
static tly_jv_type type_of(const char *text, size_t len)
{
    switch (text[0]) {
    case '"': return TLY_JV_STRING;
    case '{': return TLY_JV_OBJECT;
    case '[': return TLY_JV_ARRAY;
    case 't': return TLY_JV_TRUE;
    case 'f': return TLY_JV_FALSE;
    case 'n': return TLY_JV_NULL;
    default:
        for (size_t i = 0; i < len; i++)
            if (text[i] == '.' || text[i] == 'e' || text[i] == 'E')
                return TLY_JV_REAL;
        return TLY_JV_INTEGER;
    }
}

static const char *scan_literal(const char *p, const char *end, const char *word, const char **why)
{
    size_t n = strlen(word);
    if ((size_t)(end - p) < n || memcmp(p, word, n) != 0) {
        *why = "invalid token";
        return NULL;
    }
    return p + n;
}

int tly_jv_parse(const char *text, size_t len, tly_jv *root, const char **why)
{
    return tly_jv_parse_doc(NULL, text, len, root, why);
}

enum { SPAN_DEPTH = 64 };   /* containers deeper than this are never recorded */

int tly_jv_parse_doc(tly_jv_doc *doc, const char *text, size_t len, tly_jv *root, const char **why)
{
    const char *dummy, *p = text, *end = text + len;
    unsigned char is_obj[TLY_JV_MAX_DEPTH / 8 + 1];   /* per open container: 1 object, 0 array */
    int slot[SPAN_DEPTH];                              /* per open container: its doc->span, or -1 */
    size_t depth = 0;                                  /* open containers */
    if (!why)
        why = &dummy;
    if (doc) {
        doc->text = text;
        doc->n = 0;
        if (len > UINT32_MAX)   /* offsets would not fit: navigate by scanning */
            doc = NULL;
    }
    *why = NULL;
    p = skip_ws(p, end);
    const char *start = p;
    for (;;) {
        /* A value, at depth + 1. */
        if (depth + 1 > TLY_JV_MAX_DEPTH) {
            *why = "maximum parsing depth reached";
            return -1;
        }
        if (p == end) {
            *why = "premature end of input";
            return -1;
        }
        int opened = 0;
        switch (*p) {
        case '{':
        case '[': {
            int obj = *p == '{';
            if (obj)
                is_obj[depth / 8] |= (unsigned char)(1u << (depth % 8));
            else
                is_obj[depth / 8] &= (unsigned char)~(1u << (depth % 8));
            const char *first = p;
            depth++;
            p = skip_ws(p + 1, end);
            if (p < end && *p == (obj ? '}' : ']')) {   /* empty: nothing to record */
                depth--;
                p++;
                break;
            }
            if (depth <= SPAN_DEPTH) {
                slot[depth - 1] = -1;
                if (doc && doc->n < TLY_JV_SPANS) {
                    slot[depth - 1] = (int)doc->n;
                    doc->span[doc->n++].start = (uint32_t)(first - text);
                }
            }
            opened = 1;
            break;
        }
        case '"':
            p = scan_string(p, end, why);
            break;
        case 't':
            p = scan_literal(p, end, "true", why);
            break;
        case 'f':
            p = scan_literal(p, end, "false", why);
            break;
        case 'n':
            p = scan_literal(p, end, "null", why);
            break;
        default:
            if (*p == '-' || (*p >= '0' && *p <= '9'))
                p = scan_number(p, end, why);
            else {
                *why = "invalid token";
                p = NULL;
            }
        }
        if (!p)
            return -1;
        if (!opened) {
            /* After a complete value: close containers, or go on to the next element. */
            for (;;) {
                if (depth == 0) {
                    /* Typed from its first byte, sized by the scan (a number at the
                     * very end of an unterminated text must not be read past). */
                    const char *value_end = p;
                    p = skip_ws(p, end);
                    if (p != end) {
                        *why = "end of input expected";
                        return -1;
                    }
                    root->p = start;
                    root->len = (size_t)(value_end - start);
                    root->type = type_of(start, root->len);
                    root->doc = doc;
                    return 0;
                }
                int obj = (is_obj[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1;
                p = skip_ws(p, end);
                if (p < end && *p == (obj ? '}' : ']')) {
                    depth--;
                    p++;
                    if (depth < SPAN_DEPTH && slot[depth] >= 0)
                        doc->span[slot[depth]].end = (uint32_t)(p - text);
                    continue;
                }
                if (p < end && *p == ',') {
                    p = skip_ws(p + 1, end);
                    break;
                }
                *why = obj ? "'}' or ',' expected" : "']' or ',' expected";
                return -1;
            }
        }
        /* In an object the next thing is a key and its colon. */
        if ((is_obj[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1) {
            if (p == end || *p != '"') {
                *why = "string or '}' expected";
                return -1;
            }
            if (!(p = scan_string(p, end, why)))
                return -1;
            p = skip_ws(p, end);
            if (p == end || *p != ':') {
                *why = "':' expected";
                return -1;
            }
            p = skip_ws(p + 1, end);
        }
    }
}

/* ---- navigation (validated text) ------------------------------------------------------- */

/* The end of the string whose opening quote is at p. */
static const char *string_end(const char *p)
{
    for (p++;; p++) {
        if (*p == '"')
            return p + 1;
        if (*p == '\\')
            p++;
    }
}

/* The end of the value starting at p, and its type. */
static const char *value_end(const char *p, tly_jv_type *type)
{
    switch (*p) {
    case '"':
        *type = TLY_JV_STRING;
        return string_end(p);
    case '{':
    case '[': {
        *type = *p == '{' ? TLY_JV_OBJECT : TLY_JV_ARRAY;
        size_t depth = 0;
        for (;; p++) {
            char c = *p;
            if (c == '"')
                p = string_end(p) - 1;
            else if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return p + 1;
        }
    }
    case 't':
        *type = TLY_JV_TRUE;
        return p + 4;
    case 'f':
        *type = TLY_JV_FALSE;
        return p + 5;
    case 'n':
        *type = TLY_JV_NULL;
        return p + 4;
    default: {
        int real = 0;
        while ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == '.' || *p == 'e' || *p == 'E') {
            real |= *p == '.' || *p == 'e' || *p == 'E';
            p++;
        }
        *type = real ? TLY_JV_REAL : TLY_JV_INTEGER;
        return p;
    }
    }
}

/* The value at p (validated text, p at its first byte); a container's end comes
 * from the doc when the scan recorded it. */
static tly_jv value_at(const tly_jv_doc *doc, const char *p)
{
    tly_jv v = {p, 0, TLY_JV_NONE, doc};
    if (doc && (*p == '{' || *p == '[')) {
        uint32_t off = (uint32_t)(p - doc->text);
        size_t lo = 0, hi = doc->n;
        while (lo < hi) {   /* spans are in order of their start */
            size_t mid = lo + (hi - lo) / 2;
            if (doc->span[mid].start == off) {
                v.type = *p == '{' ? TLY_JV_OBJECT : TLY_JV_ARRAY;
                v.len = doc->span[mid].end - off;
                return v;
            }
            if (doc->span[mid].start < off)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    v.len = (size_t)(value_end(p, &v.type) - p);
    return v;
}

tly_jv_iter tly_jv_iter_of(tly_jv v)
{
    tly_jv_iter it = {NULL, NULL, TLY_JV_NONE, v.doc};
    if (v.type == TLY_JV_ARRAY || v.type == TLY_JV_OBJECT)
        it.p = v.p + 1, it.end = v.p + v.len - 1, it.kind = v.type;
    return it;
}

/* Past a value's trailing whitespace and comma. */
static const char *after_value(const char *p, const char *end)
{
    p = skip_ws(p, end);
    if (p < end && *p == ',')
        p++;
    return p;
}

int tly_jv_next(tly_jv_iter *it, tly_jv *elem)
{
    if (it->kind != TLY_JV_ARRAY)
        return 0;
    const char *p = skip_ws(it->p, it->end);
    if (p >= it->end) {
        it->p = it->end;
        return 0;
    }
    *elem = value_at(it->doc, p);
    it->p = after_value(p + elem->len, it->end);
    return 1;
}

int tly_jv_next_member(tly_jv_iter *it, tly_jv *key, tly_jv *value)
{
    if (it->kind != TLY_JV_OBJECT)
        return 0;
    const char *p = skip_ws(it->p, it->end);
    if (p >= it->end) {
        it->p = it->end;
        return 0;
    }
    key->p = p;
    key->type = TLY_JV_STRING;
    key->doc = it->doc;
    key->len = (size_t)(string_end(p) - p);
    p = skip_ws(p + key->len, it->end);   /* at the ':' */
    p = skip_ws(p + 1, it->end);
    *value = value_at(it->doc, p);
    it->p = after_value(p + value->len, it->end);
    return 1;
}

tly_jv tly_jv_get(tly_jv obj, const char *key)
{
    tly_jv found = {NULL, 0, TLY_JV_NONE, NULL}, k, v;
    if (obj.type != TLY_JV_OBJECT)
        return found;
    tly_jv_iter it = tly_jv_iter_of(obj);
    while (tly_jv_next_member(&it, &k, &v))
        if (tly_jv_string_eq(k, key))
            found = v;   /* the last of duplicate keys, as jansson keeps it */
    return found;
}

size_t tly_jv_size(tly_jv arr)
{
    size_t n = 0;
    tly_jv e;
    if (arr.type != TLY_JV_ARRAY)
        return 0;
    tly_jv_iter it = tly_jv_iter_of(arr);
    while (tly_jv_next(&it, &e))
        n++;
    return n;
}

tly_jv tly_jv_at(tly_jv arr, size_t i)
{
    tly_jv e = {NULL, 0, TLY_JV_NONE, NULL};
    if (arr.type != TLY_JV_ARRAY)
        return e;
    tly_jv_iter it = tly_jv_iter_of(arr);
    for (size_t k = 0; tly_jv_next(&it, &e); k++)
        if (k == i)
            return e;
    return (tly_jv){NULL, 0, TLY_JV_NONE, NULL};
}

/* ---- numbers ------------------------------------------------------------------------------ */

int64_t tly_jv_integer(tly_jv v)
{
    if (v.type != TLY_JV_INTEGER)
        return 0;
    const char *p = v.p, *end = v.p + v.len;
    int neg = *p == '-';
    uint64_t u = 0;
    for (p += neg; p < end; p++)
        u = u * 10 + (uint64_t)(*p - '0');
    return neg ? (int64_t)((uint64_t)0 - u) : (int64_t)u;   /* validated: within int64 */
}

/* Powers of ten a double holds exactly. */
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

double tly_jv_number(tly_jv v)
{
    if (v.type == TLY_JV_INTEGER)
        return (double)tly_jv_integer(v);   /* json_number_value of a JSON_INTEGER */
    if (v.type != TLY_JV_REAL)
        return 0;
    /* Clinger's fast path: a significand below 2^53 and a power of ten up to 1e22 are
     * both exact doubles, so one IEEE multiplication or division rounds the decimal
     * exactly as strtod does. Anything else goes to strtod itself. */
    const char *p = v.p, *end = v.p + v.len;
    int neg = *p == '-';
    uint64_t m = 0;
    int sig = 0, exp10 = 0;
    for (p += neg; p < end && *p >= '0' && *p <= '9'; p++) {
        if (sig || *p != '0')
            sig++;
        m = m * 10 + (uint64_t)(*p - '0');
        if (sig > 19)
            goto slow;
    }
    if (p < end && *p == '.')
        for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
            if (sig || *p != '0')
                sig++;
            m = m * 10 + (uint64_t)(*p - '0');
            exp10--;
            if (sig > 19)
                goto slow;
        }
    if (p < end)   /* an exponent */
        goto slow;
    if (m > ((uint64_t)1 << 53) || exp10 < -22)
        goto slow;
    double d = (double)m / pow10_exact[-exp10];
    return neg ? -d : d;
slow:;
    int overflow;
    return strtod_span(v.p, v.len, &overflow);
}

/* ---- strings ------------------------------------------------------------------------------ */

int tly_jv_string_is_plain(tly_jv v)
{
    return v.type == TLY_JV_STRING && !memchr(v.p + 1, '\\', v.len - 2);
}

/* Decodes the escape at p (after the backslash) into out (at least 4 bytes); returns
 * the bytes written and advances *pp past the escape. */
static size_t decode_escape(const char **pp, char *out)
{
    const char *p = *pp;
    char c = *p++;
    size_t n = 1;
    switch (c) {
    case 'b': out[0] = '\b'; break;
    case 'f': out[0] = '\f'; break;
    case 'n': out[0] = '\n'; break;
    case 'r': out[0] = '\r'; break;
    case 't': out[0] = '\t'; break;
    case 'u': {
        uint32_t cp = (uint32_t)hex4(p);
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {   /* validated: a low surrogate follows */
            uint32_t lo = (uint32_t)hex4(p + 2);
            p += 6;
            cp = ((cp - 0xD800) << 10) + (lo - 0xDC00) + 0x10000;
        }
        if (cp < 0x80) {
            out[0] = (char)cp;
        } else if (cp < 0x800) {
            out[0] = (char)(0xC0 | (cp >> 6));
            out[1] = (char)(0x80 | (cp & 0x3F));
            n = 2;
        } else if (cp < 0x10000) {
            out[0] = (char)(0xE0 | (cp >> 12));
            out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[2] = (char)(0x80 | (cp & 0x3F));
            n = 3;
        } else {
            out[0] = (char)(0xF0 | (cp >> 18));
            out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[3] = (char)(0x80 | (cp & 0x3F));
            n = 4;
        }
        break;
    }
    default: out[0] = c; break;   /* " \ / */
    }
    *pp = p;
    return n;
}

int tly_jv_string_eq(tly_jv v, const char *s)
{
    if (v.type != TLY_JV_STRING || !s)
        return 0;
    const char *p = v.p + 1, *end = v.p + v.len - 1;
    while (p < end) {
        if (*p != '\\') {
            if (*s++ != *p++)
                return 0;
            continue;
        }
        p++;
        char buf[4];
        size_t n = decode_escape(&p, buf);
        for (size_t i = 0; i < n; i++)
            if (*s++ != buf[i])
                return 0;   /* also at s's NUL: decoded bytes are never 0 */
    }
    return *s == 0;
}

int tly_jv_key_index(tly_jv key, const char *const *names, int n)
{
    if (key.type != TLY_JV_STRING)
        return -1;
    size_t len = key.len - 2, j;
    const char *k = key.p + 1;
    for (j = 0; j < len; j++)   /* keys are short: plain loops beat libc calls here */
        if (k[j] == '\\') {      /* escaped: compare decoded */
            for (int i = 0; i < n; i++)
                if (tly_jv_string_eq(key, names[i]))
                    return i;
            return -1;
        }
    for (int i = 0; i < n; i++) {
        const char *name = names[i];
        for (j = 0; j < len && name[j] == k[j]; j++)
            ;
        if (j == len && name[j] == 0)
            return i;
    }
    return -1;
}

/* The bytes of the string's next character (an escape decoded) into buf; advances *p. */
static size_t next_char(const char **p, char buf[4])
{
    if (**p == '\\') {
        (*p)++;
        return decode_escape(p, buf);
    }
    buf[0] = *(*p)++;
    return 1;
}

int tly_jv_string_cmp(tly_jv v, const char *s)
{
    if (v.type != TLY_JV_STRING)
        return -1;
    const unsigned char *u = (const unsigned char *)s;
    const char *p = v.p + 1, *end = v.p + v.len - 1;
    while (p < end) {
        char buf[4];
        size_t n = next_char(&p, buf);
        for (size_t i = 0; i < n; i++, u++) {
            unsigned char c = (unsigned char)buf[i];
            if (c != *u)
                return c < *u ? -1 : 1;   /* at s's NUL: v is longer, so greater */
        }
    }
    return *u ? -1 : 0;
}

long tly_jv_string(tly_jv v, char *out, size_t outsz)
{
    if (v.type != TLY_JV_STRING)
        return -1;
    const char *p = v.p + 1, *end = v.p + v.len - 1;
    size_t total = 0;
    while (p < end) {
        char buf[4];
        size_t n = next_char(&p, buf);
        for (size_t i = 0; i < n; i++, total++)
            if (outsz && total < outsz - 1)
                out[total] = buf[i];
    }
    if (outsz)
        out[total < outsz - 1 ? total : outsz - 1] = 0;
    return (long)total;
}
