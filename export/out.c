/* out.c -- see out.h and writer.h (the file functions). */
#include "export/out.h"
#include "core/fsutil.h"
#include "core/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int io_fail(tly_error *err, const char *what, const char *path);

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

struct tly_export_file {
    tly_export_out *out;
    int fd;
    tly_sha256 *h;
    int64_t size;
    char *path;
    size_t used;
    char buf[FILE_BUF];
};

static int flush_buf(tly_export_file *f, tly_error *err)
{
    if (!f->used)
        return 0;
    if (tly_write_all(f->fd, f->buf, f->used) < 0)
        return io_fail(err, "cannot write", f->path);
    tly_sha256_update(f->h, f->buf, f->used);
    f->used = 0;
    return 0;
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
        if (len > FILE_BUF / 2) {   /* big pieces go straight through */
            if (tly_write_all(f->fd, data, len) < 0)
                return io_fail(err, "cannot write", f->path);
            tly_sha256_update(f->h, data, len);
            return 0;
        }
    }
    memcpy(f->buf + f->used, data, len);
    f->used += len;
    return 0;
}

int tly_export_puts(tly_export_file *f, const char *s, tly_error *err)
{
    return tly_export_write(f, s, strlen(s), err);
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

static int dump_cb(const char *buffer, size_t size, void *data)
{
    void **ctx = data;
    return tly_export_write(ctx[0], buffer, size, ctx[1]) < 0 ? -1 : 0;
}

int tly_export_json(tly_export_file *f, const json_t *value, tly_error *err)
{
    void *ctx[2] = {f, err};
    if (json_dump_callback(value, dump_cb, ctx, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10)) < 0)
        return err && err->status ? -1 : tly_fail(err, TLY_E_INTERNAL, "json", "cannot encode JSON for %s", f->path);
    return 0;
}

int tly_export_close(tly_export_file *f, tly_error *err)
{
    if (!f)
        return 0;
    tly_export_out *out = f->out;
    int rc = flush_buf(f, err);
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

void tly_export_num(double v, char *out, size_t outsz)
{
    if (!isfinite(v)) {
        snprintf(out, outsz, "0");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, outsz, "%.0f", v);
        if (strcmp(out, "-0") == 0)
            snprintf(out, outsz, "0");
        return;
    }
    snprintf(out, outsz, "%.10g", v);
    if (strchr(out, 'e')) {   /* tiny values: fixed notation, trailing zeros cut */
        snprintf(out, outsz, "%.12f", v);
        size_t n = strlen(out);
        while (n > 1 && out[n - 1] == '0')
            out[--n] = 0;
        if (n && out[n - 1] == '.')
            out[--n] = 0;
    }
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
