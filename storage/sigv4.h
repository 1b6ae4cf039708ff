/* sigv4.h -- AWS Signature Version 4 for S3 requests (internal to storage/).
 *
 * Why our own signer rather than libcurl's CURLOPT_AWS_SIGV4: Debian 12's libcurl
 * (7.88) signs, but does not add `x-amz-content-sha256` (S3 requires it and it must
 * be signed), does not canonicalise query strings, and does not encode paths. Those
 * three are exactly where S3 signatures go wrong, so the whole canonical request is
 * built here, from parts the caller gives already split (method, path, query pairs,
 * headers, payload hash), and checked against AWS's published example signatures
 * (tests/unit/test_storage_sigv4.c).
 *
 * Steps (AWS "Create a signed AWS API request"):
 *   canonical request = METHOD \n URI-encoded path \n sorted, encoded query \n
 *                       lowercase sorted headers "name:trimmed value\n" \n
 *                       signed header names joined by ';' \n payload SHA-256 hex
 *   string to sign    = "AWS4-HMAC-SHA256" \n amz_date \n scope \n SHA-256(canonical)
 *   signing key       = HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request"
 *
 * Every output goes to a caller buffer of a stated size; too small is an error, never
 * a truncated signature.
 */
#ifndef TALLY_STORAGE_SIGV4_H
#define TALLY_STORAGE_SIGV4_H

#include <stddef.h>

/* SHA-256 of the empty string: the payload hash of GET, HEAD and DELETE. */
#define TLY_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
    const char *access_key;
    const char *secret_key;
    const char *session_token;   /* NULL or "": none */
    const char *region;
    const char *service;         /* "s3" */
} tly_sigv4_key;

typedef struct {
    const char *name;            /* any case; signed in lowercase */
    const char *value;
} tly_sigv4_pair;

/* URI-encodes s per SigV4 (unreserved A-Z a-z 0-9 - _ . ~ kept, everything else
 * %XX uppercase); '/' kept when keep_slash (object paths). Returns the length
 * written, or -1 if out (outsz bytes, NUL included) is too small. */
int tly_sigv4_encode(const char *s, int keep_slash, char *out, size_t outsz);

/* The canonical query string of n raw (unencoded) pairs: each encoded, sorted by
 * name then value, joined with '&'. A pair with value NULL is "name=". -1 if too
 * small. */
int tly_sigv4_query(const tly_sigv4_pair *q, size_t n, char *out, size_t outsz);

/* The Authorization header value for a request. path: the raw (unencoded) object
 * path starting with '/'; query: already canonical (tly_sigv4_query) or "";
 * headers: every header to sign (must include host and x-amz-date; x-amz-content-
 * sha256 and x-amz-security-token when used). amz_date: "YYYYMMDDTHHMMSSZ".
 * Returns 0, or -1 if a buffer is too small. */
int tly_sigv4_authorization(const tly_sigv4_key *key, const char *method, const char *path, const char *query,
                            const tly_sigv4_pair *headers, size_t nheaders, const char *payload_sha256,
                            const char *amz_date, char *out, size_t outsz);

/* A presigned URL: base ("https://host"), host (the Host header the URL will be sent
 * with), raw path, extra raw query pairs (may be NULL), expiry in seconds. The
 * payload is UNSIGNED-PAYLOAD, as for every presigned S3 URL. */
int tly_sigv4_presign(const tly_sigv4_key *key, const char *method, const char *base, const char *host,
                      const char *path, const tly_sigv4_pair *extra, size_t nextra, const char *amz_date,
                      long expires_s, char *out, size_t outsz);

/* "YYYYMMDDTHHMMSSZ" for a Unix time (seconds). */
void tly_sigv4_date(long long unix_s, char out[17]);

#endif
