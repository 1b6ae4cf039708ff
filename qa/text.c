/* text.c -- see text.h.
 *
 * Normalisation is one pass over the input writing at most as many bytes as it reads
 * (a pending separator is written only before the next word byte), so the output
 * buffer is len + 1 bytes. Splitting reuses that buffer: spaces become NULs and the
 * word array points into it. Each word also gets a 64-bit FNV-1a hash so that the
 * O(n * m) distance compares integers and only falls back to strcmp when two hashes
 * agree. The distance keeps one DP row over the shorter text (O(min(n, m)) memory).
 */
#include "qa/text.h"

#include <stdlib.h>
#include <string.h>

static int oom(tly_error *err)
{
    return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
}

static int is_word_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int tly_text_normalize(const char *s, size_t len, char **out, tly_error *err)
{
    *out = NULL;
    char *o = malloc(len + 1);
    if (!o)
        return oom(err);
    const unsigned char *in = (const unsigned char *)s;
    size_t n = 0;
    int pending = 0;   /* a separator was seen since the last word byte written */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = in[i];
        int keep = is_word_byte(c) ||
                   (c == '\'' && i > 0 && i + 1 < len && is_word_byte(in[i - 1]) && is_word_byte(in[i + 1]));
        if (!keep) {
            pending = 1;
            continue;
        }
        if (pending && n > 0)
            o[n++] = ' ';
        pending = 0;
        o[n++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    o[n] = '\0';
    *out = o;
    return 0;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void tly_words_free(tly_words *w)
{
    if (!w)
        return;
    free(w->buf);
    free(w->word);
    free(w->hash);
    memset(w, 0, sizeof *w);
}

int tly_words_split(const char *s, size_t len, tly_words *out, tly_error *err)
{
    memset(out, 0, sizeof *out);
    if (tly_text_normalize(s, len, &out->buf, err) < 0)
        return -1;
    size_t n = 0;
    for (char *p = out->buf; *p; p++)
        if (p == out->buf || p[-1] == ' ')
            n++;
    if (n > TLY_TEXT_MAX_WORDS) {
        tly_words_free(out);
        return tly_fail(err, TLY_E_UNPROCESSABLE, "text_too_long",
                        "the text has %zu words; at most %d can be compared", n, TLY_TEXT_MAX_WORDS);
    }
    out->word = malloc((n ? n : 1) * sizeof *out->word);
    out->hash = malloc((n ? n : 1) * sizeof *out->hash);
    if (!out->word || !out->hash) {
        tly_words_free(out);
        return oom(err);
    }
    size_t k = 0;
    for (char *p = out->buf; *p; p++) {
        if (*p == ' ')
            *p = '\0';
        else if (p == out->buf || p[-1] == '\0')
            out->word[k++] = p;
    }
    out->n = k;
    for (size_t i = 0; i < k; i++)
        out->hash[i] = fnv1a(out->word[i]);
    return 0;
}

static int same_word(const tly_words *a, size_t i, const tly_words *b, size_t j)
{
    return a->hash[i] == b->hash[j] && strcmp(a->word[i], b->word[j]) == 0;
}

int tly_words_equal(const tly_words *a, const tly_words *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (!same_word(a, i, b, i))
            return 0;
    return 1;
}

int tly_words_distance(const tly_words *a, const tly_words *b, size_t *out, tly_error *err)
{
    *out = 0;
    if (a->n > TLY_TEXT_MAX_WORDS || b->n > TLY_TEXT_MAX_WORDS)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "text_too_long", "at most %d words can be compared",
                        TLY_TEXT_MAX_WORDS);
    /* Row over the shorter text (columns), rows over the longer. */
    const tly_words *rows = a, *cols = b;
    if (cols->n > rows->n) {
        rows = b;
        cols = a;
    }
    size_t m = cols->n;
    if (m == 0) {
        *out = rows->n;
        return 0;
    }
    size_t *d = malloc((m + 1) * sizeof *d);
    if (!d)
        return oom(err);
    for (size_t j = 0; j <= m; j++)
        d[j] = j;
    for (size_t i = 1; i <= rows->n; i++) {
        size_t diag = d[0];   /* d[i-1][j-1] */
        d[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = d[j];  /* d[i-1][j] */
            size_t best = diag + (same_word(rows, i - 1, cols, j - 1) ? 0 : 1);
            if (up + 1 < best)
                best = up + 1;
            if (d[j - 1] + 1 < best)
                best = d[j - 1] + 1;
            d[j] = best;
            diag = up;
        }
    }
    *out = d[m];
    free(d);
    return 0;
}

double tly_wer_from_distance(size_t distance, size_t ref_words, size_t hyp_words)
{
    if (ref_words == 0)
        return hyp_words == 0 ? 0.0 : 1.0;
    return (double)distance / (double)ref_words;
}

int tly_wer(const char *ref, const char *hyp, double *out, tly_error *err)
{
    tly_words r, h;
    size_t dist;
    *out = 0;
    if (tly_words_split(ref, strlen(ref), &r, err) < 0)
        return -1;
    if (tly_words_split(hyp, strlen(hyp), &h, err) < 0) {
        tly_words_free(&r);
        return -1;
    }
    int rc = tly_words_distance(&r, &h, &dist, err);
    if (rc == 0)
        *out = tly_wer_from_distance(dist, r.n, h.n);
    tly_words_free(&r);
    tly_words_free(&h);
    return rc;
}
