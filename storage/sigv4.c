/* sigv4.c -- AWS Signature Version 4; see sigv4.h for the steps and why it is ours.
 *
 * Everything is built in caller-sized or fixed stack buffers through `sb`, a
 * bounded string builder that remembers overflow, so each function checks once at
 * the end instead of after every append. Headers are few (under 16 for S3), so they
 * are sorted with a simple insertion sort on a stack array.
 */
#include "storage/sigv4.h"

#include "core/hash.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_HEADERS 16
#define MAX_QUERY 32
#define CANON_MAX 8192

typedef struct {
    char *p;
    size_t cap, len;
    int overflow;
} sb;

static void sb_init(sb *b, char *p, size_t cap)
{
    b->p = p;
    b->cap = cap;
    b->len = 0;
    b->overflow = cap == 0;
    if (cap)
        p[0] = 0;
}

static void sb_add(sb *b, const char *s, size_t n)
{
    if (b->overflow || b->len + n + 1 > b->cap) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_encode(sb *b, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
            sb_add(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_add(b, e, 3);
        }
    }
}

int tly_sigv4_encode(const char *s, int keep_slash, char *out, size_t outsz)
{
    sb b;
    sb_init(&b, out, outsz);
    sb_encode(&b, s, keep_slash);
    return b.overflow ? -1 : (int)b.len;
}

/* Pairs compared by their encoded forms, as AWS sorts them. */
typedef struct {
    char name[256], value[1024];
} enc_pair;

static int pair_less(const enc_pair *a, const enc_pair *b)
{
    int c = strcmp(a->name, b->name);
    return c < 0 || (c == 0 && strcmp(a->value, b->value) < 0);
}

int tly_sigv4_query(const tly_sigv4_pair *q, size_t n, char *out, size_t outsz)
{
    static __thread enc_pair enc[MAX_QUERY];
    if (n > MAX_QUERY)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (tly_sigv4_encode(q[i].name, 0, enc[i].name, sizeof enc[i].name) < 0 ||
            tly_sigv4_encode(q[i].value ? q[i].value : "", 0, enc[i].value, sizeof enc[i].value) < 0)
            return -1;
        for (size_t j = i; j > 0 && pair_less(&enc[j], &enc[j - 1]); j--) {
            enc_pair t = enc[j];
            enc[j] = enc[j - 1];
            enc[j - 1] = t;
        }
    }
    sb b;
    sb_init(&b, out, outsz);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_str(&b, "&");
        sb_str(&b, enc[i].name);
        sb_str(&b, "=");
        sb_str(&b, enc[i].value);
    }
    return b.overflow ? -1 : (int)b.len;
}

typedef struct {
    char name[64];
    const char *value;
} canon_header;

/* Appends the value trimmed, with runs of spaces folded to one (SigV4's rule). */
static void sb_trimmed(sb *b, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    int space = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == ' ' || v[i] == '\t') {
            space = 1;
            continue;
        }
        if (space)
            sb_add(b, " ", 1);
        space = 0;
        sb_add(b, v + i, 1);
    }
}

/* Canonical headers block and the signed-header list, into two builders. */
static int canonical_headers(const tly_sigv4_pair *h, size_t n, sb *block, sb *names)
{
    canon_header c[MAX_HEADERS];
    if (n > MAX_HEADERS)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(h[i].name);
        if (len >= sizeof c[i].name)
            return -1;
        for (size_t k = 0; k <= len; k++)
            c[i].name[k] = (char)tolower((unsigned char)h[i].name[k]);
        c[i].value = h[i].value ? h[i].value : "";
        for (size_t j = i; j > 0 && strcmp(c[j].name, c[j - 1].name) < 0; j--) {
            canon_header t = c[j];
            c[j] = c[j - 1];
            c[j - 1] = t;
        }
    }
    for (size_t i = 0; i < n; i++) {
        sb_str(block, c[i].name);
        sb_str(block, ":");
        sb_trimmed(block, c[i].value);
        sb_str(block, "\n");
        if (i)
            sb_str(names, ";");
        sb_str(names, c[i].name);
    }
    return block->overflow || names->overflow ? -1 : 0;
}

/* The signature (hex) of a canonical request, and the credential scope. */
static int sign(const tly_sigv4_key *key, const char *canonical, size_t canonical_len, const char *amz_date,
                char scope[160], char signature[65])
{
    char day[9];
    memcpy(day, amz_date, 8);
    day[8] = 0;
    if (snprintf(scope, 160, "%s/%s/%s/aws4_request", day, key->region, key->service) >= 160)
        return -1;
    char creq_hash[65];
    tly_sha256_hex(canonical, canonical_len, creq_hash);
    char to_sign[320];
    int n = snprintf(to_sign, sizeof to_sign, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, creq_hash);
    if (n < 0 || (size_t)n >= sizeof to_sign)
        return -1;
    char secret[256];
    if (snprintf(secret, sizeof secret, "AWS4%s", key->secret_key) >= (int)sizeof secret)
        return -1;
    unsigned char k[32];
    tly_hmac_sha256(secret, strlen(secret), day, 8, k);
    tly_hmac_sha256(k, 32, key->region, strlen(key->region), k);
    tly_hmac_sha256(k, 32, key->service, strlen(key->service), k);
    tly_hmac_sha256(k, 32, "aws4_request", 12, k);
    tly_hmac_sha256_hex(k, 32, to_sign, (size_t)n, signature);
    memset(secret, 0, sizeof secret);
    memset(k, 0, sizeof k);
    return 0;
}

static void sb_canonical_start(sb *c, const char *method, const char *path, const char *query)
{
    sb_str(c, method);
    sb_str(c, "\n");
    sb_encode(c, path, 1);
    sb_str(c, "\n");
    sb_str(c, query ? query : "");
    sb_str(c, "\n");
}

int tly_sigv4_authorization(const tly_sigv4_key *key, const char *method, const char *path, const char *query,
                            const tly_sigv4_pair *headers, size_t nheaders, const char *payload_sha256,
                            const char *amz_date, char *out, size_t outsz)
{
    char canon_buf[CANON_MAX], block_buf[4096], names_buf[512];
    sb c, block, names;
    sb_init(&c, canon_buf, sizeof canon_buf);
    sb_init(&block, block_buf, sizeof block_buf);
    sb_init(&names, names_buf, sizeof names_buf);
    if (canonical_headers(headers, nheaders, &block, &names) < 0)
        return -1;
    sb_canonical_start(&c, method, path, query);
    sb_str(&c, block_buf);
    sb_str(&c, "\n");
    sb_str(&c, names_buf);
    sb_str(&c, "\n");
    sb_str(&c, payload_sha256);
    char scope[160], signature[65];
    if (c.overflow || sign(key, canon_buf, c.len, amz_date, scope, signature) < 0)
        return -1;
    int n = snprintf(out, outsz, "AWS4-HMAC-SHA256 Credential=%s/%s,SignedHeaders=%s,Signature=%s", key->access_key,
                     scope, names_buf, signature);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int tly_sigv4_presign(const tly_sigv4_key *key, const char *method, const char *base, const char *host,
                      const char *path, const tly_sigv4_pair *extra, size_t nextra, const char *amz_date,
                      long expires_s, char *out, size_t outsz)
{
    tly_sigv4_pair q[MAX_QUERY];
    char credential[400], expires[24], day[9];
    memcpy(day, amz_date, 8);
    day[8] = 0;
    if (nextra + 6 > MAX_QUERY)
        return -1;
    if (snprintf(credential, sizeof credential, "%s/%s/%s/%s/aws4_request", key->access_key, day, key->region,
                 key->service) >= (int)sizeof credential)
        return -1;
    snprintf(expires, sizeof expires, "%ld", expires_s);
    size_t n = 0;
    q[n++] = (tly_sigv4_pair){"X-Amz-Algorithm", "AWS4-HMAC-SHA256"};
    q[n++] = (tly_sigv4_pair){"X-Amz-Credential", credential};
    q[n++] = (tly_sigv4_pair){"X-Amz-Date", amz_date};
    q[n++] = (tly_sigv4_pair){"X-Amz-Expires", expires};
    if (key->session_token && *key->session_token)
        q[n++] = (tly_sigv4_pair){"X-Amz-Security-Token", key->session_token};
    q[n++] = (tly_sigv4_pair){"X-Amz-SignedHeaders", "host"};
    for (size_t i = 0; i < nextra; i++)
        q[n++] = extra[i];
    char query[4096];
    if (tly_sigv4_query(q, n, query, sizeof query) < 0)
        return -1;
    char canon_buf[CANON_MAX];
    sb c;
    sb_init(&c, canon_buf, sizeof canon_buf);
    sb_canonical_start(&c, method, path, query);
    sb_str(&c, "host:");
    sb_trimmed(&c, host);
    sb_str(&c, "\n\nhost\nUNSIGNED-PAYLOAD");
    char scope[160], signature[65];
    if (c.overflow || sign(key, canon_buf, c.len, amz_date, scope, signature) < 0)
        return -1;
    sb u;
    sb_init(&u, out, outsz);
    sb_str(&u, base);
    sb_encode(&u, path, 1);
    sb_str(&u, "?");
    sb_str(&u, query);
    sb_str(&u, "&X-Amz-Signature=");
    sb_str(&u, signature);
    return u.overflow ? -1 : 0;
}

void tly_sigv4_date(long long unix_s, char out[17])
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}
