/* error.h -- how every layer of Tally reports failure.
 *
 * A function that can fail returns 0 on success or -1 on failure and fills a
 * caller-owned tly_error. The error carries three things:
 *   - a status: the kind of failure, which the HTTP layer maps to a status code
 *     (the domain never names HTTP codes itself);
 *   - a stable snake_case code that clients may switch on ("lease_expired");
 *   - a human message naming the problem ("control 'label': unknown type 'foo'").
 * Passing err == NULL is allowed: the failure is still returned, just not described.
 * Any layer may call these functions.
 */
#ifndef TALLY_CORE_ERROR_H
#define TALLY_CORE_ERROR_H

typedef enum {
    TLY_OK = 0,
    TLY_E_INVALID,        /* malformed input: bad JSON, wrong type (HTTP 400) */
    TLY_E_UNPROCESSABLE,  /* well-formed but fails validation (422) */
    TLY_E_UNAUTHORIZED,   /* no or bad credentials (401) */
    TLY_E_FORBIDDEN,      /* valid credentials, not allowed (403) */
    TLY_E_NOT_FOUND,      /* no such thing, or not visible to the caller (404) */
    TLY_E_CONFLICT,       /* state conflict: duplicate, lease expired, closed (409) */
    TLY_E_TOO_LARGE,      /* over a size limit (413) */
    TLY_E_UNSUPPORTED,    /* unsupported media type or backend (415 / 501) */
    TLY_E_BUSY,           /* temporarily unavailable; retry (503) */
    TLY_E_IO,             /* disk, network or database failure (500) */
    TLY_E_INTERNAL        /* a bug or out of memory (500) */
} tly_status;

typedef struct {
    tly_status status;
    char code[48];
    char message[384];
} tly_error;

/* Fill err (if not NULL) and return -1, so callers can write `return tly_fail(...)`. */
int tly_fail(tly_error *err, tly_status status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reset err to "no error". */
void tly_error_clear(tly_error *err);

/* Prefix the message of an existing error with context ("file 'a.jpg': ..."). */
void tly_error_prefix(tly_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *tly_status_name(tly_status status);

#endif
