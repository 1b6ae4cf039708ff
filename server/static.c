/* static.c -- the browser client's files under /app/ (web/ in the source tree).
 *
 * The client is plain HTML, CSS and ES modules, so serving it is reading a file:
 * no templating, no build step. The web root is cfg.web_root (--web DIR, by default
 * the source tree's web/ folder, compiled in as TALLY_WEB_DIR).
 *
 * Safety: a request path is accepted only when every segment is a plain name
 * ([A-Za-z0-9_.-], not starting with a dot: no "..", no hidden files, no empty
 * segments; MHD has already percent-decoded it, so "%2e%2e" is seen as ".."), and the
 * file's real path (symlinks resolved) must lie inside the web root's real path.
 * Anything else is a 404, never a hint of what exists outside.
 *
 * Caching: the ETag is made from the file's inode, size and modification time, so a
 * revalidation (If-None-Match) costs a stat and no read; Cache-Control is no-cache,
 * so a browser always revalidates and an edited file is picked up at once. HTML gets a
 * Content-Security-Policy that allows only this origin's scripts and connections
 * (media come as blob: URLs, fetched with the worker's token).
 */
#include "server/handlers.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATIC_MAX_FILE (16u << 20)   /* bytes: the client's files are far smaller */
#define STATIC_MAX_PATH 512           /* bytes of the path under /app/ */

static const char *content_type_for(const char *path)
{
    static const struct { const char *ext, *type; } types[] = {
        {".html", "text/html; charset=utf-8"},      {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".json", "application/json; charset=utf-8"}, {".svg", "image/svg+xml"},
        {".png", "image/png"},                      {".jpg", "image/jpeg"},
        {".ico", "image/x-icon"},                   {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},      {".md", "text/markdown; charset=utf-8"},
    };
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* 1 if rel is a relative path of plain name segments (see the file comment). */
static int is_plain_relative_path(const char *rel)
{
    size_t len = strlen(rel);
    if (len == 0 || len >= STATIC_MAX_PATH)
        return 0;
    const char *seg = rel;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 0 || seg[0] == '.')
            return 0;
        for (size_t i = 0; i < n; i++) {
            char c = seg[i];
            int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                     c == '-' || c == '.';
            if (!ok)
                return 0;
        }
        if (!end)
            return 1;
        seg = end + 1;
    }
}

static void reply_not_found(tly_req *r, const char *rel)
{
    http_reply_errorf(r, TLY_E_NOT_FOUND, "not_found", "no such file: /app/%s", rel);
}

/* Reads exactly size bytes of fd into a malloc'd buffer (the caller frees it). */
static char *read_exactly(int fd, size_t size)
{
    char *data = malloc(size ? size : 1);
    size_t got = 0;
    while (data && got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(data);
            return NULL;
        }
        got += (size_t)n;
    }
    return data;
}

/* Serves web_root/rel (rel already checked by is_plain_relative_path). */
static void serve_file(tly_req *r, const char *rel)
{
    const char *root = r->app->cfg.web_root;
    char real_root[PATH_MAX], wanted[PATH_MAX + STATIC_MAX_PATH + 2], real_file[PATH_MAX];
    if (!root[0] || !realpath(root, real_root))
        return http_reply_errorf(r, TLY_E_NOT_FOUND, "not_found",
                                 "the browser client is not installed (start tallyd with --web DIR)");
    snprintf(wanted, sizeof wanted, "%s/%s", real_root, rel);
    size_t root_len = strlen(real_root);
    if (!realpath(wanted, real_file) || strncmp(real_file, real_root, root_len) != 0 ||
        real_file[root_len] != '/')
        return reply_not_found(r, rel);

    int fd = open(real_file, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > STATIC_MAX_FILE) {
        if (fd >= 0)
            close(fd);
        return reply_not_found(r, rel);
    }
    char etag[96];
    snprintf(etag, sizeof etag, "\"%llx-%llx-%llx.%09ld\"", (unsigned long long)sb.st_ino,
             (unsigned long long)sb.st_size, (unsigned long long)sb.st_mtim.tv_sec, (long)sb.st_mtim.tv_nsec);
    const char *inm = http_request_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm && strstr(inm, etag)) {
        close(fd);
        http_reply_empty(r, MHD_HTTP_NOT_MODIFIED);
    } else {
        size_t size = (size_t)sb.st_size;
        char *data = read_exactly(fd, size);
        close(fd);
        if (!data)
            return http_reply_errorf(r, TLY_E_IO, "io_error", "cannot read /app/%s", rel);
        const char *type = content_type_for(real_file);
        http_reply_text(r, MHD_HTTP_OK, type, data, size);   /* copies */
        free(data);
        if (strncmp(type, "text/html", 9) == 0) {
            http_set_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
                            "style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; "
                            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
            http_set_header(r, "Referrer-Policy", "no-referrer");
        }
    }
    http_set_header(r, MHD_HTTP_HEADER_ETAG, etag);
    http_set_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
}

void h_app_redirect(tly_req *r)
{
    http_reply_empty(r, MHD_HTTP_MOVED_PERMANENTLY);
    http_set_header(r, MHD_HTTP_HEADER_LOCATION, "/app/");
}

void h_app_index(tly_req *r)
{
    serve_file(r, "index.html");
}

void h_app_static(tly_req *r)
{
    const char *rel = r->tail ? r->tail : "";
    if (!is_plain_relative_path(rel))
        return http_reply_errorf(r, TLY_E_NOT_FOUND, "not_found", "no such file under /app/");
    serve_file(r, rel);
}
