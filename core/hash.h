/* hash.h -- SHA-256, secure randomness and constant-time comparison (OpenSSL).
 *
 * Blobs are named by the lowercase hex SHA-256 of their bytes; API tokens are stored
 * only as the hex SHA-256 of the token. Streaming hashing lets ingest hash a file
 * while copying it, so each byte is read once.
 */
#ifndef TALLY_CORE_HASH_H
#define TALLY_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define TLY_SHA256_HEX_LEN 64

typedef struct tly_sha256 tly_sha256;

tly_sha256 *tly_sha256_new(void);              /* NULL on out-of-memory */
void tly_sha256_update(tly_sha256 *h, const void *data, size_t len);
/* Writes 64 hex chars + NUL into hex (65 bytes) and frees h. */
void tly_sha256_finish(tly_sha256 *h, char hex[TLY_SHA256_HEX_LEN + 1]);
void tly_sha256_free(tly_sha256 *h);           /* abandon without a digest */

void tly_sha256_hex(const void *data, size_t len, char hex[TLY_SHA256_HEX_LEN + 1]);
/* Hash a whole file; size_out optional. Returns 0 or -1 (errno set). */
int tly_sha256_file(const char *path, char hex[TLY_SHA256_HEX_LEN + 1], uint64_t *size_out);

/* True if s is exactly 64 lowercase hex digits. */
int tly_is_sha256_hex(const char *s);

/* Cryptographically secure random bytes; returns 0 or -1. */
int tly_random_bytes(void *buf, size_t len);
/* nbytes random bytes as 2*nbytes hex chars + NUL into out. Returns 0 or -1. */
int tly_random_hex(size_t nbytes, char *out, size_t outsz);

/* Constant-time equality of two equal-length buffers. */
int tly_const_eq(const void *a, const void *b, size_t len);

/* HMAC-SHA256(key, msg): the 32 raw bytes (key derivation chains, AWS SigV4). */
void tly_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen, unsigned char out[32]);
/* len bytes as 2 * len lowercase hex digits and a NUL. */
void tly_hex_encode(const unsigned char *data, size_t len, char *hex);
/* HMAC-SHA256(key, msg) as hex. */
void tly_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen,
                         char hex[TLY_SHA256_HEX_LEN + 1]);

#endif
