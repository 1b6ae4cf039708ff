/* hash.c -- see hash.h. Thin wrappers over OpenSSL's EVP and RAND interfaces. */
#include "core/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <unistd.h>

struct tly_sha256 {
    EVP_MD_CTX *ctx;
};

static void to_hex(const unsigned char *bin, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bin[i] >> 4];
        out[2 * i + 1] = digits[bin[i] & 15];
    }
    out[2 * n] = '\0';
}

tly_sha256 *tly_sha256_new(void)
{
    tly_sha256 *h = OPENSSL_malloc(sizeof *h);
    if (!h)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->ctx);
        OPENSSL_free(h);
        return NULL;
    }
    return h;
}

void tly_sha256_update(tly_sha256 *h, const void *data, size_t len)
{
    EVP_DigestUpdate(h->ctx, data, len);
}

void tly_sha256_finish(tly_sha256 *h, char hex[TLY_SHA256_HEX_LEN + 1])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->ctx, md, &n);
    to_hex(md, 32, hex);
    tly_sha256_free(h);
}

void tly_sha256_free(tly_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    OPENSSL_free(h);
}

void tly_sha256_hex(const void *data, size_t len, char hex[TLY_SHA256_HEX_LEN + 1])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    to_hex(md, 32, hex);
}

int tly_sha256_file(const char *path, char hex[TLY_SHA256_HEX_LEN + 1], uint64_t *size_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    tly_sha256 *h = tly_sha256_new();
    if (!h) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    static __thread unsigned char buf[1 << 16];
    uint64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            tly_sha256_free(h);
            close(fd);
            errno = e;
            return -1;
        }
        if (n == 0)
            break;
        tly_sha256_update(h, buf, (size_t)n);
        total += (uint64_t)n;
    }
    close(fd);
    tly_sha256_finish(h, hex);
    if (size_out)
        *size_out = total;
    return 0;
}

int tly_is_sha256_hex(const char *s)
{
    if (!s)
        return 0;
    for (int i = 0; i < TLY_SHA256_HEX_LEN; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return s[TLY_SHA256_HEX_LEN] == '\0';
}

int tly_random_bytes(void *buf, size_t len)
{
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

int tly_random_hex(size_t nbytes, char *out, size_t outsz)
{
    unsigned char raw[64];
    if (nbytes > sizeof raw || outsz < 2 * nbytes + 1)
        return -1;
    if (tly_random_bytes(raw, nbytes) < 0)
        return -1;
    to_hex(raw, nbytes, out);
    return 0;
}

int tly_const_eq(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

void tly_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen, unsigned char out[32])
{
    unsigned int n = 0;
    HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &n);
}

void tly_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen,
                         char hex[TLY_SHA256_HEX_LEN + 1])
{
    unsigned char md[32];
    tly_hmac_sha256(key, keylen, msg, msglen, md);
    to_hex(md, 32, hex);
}

void tly_hex_encode(const unsigned char *data, size_t len, char *hex)
{
    to_hex(data, len, hex);
}
