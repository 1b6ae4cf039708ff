/* out.c -- see out.h and writer.h (the file functions). */
#include "export/out.h"
#include "core/fsutil.h"
#include "core/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int io_fail(tly_error *err, const char *what, const char *path);
static size_t put_u64(char *p, uint64_t u);
static size_t num_text(double v, char *out, size_t outsz);

struct tly_export_out {
    char *root;
    FILE *manifest;
    tly_sha256 *mh;
    int64_t files, bytes;
    int open_files;
};

/* Bytes gather in buf and reach the disk (and the hash) a whole buffer at a time:
 * writers emit many small pieces (a JSON token, a field), and a write() or a hash
 * update per piece cost more than the formatting. */
#define FILE_BUF (256 * 1024)

/* A file that outgrows its first buffer gets a writer thread and a second buffer:
 * the thread writes and hashes one buffer while the export fills the other. The
 * write() and SHA-256 of a large annotation file were a quarter of an export's time,
 * and a second core is idle meanwhile. Files that fit one buffer (most files of the
 * per-image formats) never start a thread. The hash sees the buffers in order: one
 * job at a time, and the export thread touches fd and hash only when the writer is
 * idle (wait_idle). */
struct tly_export_file {
    tly_export_out *out;
    int fd;
    tly_sha256 *h;              /* NULL for a scratch file (not in the dataset) */
    int64_t size;
    char *path;
    size_t used;
    char *buf;                  /* the buffer being filled: first, or second */
    char *second;               /* with the writer thread */
    int threaded;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const char *job;            /* a buffer handed to the writer (NULL when idle) */
    size_t job_len;
    int job_errno;              /* the writer's first failure */
    int stop;
    char first[FILE_BUF];
};

/* Writes and hashes data at once (the writer idle or absent). */
static int write_now(tly_export_file *f, const void *data, size_t len, tly_error *err)
{
    if (tly_write_all(f->fd, data, len) < 0)
        return io_fail(err, "cannot write", f->path);
    if (f->h)
        tly_sha256_update(f->h, data, len);
    return 0;
}

static void *writer_main(void *arg)
{
    tly_export_file *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->job && !f->stop)
            pthread_cond_wait(&f->cv, &f->mu);
        if (!f->job)
            break;
        const char *data = f->job;
        size_t len = f->job_len;
        int failed = f->job_errno;
        pthread_mutex_unlock(&f->mu);
        int e = 0;
        if (!failed) {   /* after a failure the file is lost anyway: just drain */
            if (tly_write_all(f->fd, data, len) < 0)
                e = errno ? errno : EIO;
            else if (f->h)
                tly_sha256_update(f->h, data, len);
        }
        pthread_mutex_lock(&f->mu);
        if (e && !f->job_errno)
            f->job_errno = e;
        f->job = NULL;
        pthread_cond_broadcast(&f->cv);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Waits until the writer has finished its buffer; -1 with err if it failed. */
static int wait_idle(tly_export_file *f, tly_error *err)
{
    if (!f->threaded)
        return 0;
    pthread_mutex_lock(&f->mu);
    while (f->job)
        pthread_cond_wait(&f->cv, &f->mu);
    int e = f->job_errno;
    pthread_mutex_unlock(&f->mu);
    if (e) {
        errno = e;
        return io_fail(err, "cannot write", f->path);
    }
    return 0;
}

/* Starts the writer thread; 0 if it could not (the file is then written inline). */
static int start_writer(tly_export_file *f)
{
    if (!(f->second = malloc(FILE_BUF)))
        return 0;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if (pthread_create(&f->thread, NULL, writer_main, f) != 0) {
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        free(f->second);
        f->second = NULL;
        return 0;
    }
    f->threaded = 1;
    return 1;
}

/* Stops and joins the writer (after wait_idle); NULL-safe on unthreaded files. */
static void stop_writer(tly_export_file *f)
{
    if (!f->threaded)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f->second);
    f->second = NULL;
    f->threaded = 0;
}

/* Hands the filled buffer to the writer (starting it the first time) and goes on
 * in the other one; inline when final (the file is closing) or without a thread. */
static int flush_buf_as(tly_export_file *f, int final, tly_error *err)
{
    if (!f->used)
        return wait_idle(f, err);
    if (!f->threaded && !final)
        start_writer(f);
    if (wait_idle(f, err) < 0)
        return -1;
    if (!f->threaded || final) {
        int rc = write_now(f, f->buf, f->used, err);
        f->used = 0;
        return rc;
    }
    pthread_mutex_lock(&f->mu);
    f->job = f->buf;
    f->job_len = f->used;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    f->buf = f->buf == f->first ? f->second : f->first;
    f->used = 0;
    return 0;
}

static int flush_buf(tly_export_file *f, tly_error *err)
{
    return flush_buf_as(f, 0, err);
}

static int io_fail(tly_error *err, const char *what, const char *path)
{
    return tly_fail(err, TLY_E_IO, "export_io", "%s %s: %s", what, path, strerror(errno));
}

tly_export_out *tly_export_out_new(const char *root, const char *manifest_path, tly_error *err)
{
    tly_export_out *out = calloc(1, sizeof *out);
    if (!out || !(out->root = strdup(root)) || !(out->mh = tly_sha256_new())) {
        tly_export_out_free(out);
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        return NULL;
    }
    if (tly_mkdirs(root, 0755) < 0) {
        io_fail(err, "cannot create", root);
        tly_export_out_free(out);
        return NULL;
    }
    if (!(out->manifest = fopen(manifest_path, "w"))) {
        io_fail(err, "cannot create", manifest_path);
        tly_export_out_free(out);
        return NULL;
    }
    return out;
}

const char *tly_export_out_root(const tly_export_out *out)
{
    return out->root;
}

static int manifest_line(tly_export_out *out, const char *path, const char *sha256, int64_t size, tly_error *err)
{
    json_t *line = json_pack("{s:s,s:s,s:I}", "path", path, "sha256", sha256, "size", (json_int_t)size);
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (!text)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    size_t n = strlen(text);
    tly_sha256_update(out->mh, text, n);
    tly_sha256_update(out->mh, "\n", 1);
    int ok = fwrite(text, 1, n, out->manifest) == n && fputc('\n', out->manifest) != EOF;
    free(text);
    if (!ok)
        return io_fail(err, "cannot write", "the manifest");
    out->files++;
    out->bytes += size;
    return 0;
}

int tly_export_out_add(tly_export_out *out, const char *path, const char *sha256, int64_t size, tly_error *err)
{
    return manifest_line(out, path, sha256, size, err);
}

int tly_export_out_finish(tly_export_out *out, char *manifest_sha, int64_t *files, int64_t *bytes, tly_error *err)
{
    if (out->open_files)
        return tly_fail(err, TLY_E_INTERNAL, "writer_bug", "%d dataset files were left open", out->open_files);
    if (fflush(out->manifest) != 0 || fsync(fileno(out->manifest)) != 0)
        return io_fail(err, "cannot write", "the manifest");
    tly_sha256_finish(out->mh, manifest_sha);
    out->mh = NULL;
    if (files)
        *files = out->files;
    if (bytes)
        *bytes = out->bytes;
    return 0;
}

void tly_export_out_free(tly_export_out *out)
{
    if (!out)
        return;
    if (out->manifest)
        fclose(out->manifest);
    if (out->mh)
        tly_sha256_free(out->mh);
    free(out->root);
    free(out);
}

tly_export_file *tly_export_open(tly_export_out *out, const char *path, tly_error *err)
{
    if (!path[0] || path[0] == '/' || strstr(path, "..")) {
        tly_fail(err, TLY_E_INTERNAL, "writer_bug", "bad dataset path '%s'", path);
        return NULL;
    }
    tly_export_file *f = calloc(1, sizeof *f);
    char *full = NULL;
    if (f)
        f->buf = f->first;
    if (!f || !(f->path = strdup(path)) || !(f->h = tly_sha256_new()) ||
        asprintf(&full, "%s/%s", out->root, path) < 0) {
        full = NULL;
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto fail;
    }
    char *slash = strrchr(full, '/');
    *slash = 0;
    int rc = tly_mkdirs(full, 0755);
    *slash = '/';
    if (rc < 0) {
        io_fail(err, "cannot create the directory of", path);
        goto fail;
    }
    /* O_EXCL: a path opened twice in one export is a writer bug, not a silent overwrite. */
    if ((f->fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
        if (errno == EEXIST)
            tly_fail(err, TLY_E_CONFLICT, "writer_bug", "dataset file %s written twice", path);
        else
            io_fail(err, "cannot create", path);
        goto fail;
    }
    free(full);
    f->out = out;
    out->open_files++;
    return f;
fail:
    free(full);
    if (f) {
        free(f->path);
        if (f->h)
            tly_sha256_free(f->h);
        free(f);
    }
    return NULL;
}

int tly_export_write(tly_export_file *f, const void *data, size_t len, tly_error *err)
{
    f->size += (int64_t)len;
    if (f->used + len > FILE_BUF) {
        if (flush_buf(f, err) < 0)
            return -1;
        if (len > FILE_BUF / 2)   /* big pieces go straight through, after the writer's */
            return wait_idle(f, err) < 0 ? -1 : write_now(f, data, len, err);
    }
    memcpy(f->buf + f->used, data, len);
    f->used += len;
    return 0;
}

int tly_export_printf(tly_export_file *f, tly_error *err, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return tly_fail(err, TLY_E_INTERNAL, "format", "bad format");
    if ((size_t)n < sizeof small)
        return tly_export_write(f, small, (size_t)n, err);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = tly_export_write(f, big, (size_t)n, err);
    free(big);
    return rc;
}

/* The body of a JSON string (no quotes), escaped as jansson escapes by default
 * (quote, backslash and control characters; UTF-8 passes through), at out (room for
 * 6 * len bytes). Returns the length. */
static size_t json_escape(const char *str, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)str[k];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
    }
    return (size_t)(o - out);
}

/* A JSON string: escaped a chunk at a time into a local buffer, written at once. */
static int put_json_string(tly_export_file *f, const char *str, size_t len, tly_error *err)
{
    enum { CHUNK = 256 };
    char buf[6 * CHUNK + 2];
    size_t k = 0;
    buf[0] = '"';
    size_t n = 1;
    do {
        size_t take = len - k < CHUNK ? len - k : CHUNK;
        n += json_escape(str + k, take, buf + n);
        k += take;
        if (k == len)
            buf[n++] = '"';
        if (tly_export_write(f, buf, n, err) < 0)
            return -1;
        n = 0;
    } while (k < len);
    return 0;
}

char *tly_export_json_quote(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(6 * len + 3);
    if (!out)
        return NULL;
    out[0] = '"';
    size_t n = 1 + json_escape(s, len, out + 1);
    out[n++] = '"';
    out[n] = 0;
    return out;
}

/* Serialises a jansson value straight into the file's buffer, compact, keys in
 * insertion order: the same text as json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(10))
 * gives for Tally's values (reals keep a ".0" when integral), without its per-token
 * callback and printf per number, which were most of a JSON-lines export's time. */
static int put_json(tly_export_file *f, const json_t *v, int depth, tly_error *err)
{
    char num[40];
    if (depth > 64)
        return tly_fail(err, TLY_E_INTERNAL, "json", "JSON nested too deep for %s", f->path);
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        int first = 1;
        if (tly_export_write(f, "{", 1, err) < 0)
            return -1;
        json_object_foreach((json_t *)v, key, val) {
            if ((!first && tly_export_write(f, ",", 1, err) < 0) || put_json_string(f, key, strlen(key), err) < 0 ||
                tly_export_write(f, ":", 1, err) < 0 || put_json(f, val, depth + 1, err) < 0)
                return -1;
            first = 0;
        }
        return tly_export_write(f, "}", 1, err);
    }
    case JSON_ARRAY: {
        if (tly_export_write(f, "[", 1, err) < 0)
            return -1;
        for (size_t k = 0; k < json_array_size(v); k++)
            if ((k && tly_export_write(f, ",", 1, err) < 0) || put_json(f, json_array_get(v, k), depth + 1, err) < 0)
                return -1;
        return tly_export_write(f, "]", 1, err);
    }
    case JSON_STRING:
        return put_json_string(f, json_string_value(v), json_string_length(v), err);
    case JSON_INTEGER: {
        json_int_t x = json_integer_value(v);
        char *p = num;
        uint64_t u = (uint64_t)x;
        if (x < 0) {
            *p++ = '-';
            u = (uint64_t)0 - u;
        }
        p += put_u64(p, u);
        return tly_export_write(f, num, (size_t)(p - num), err);
    }
    case JSON_REAL: {
        tly_export_num(json_real_value(v), num, sizeof num);
        size_t n = strlen(num);
        if (!strpbrk(num, ".e")) {   /* a real stays a real: "3.0", as jansson writes it */
            memcpy(num + n, ".0", 3);
            n += 2;
        }
        return tly_export_write(f, num, n, err);
    }
    case JSON_TRUE:
        return tly_export_write(f, "true", 4, err);
    case JSON_FALSE:
        return tly_export_write(f, "false", 5, err);
    default:
        return tly_export_write(f, "null", 4, err);
    }
}

int tly_export_json(tly_export_file *f, const json_t *value, tly_error *err)
{
    return put_json(f, value, 0, err);
}

int tly_export_json_string(tly_export_file *f, const char *s, size_t len, tly_error *err)
{
    return put_json_string(f, s, len, err);
}

/* The text put_json gives tly_export_num_json(v): an integer when integral (and not
 * huge), else a real that keeps a fraction or exponent. */
char *tly_export_json_num_at(char *p, double v)
{
    if (!isfinite(v)) {
        *p++ = '0';
    } else if (v == floor(v) && fabs(v) < 1e15) {
        int64_t x = (int64_t)v;
        uint64_t u = (uint64_t)x;
        if (x < 0) {
            *p++ = '-';
            u = (uint64_t)0 - u;
        }
        p += put_u64(p, u);
    } else {
        size_t n = num_text(v, p, 40);
        if (!memchr(p, '.', n) && !memchr(p, 'e', n)) {
            memcpy(p + n, ".0", 2);
            n += 2;
        }
        p += n;
    }
    *p = 0;
    return p;
}

int tly_export_json_num(tly_export_file *f, double v, tly_error *err)
{
    char num[48];
    return tly_export_write(f, num, (size_t)(tly_export_json_num_at(num, v) - num), err);
}

char *tly_export_num_at(char *p, double v)
{
    return p + num_text(v, p, 40);
}

tly_export_file *tly_export_scratch(tly_export_out *out, tly_error *err)
{
    tly_export_file *f = calloc(1, sizeof *f);
    char *tmpl = NULL;
    if (f)
        f->buf = f->first;
    if (!f || !(f->path = strdup("(scratch)")) || asprintf(&tmpl, "%s/.scratch-XXXXXX", out->root) < 0) {
        tmpl = NULL;
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto fail;
    }
    /* Unlinked at once: nothing to clean up after a crash, and the kernel may drop
     * its pages without ever writing them back. */
    if ((f->fd = mkostemp(tmpl, O_CLOEXEC)) < 0) {
        io_fail(err, "cannot create a scratch file in", out->root);
        goto fail;
    }
    unlink(tmpl);
    free(tmpl);
    f->out = out;
    out->open_files++;
    return f;
fail:
    free(tmpl);
    if (f)
        free(f->path);
    free(f);
    return NULL;
}

int tly_export_append_scratch(tly_export_file *f, tly_export_file *scratch, tly_error *err)
{
    if (scratch->size <= (int64_t)scratch->used)   /* never left its buffer */
        return tly_export_write(f, scratch->buf, scratch->used, err);
    /* All of scratch on disk first; f's pending bytes go before the section. */
    if (flush_buf_as(scratch, 1, err) < 0 || flush_buf(f, err) < 0)
        return -1;
    /* Read straight into f's buffer, a buffer at a time: one copy, hashed once (by
     * the writer, while the next buffer is read). */
    for (off_t off = 0; off < (off_t)scratch->size;) {
        ssize_t n = pread(scratch->fd, f->buf, FILE_BUF, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return io_fail(err, "cannot read back", "a scratch file");
        f->used = (size_t)n;
        f->size += n;
        off += n;
        if (flush_buf(f, err) < 0)
            return -1;
    }
    return 0;
}

int tly_export_close(tly_export_file *f, tly_error *err)
{
    if (!f)
        return 0;
    tly_export_out *out = f->out;
    if (!f->h) {   /* scratch: its bytes went elsewhere, or nowhere after an error */
        tly_error ignore;
        wait_idle(f, &ignore);
        stop_writer(f);
        out->open_files--;
        close(f->fd);
        free(f->path);
        free(f);
        return 0;
    }
    int rc = flush_buf_as(f, 1, err);
    if (rc < 0) {
        tly_error ignore;
        wait_idle(f, &ignore);
    }
    stop_writer(f);
    if (close(f->fd) != 0 && rc == 0)
        rc = io_fail(err, "cannot write", f->path);
    char hex[65];
    tly_sha256_finish(f->h, hex);
    out->open_files--;
    if (rc == 0)
        rc = manifest_line(out, f->path, hex, f->size, err);
    free(f->path);
    free(f);
    return rc;
}

/* Writes u (< 10^19) in decimal at p; returns the length. */
static size_t put_u64(char *p, uint64_t u)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* tly_export_num's text; returns its length. */
static size_t num_text(double v, char *out, size_t outsz)
{
    if (!isfinite(v) || outsz < 32) {
        snprintf(out, outsz, "0");
        return strlen(out);
    }
    /* The common cases -- pixel coordinates, areas, confidences: at most 6 decimals
     * and well inside 2^53 -- by integer arithmetic: printf's float conversion was a
     * fifth of an export's time. The text is what %.10g gives for them. */
    double a = fabs(v);
    if (a < 1e15 && v == (double)(int64_t)v) {   /* integers (ids, most sizes): the digits */
        int64_t x = (int64_t)v;
        char *p = out;
        if (x < 0)
            *p++ = '-';
        p += put_u64(p, x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x);
        *p = 0;
        return (size_t)(p - out);
    }
    if (a < 1e9) {
        /* Rounded by conversion, not nearbyint (a libm call without SSE4.1): the two
         * differ only at exact halves, which the tolerance below refuses either way. */
        double scaled = a * 1e6, r = (double)(uint64_t)(scaled + 0.5);
        if (fabs(scaled - r) < 1e-7 + scaled * 1e-15) {   /* exactly (to float precision) 6 decimals or fewer */
            uint64_t units = (uint64_t)r, ip = units / 1000000, fp = units % 1000000;
            char *p = out;
            if (v < 0 && units)
                *p++ = '-';
            p += put_u64(p, ip);
            if (fp) {
                char frac[7];
                for (int k = 5; k >= 0; k--, fp /= 10)
                    frac[k] = (char)('0' + fp % 10);
                int len = 6;
                while (frac[len - 1] == '0')
                    len--;
                /* %.10g keeps 10 significant digits: drop what lies beyond them. */
                size_t int_digits = ip ? (size_t)(p - out) - (v < 0) : 0;
                if (int_digits + (size_t)len <= 10) {
                    *p++ = '.';
                    memcpy(p, frac, (size_t)len);
                    p += len;
                    *p = 0;
                    return (size_t)(p - out);
                }
            } else {
                *p = 0;
                return (size_t)(p - out);
            }
        }
    }
    if (v == floor(v) && a < 1e15) {
        snprintf(out, outsz, "%.0f", v);
        if (strcmp(out, "-0") == 0)
            snprintf(out, outsz, "0");
        return strlen(out);
    }
    snprintf(out, outsz, "%.10g", v);
    if (strchr(out, 'e') && a < 1) {   /* tiny values: fixed notation, 10 significant digits */
        int prec = 9 - (int)floor(log10(a));
        snprintf(out, outsz, "%.*f", prec > 30 ? 30 : prec, v);
        size_t n = strlen(out);
        while (n > 1 && out[n - 1] == '0')
            out[--n] = 0;
        if (n && out[n - 1] == '.')
            out[--n] = 0;
    }
    return strlen(out);
}

void tly_export_num(double v, char *out, size_t outsz)
{
    num_text(v, out, outsz);
}

void tly_export_xml_escape(const char *s, char *out, size_t outsz)
{
    size_t o = 0;
    if (!outsz)
        return;
    for (; s && *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        default: break;
        }
        size_t need = rep ? strlen(rep) : 1;
        if (o + need >= outsz)
            break;   /* whole entities only: truncated output stays well formed */
        if (rep) {
            memcpy(out + o, rep, need);
        } else if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r') {
            out[o] = ' ';   /* control characters are not allowed in XML 1.0 */
        } else {
            out[o] = *s;
        }
        o += need;
    }
    out[o] = 0;
}

int tly_export_csv_field(tly_export_file *f, const char *s, tly_error *err)
{
    if (!s)
        s = "";
    if (!strpbrk(s, ",\"\r\n"))
        return tly_export_puts(f, s, err);
    if (tly_export_write(f, "\"", 1, err) < 0)
        return -1;
    for (const char *p = s; *p; p++)
        if (tly_export_write(f, p, 1, err) < 0 || (*p == '"' && tly_export_write(f, "\"", 1, err) < 0))
            return -1;
    return tly_export_write(f, "\"", 1, err);
}
