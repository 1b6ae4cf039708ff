/* jsonview.h -- a read-only, allocation-free view over stored JSON text.
 *
 * Why: an export reads one stored answer per item, and parsing each with jansson
 * (a malloc per value, strtod per number, then freeing it all) was more than half of
 * an export's CPU time, several times what sqlite3 spends writing the whole row as
 * CSV. The writers only look up a few members, iterate a few arrays and read
 * numbers and labels, so they can walk the text where it lies (the store's column
 * buffer) instead.
 *
 * How: tly_jv_parse validates the whole text once, accepting exactly what jansson's
 * json_loads(text, JSON_DECODE_ANY) accepts (the store parses these columns with it
 * everywhere else, and a corrupt row must fail the export the same way): strict
 * RFC 8259 syntax, UTF-8 checked, no \u0000, surrogate pairs paired, integers in
 * int64 (jansson's json_int_t), reals that do not overflow, nesting at most 2048
 * values deep, whitespace only after the value. Everything after that trusts the
 * text: a tly_jv is a span (its first byte, its length, its type) and navigating it
 * only skips over bytes.
 *
 * Values mean what jansson would make of them: tly_jv_get returns the *last* member
 * of a name (jansson keeps the last of duplicate keys), tly_jv_number gives
 * json_number_value's double (integers through int64, reals as strtod rounds them:
 * a correctly rounded fast path for the short decimals answers are made of, strtod
 * itself otherwise), 0 for anything not a number; strings are compared and copied
 * decoded. A missing member is a tly_jv of type TLY_JV_NONE, on which every accessor
 * works (as jansson's functions accept NULL).
 *
 * Used by the export writers (export/write_*.c); no dependency but libc.
 */
#ifndef TALLY_EXPORT_JSONVIEW_H
#define TALLY_EXPORT_JSONVIEW_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    TLY_JV_NONE = 0,   /* absent (a missing member, past the end of an array) */
    TLY_JV_NULL,
    TLY_JV_FALSE,
    TLY_JV_TRUE,
    TLY_JV_INTEGER,    /* no fraction, no exponent: jansson's JSON_INTEGER */
    TLY_JV_REAL,
    TLY_JV_STRING,
    TLY_JV_ARRAY,
    TLY_JV_OBJECT,
} tly_jv_type;

typedef struct tly_jv_doc tly_jv_doc;

typedef struct {
    const char *p;     /* the value's first byte in the text ('"', '[', '-', ...) */
    size_t len;        /* its length in bytes */
    tly_jv_type type;
    const tly_jv_doc *doc;   /* where container ends were recorded, or NULL */
} tly_jv;

/* Where the validating scan saw each container end (the first TLY_JV_SPANS
 * non-empty arrays and objects less than 64 deep, by offset of their first byte):
 * without it, reaching a member means skipping every byte before it again, and the
 * writers' lookups scanned each answer three times over. Lives on the caller's
 * stack, as long as the views taken from it. */
#define TLY_JV_SPANS 128
struct tly_jv_doc {
    const char *text;
    size_t n;
    struct {
        uint32_t start, end;   /* offsets in text: the container's first byte, and past its last */
    } span[TLY_JV_SPANS];
};

/* Maximum nesting, as jansson's JSON_PARSER_MAX_DEPTH: every value counts one level
 * (the top value is at depth 1). */
#define TLY_JV_MAX_DEPTH 2048

/* Validates text[0..len) and sets *root to its value. 0, or -1 with *why (a static
 * message, may be NULL) when jansson would refuse the text. The text must outlive
 * every tly_jv taken from it. */
int tly_jv_parse(const char *text, size_t len, tly_jv *root, const char **why);
/* The same, recording container ends in *doc (for texts read more than once). */
int tly_jv_parse_doc(tly_jv_doc *doc, const char *text, size_t len, tly_jv *root, const char **why);

static inline int tly_jv_is_number(tly_jv v)
{
    return v.type == TLY_JV_INTEGER || v.type == TLY_JV_REAL;
}

/* The last member of obj named key (decoded comparison); TLY_JV_NONE if there is
 * none or obj is not an object. */
tly_jv tly_jv_get(tly_jv obj, const char *key);
/* Elements of an array, or members of an object, in text order. */
typedef struct {
    const char *p, *end;
    tly_jv_type kind;   /* TLY_JV_ARRAY, TLY_JV_OBJECT, or TLY_JV_NONE (empty) */
    const tly_jv_doc *doc;
} tly_jv_iter;
/* Starts iterating v; an iterator over anything but an array or object is empty. */
tly_jv_iter tly_jv_iter_of(tly_jv v);
/* The next element of an array into *elem; 0 at the end (at once for an object or
 * anything else, as json_array_foreach does nothing on them). */
int tly_jv_next(tly_jv_iter *it, tly_jv *elem);
/* The next member's key (a TLY_JV_STRING) and value; 0 at the end (at once for
 * anything but an object). */
int tly_jv_next_member(tly_jv_iter *it, tly_jv *key, tly_jv *value);
/* Elements of an array (0 for anything else). */
size_t tly_jv_size(tly_jv arr);
/* Element i of an array, or TLY_JV_NONE. */
tly_jv tly_jv_at(tly_jv arr, size_t i);

/* json_number_value: the number's double, 0 if v is not a number. */
double tly_jv_number(tly_jv v);
/* json_integer_value: an integer's value, 0 for anything else (reals too). */
int64_t tly_jv_integer(tly_jv v);
/* 1 if v is a string whose decoded bytes are exactly the NUL-terminated s. */
int tly_jv_string_eq(tly_jv v, const char *s);
/* Which of names[0..n) the decoded string key is (the first that matches), or -1:
 * one call per member when a writer picks the members it reads. */
int tly_jv_key_index(tly_jv key, const char *const *names, int n);
/* strcmp(decoded v, s) in sign (bytes compared unsigned); a non-string sorts first. */
int tly_jv_string_cmp(tly_jv v, const char *s);
/* A string's decoded bytes into out (NUL-terminated, truncated to outsz - 1);
 * returns the full decoded length, or -1 if v is not a string. */
long tly_jv_string(tly_jv v, char *out, size_t outsz);
/* 1 if the string needs no decoding (no backslash): its bytes are v.p + 1, len - 2. */
int tly_jv_string_is_plain(tly_jv v);

#endif
