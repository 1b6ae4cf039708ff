/* pull.c -- `tally pull PROJECT --format FMT [--version V] [--split ...] [--no-media]
 * [--min-confidence X] [--out DIR]`: fetch one dataset version and verify it.
 *
 * Public API only (docs/API.md "Export"):
 *  1. The export. --version V reuses export V (GET /v1/exports/V: it must belong to
 *     PROJECT and have format FMT); V may also be the start of a version's SHA-256,
 *     looked up in GET /v1/projects/{id}/exports. Without --version,
 *     POST /v1/projects/{id}/exports makes a new one. Either way it is polled (backing
 *     off from 100 ms to 1 s) until done or failed, with a bar of progress.done/total.
 *  2. The artifact. GET .../download into OUT/.partial-<v12>.<ext>, v12 being the
 *     first 12 hex digits of the version (the manifest's SHA-256, also the ETag), so
 *     a partial file names the bytes it holds. A partial file left by an interrupted
 *     run is resumed with "Range: bytes=N-" and "If-Range: <etag>"; a 200 instead of
 *     the 206 means the server sends everything again, so the file starts over. The
 *     whole file must have the export's artifact.size and artifact.sha256; a resumed
 *     file that does not is fetched once more from the start.
 *  3. The files. A tar is read twice: once to check every entry (directories and
 *     regular files only, no absolute names, no ".."), so a bad archive writes
 *     nothing, then to unpack it into OUT, where nothing found is followed (every
 *     directory below OUT is opened with O_NOFOLLOW; an existing file is unlinked,
 *     not written through). A single annotation file is moved to the path its one manifest line
 *     (GET .../manifest) names, and that manifest is saved as OUT/manifest.jsonl, so
 *     both kinds leave the same layout.
 *  4. Verification. OUT/manifest.jsonl must hash to the version, and every file it
 *     lists must be in OUT with its size and SHA-256. Each mismatch is reported with
 *     the file's name; any makes the exit status 1.
 * The partial file is removed once unpacked (or moved), and a summary printed. A
 * second pull of the same version into the same OUT overwrites the files.
 */
#include "tools/tally/cli.h"
#include "tools/tally/progress.h"

#include "core/fsutil.h"
#include "core/hash.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MANIFEST "manifest.jsonl"
#define MAX_DEPTH 64                /* directory levels of a path inside OUT */
#define NO_LIMIT ((uint64_t)1 << 50) /* an artifact whose size the export does not say */
#define PAGE 100                    /* exports per page when looking up a version */

static const char *const formats[] = { "coco", "voc",  "yolo",         "csv",   "imagenet",
                                       "nemo", "rttm", "segments_csv", "jsonl", "labelstudio",
                                       NULL };

static const tc_help pull_help = {
    "pull",
    "PROJECT_ID --format FMT [--version V] [--split train=F,val=F,test=F[,seed=N]]\n"
    "       [--no-media] [--min-confidence X] [--out DIR]",
    "Downloads a dataset version of the project's released results and verifies it.\n"
    "FMT: coco, voc, yolo, csv, imagenet, nemo, rttm, segments_csv, jsonl, labelstudio.\n"
    "Without --version a new export is made and waited for; with --version V (an export\n"
    "id, or the start of a version's SHA-256) that export is fetched again: it must\n"
    "belong to the project and have format FMT.\n"
    "  --split ...          train/val/test fractions adding up to 1, and a seed\n"
    "  --no-media           annotations only, without the media files\n"
    "  --min-confidence X   only results with at least this confidence (0..1)\n"
    "  --out DIR            where the files go (default ./tally-<project>-<format>)\n"
    "--split, --no-media and --min-confidence shape a new export (not with --version).\n"
    "An archive is unpacked into DIR; every file of the version's manifest is checked\n"
    "(size and SHA-256). An interrupted download resumes when the same version is\n"
    "pulled into the same DIR again. Exit status 1 on any error or mismatch.",
};

typedef struct {
    tc_ctx *ctx;
    int64_t project;
    const char *format;
    const char *out;
    int outfd;            /* OUT, opened as a directory */
    json_t *exp;          /* the done export (owned) */
    int64_t id;
    char version[TLY_SHA256_HEX_LEN + 1];
    char artifact_sha[TLY_SHA256_HEX_LEN + 1]; /* "" when the export does not say */
    char artifact_type[128];
    uint64_t size;        /* artifact.size, 0 when unknown */
    char partial[64];     /* ".partial-<v12>.<ext>", inside OUT */
    /* one download */
    FILE *f;
    uint64_t offset;      /* bytes already in the partial file when the request went out */
    int resumed;          /* the server answered 206 */
    char resp_type[160];  /* Content-Type of the download */
    char why[256];        /* why on_headers stopped the transfer */
    tc_progress prog;
    int bad;              /* verification failures reported */
} pull;

/* ---- small helpers ------------------------------------------------------------------ */

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int known_format(const char *f)
{
    for (int i = 0; formats[i]; i++)
        if (strcmp(formats[i], f) == 0)
            return 1;
    return 0;
}

/* --split "train=0.8,val=0.1,test=0.1,seed=7" as {"train":0.8,...,"seed":7}; NULL
 * after writing why into why. */
static json_t *parse_split(const char *s, char *why, size_t whysz)
{
    json_t *o = json_object();
    char *copy = strdup(s);
    double sum = 0;
    int fractions = 0;
    if (!o || !copy) {
        snprintf(why, whysz, "out of memory");
        goto fail;
    }
    char *save = NULL;
    for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            snprintf(why, whysz, "--split: '%s' is not KEY=VALUE", kv);
            goto fail;
        }
        *eq = '\0';
        const char *key = kv, *val = eq + 1;
        char *end;
        if (json_object_get(o, key)) {
            snprintf(why, whysz, "--split: '%s' given twice", key);
            goto fail;
        }
        if (strcmp(key, "seed") == 0) {
            errno = 0;
            long long seed = strtoll(val, &end, 10);
            if (!*val || *end || errno || seed < 0) {
                snprintf(why, whysz, "--split: seed must be a non-negative integer, not '%s'", val);
                goto fail;
            }
            json_object_set_new(o, key, json_integer(seed));
        } else if (strcmp(key, "train") == 0 || strcmp(key, "val") == 0 ||
                   strcmp(key, "test") == 0) {
            double v = strtod(val, &end);
            if (!*val || *end || !isfinite(v) || v < 0 || v > 1) {
                snprintf(why, whysz, "--split: %s must be a fraction from 0 to 1, not '%s'", key,
                         val);
                goto fail;
            }
            json_object_set_new(o, key, json_real(v));
            sum += v;
            fractions++;
        } else {
            snprintf(why, whysz, "--split: unknown key '%s' (train, val, test, seed)", key);
            goto fail;
        }
    }
    if (!fractions || fabs(sum - 1.0) > 1e-6) {
        snprintf(why, whysz,
                 "--split: the train/val/test fractions must add up to 1 (they add up to %g)", sum);
        goto fail;
    }
    free(copy);
    return o;
fail:
    free(copy);
    json_decref(o);
    return NULL;
}

/* The export's "error" (a string or {"code","message"}) as text. */
static const char *export_error(const json_t *e)
{
    const json_t *x = json_object_get(e, "error");
    if (json_is_string(x))
        return json_string_value(x);
    const char *m = tc_jstr(x, "message");
    return *m ? m : "no reason given";
}

/* File name extension of the artifact, from its content type. */
static const char *artifact_ext(const char *type)
{
    if (strstr(type, "tar"))
        return "tar";
    if (strstr(type, "ndjson") || strstr(type, "jsonl") || strstr(type, "json-seq"))
        return "jsonl";
    if (strstr(type, "json"))
        return "json";
    if (strstr(type, "csv"))
        return "csv";
    if (strstr(type, "xml"))
        return "xml";
    if (strstr(type, "text/plain"))
        return "txt";
    return "bin";
}

/* ---- paths inside OUT ----------------------------------------------------------------- */

/* Splits a relative path into its components (in buf); "" and "." components are
 * dropped. -1 for an absolute path, a ".." component, nothing left, or too deep. */
static int split_path(const char *rel, char *buf, size_t bufsz, char **comps)
{
    size_t len = strlen(rel);
    if (len == 0 || rel[0] == '/' || len >= bufsz)
        return -1;
    memcpy(buf, rel, len + 1);
    int n = 0;
    char *save = NULL;
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0 || n == MAX_DEPTH)
            return -1;
        comps[n++] = c;
    }
    return n > 0 ? n : -1;
}

/* The directory that holds rel's last component, below dirfd: every level opened
 * with O_NOFOLLOW (created first when create). Its fd, with *last pointing at the
 * last component inside buf; -1 with errno (EINVAL for an unsafe path). */
static int open_parent(int dirfd, const char *rel, int create, char *buf, size_t bufsz,
                       const char **last)
{
    char *comps[MAX_DEPTH];
    int n = split_path(rel, buf, bufsz, comps);
    if (n < 0) {
        errno = EINVAL;
        return -1;
    }
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (int i = 0; fd >= 0 && i < n - 1; i++) {
        if (create && mkdirat(fd, comps[i], 0755) < 0 && errno != EEXIST) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        int next = openat(fd, comps[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        errno = e;
        fd = next;
    }
    *last = comps[n - 1];
    return fd;
}

/* Opens OUT/rel for reading without following a symlink; -1 with errno. */
static int open_read(int dirfd, const char *rel)
{
    char buf[4096];
    const char *last;
    int pfd = open_parent(dirfd, rel, 0, buf, sizeof buf, &last);
    if (pfd < 0)
        return -1;
    int fd = openat(pfd, last, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(pfd);
    errno = e;
    return fd;
}

/* Creates OUT/rel afresh (missing directories made; an existing file or link is
 * unlinked first, never written through); -1 with errno. */
static int create_file(int dirfd, const char *rel)
{
    char buf[4096];
    const char *last;
    int pfd = open_parent(dirfd, rel, 1, buf, sizeof buf, &last);
    if (pfd < 0)
        return -1;
    if (unlinkat(pfd, last, 0) < 0 && errno != ENOENT) {
        int e = errno;
        close(pfd);
        errno = e;
        return -1;
    }
    int fd = openat(pfd, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int e = errno;
    close(pfd);
    errno = e;
    return fd;
}

/* SHA-256 and size of what fd reads from its current offset. 0 or -1 (errno). */
static int hash_fd(int fd, char hex[TLY_SHA256_HEX_LEN + 1], uint64_t *size)
{
    tly_sha256 *h = tly_sha256_new();
    if (!h) {
        errno = ENOMEM;
        return -1;
    }
    static char buf[1 << 16];
    uint64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            tly_sha256_free(h);
            errno = e;
            return -1;
        }
        if (n == 0)
            break;
        tly_sha256_update(h, buf, (size_t)n);
        total += (uint64_t)n;
    }
    tly_sha256_finish(h, hex);
    *size = total;
    return 0;
}

/* ---- the export ------------------------------------------------------------------------ */

static int get_export(pull *p, int64_t id, json_t **out, long *status, tly_error *err)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/exports/%lld", (long long)id);
    tc_resp r;
    tc_resp_init(&r);
    int rc = tc_http_json(p->ctx->http, "GET", path, NULL, &r, err);
    if (status)
        *status = r.status;
    if (rc == 0 && !json_is_object(r.json))
        rc = tly_fail(err, TLY_E_IO, "bad_response", "GET %s: the reply is not a JSON object",
                      path);
    if (rc == 0)
        *out = json_incref(r.json);
    tc_resp_free(&r);
    return rc;
}

/* The export must belong to the project and have the format asked for. */
static int check_export(const pull *p, const json_t *e, tly_error *err)
{
    long long id = (long long)tc_jint(e, "id"), owner = (long long)tc_jint(e, "project_id");
    if (owner != p->project)
        return tly_fail(err, TLY_E_INVALID, "wrong_project",
                        "export %lld belongs to project %lld, not to project %lld", id, owner,
                        (long long)p->project);
    if (strcmp(tc_jstr(e, "format"), p->format) != 0)
        return tly_fail(err, TLY_E_INVALID, "wrong_format",
                        "export %lld is in format %s, not %s", id, tc_jstr(e, "format"), p->format);
    return 0;
}

/* The project's export of our format whose version starts with prefix (a done one
 * if there is any); its id, or -1 with err. */
static int64_t find_by_version(pull *p, const char *prefix, tly_error *err)
{
    char cursor[128] = "";
    int64_t found = -1;
    int found_done = 0;
    for (;;) {
        char *esc = cursor[0] ? tc_http_escape(p->ctx->http, cursor) : NULL;
        char path[256];
        snprintf(path, sizeof path, "/v1/projects/%lld/exports?limit=%d%s%s",
                 (long long)p->project, PAGE, esc ? "&cursor=" : "", esc ? esc : "");
        free(esc);
        tc_resp r;
        tc_resp_init(&r);
        if (tc_http_json(p->ctx->http, "GET", path, NULL, &r, err) < 0) {
            tc_resp_free(&r);
            return -1;
        }
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(r.json, "items"), i, e) {
            if (strncmp(tc_jstr(e, "sha256"), prefix, strlen(prefix)) != 0 ||
                strcmp(tc_jstr(e, "format"), p->format) != 0)
                continue;
            int done = strcmp(tc_jstr(e, "state"), "done") == 0;
            if (found < 0 || (done && !found_done)) {
                found = tc_jint(e, "id");
                found_done = done;
            }
        }
        int more = json_array_size(json_object_get(r.json, "items")) > 0 &&
                   tc_next_cursor(r.json, cursor, cursor, sizeof cursor);
        tc_resp_free(&r);
        if (!more)
            break;
    }
    if (found < 0)
        return tly_fail(err, TLY_E_NOT_FOUND, "version_not_found",
                        "project %lld has no %s export whose version starts with %s",
                        (long long)p->project, p->format, prefix);
    return found;
}

/* --version V: an export id, else a version prefix (6 to 64 hex digits). */
static int64_t resolve_version(pull *p, const char *v, tly_error *err)
{
    size_t len = strlen(v), hex = 0;
    while (hex < len && isxdigit((unsigned char)v[hex]))
        hex++;
    int64_t id = tc_parse_id(v);
    int prefix_ok = hex == len && len >= 6 && len <= TLY_SHA256_HEX_LEN;
    if (id > 0) {
        json_t *e = NULL;
        long status = 0;
        if (get_export(p, id, &e, &status, err) == 0) {
            json_decref(e);
            return id;
        }
        if (status != 404 || !prefix_ok)
            return -1;
    } else if (!prefix_ok) {
        return tly_fail(err, TLY_E_INVALID, "invalid_version",
                        "--version takes an export id or the start of a version's SHA-256, "
                        "not '%s'", v);
    }
    char lower[TLY_SHA256_HEX_LEN + 1];
    for (size_t i = 0; i <= len; i++)
        lower[i] = (char)tolower((unsigned char)v[i]);
    int64_t found = find_by_version(p, lower, err);
    if (found < 0 && id > 0 && strcmp(err->code, "version_not_found") == 0)
        tly_fail(err, TLY_E_NOT_FOUND, "export_not_found",
                 "there is no export %lld, and project %lld has no %s export whose version "
                 "starts with %s", (long long)id, (long long)p->project, p->format, lower);
    return found;
}

static int create_export(pull *p, json_t *split, int no_media, const char *min_conf,
                         tly_error *err)
{
    json_t *body = json_pack("{s:s}", "format", p->format);
    if (!body)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    if (split)
        json_object_set(body, "split", split);
    if (no_media)
        json_object_set_new(body, "media", json_false());
    if (min_conf)
        json_object_set_new(body, "filters",
                            json_pack("{s:f}", "min_confidence", strtod(min_conf, NULL)));
    char path[96];
    snprintf(path, sizeof path, "/v1/projects/%lld/exports", (long long)p->project);
    tc_resp r;
    tc_resp_init(&r);
    int rc = tc_http_json(p->ctx->http, "POST", path, body, &r, err);
    json_decref(body);
    if (rc == 0 && (p->id = tc_jint(r.json, "id")) <= 0)
        rc = tly_fail(err, TLY_E_IO, "bad_response", "POST %s: the new export has no id", path);
    if (rc == 0)
        fprintf(stderr, "created export %lld of project %lld (%s)\n", (long long)p->id,
                (long long)p->project, p->format);
    tc_resp_free(&r);
    return rc;
}

/* Polls the export until it is done (p->exp set) or failed. */
static int wait_export(pull *p, tly_error *err)
{
    long delay = 100;
    int waiting = 0;
    tc_progress prog;
    for (;;) {
        json_t *e = NULL;
        if (get_export(p, p->id, &e, NULL, err) < 0) {
            if (waiting)
                tc_progress_finish(&prog);
            return -1;
        }
        if (check_export(p, e, err) < 0) {
            json_decref(e);
            return -1;
        }
        const char *state = tc_jstr(e, "state");
        const json_t *pr = json_object_get(e, "progress");
        uint64_t done = (uint64_t)tc_jint(pr, "done"), total = (uint64_t)tc_jint(pr, "total");
        if (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0) {
            if (waiting) {
                if (strcmp(state, "done") == 0)
                    tc_progress_set(&prog, total ? total : done, total);
                tc_progress_finish(&prog);
            }
            if (strcmp(state, "failed") == 0) {
                int rc = tly_fail(err, TLY_E_IO, "export_failed", "export %lld failed: %s",
                                  (long long)p->id, export_error(e));
                json_decref(e);
                return rc;
            }
            p->exp = e;
            return 0;
        }
        if (!waiting) {
            fprintf(stderr, "export %lld is %s; waiting for it\n", (long long)p->id, state);
            tc_progress_init_count(&prog, total);
            waiting = 1;
        }
        tc_progress_set(&prog, done, total);
        json_decref(e);
        sleep_ms(delay);
        delay = delay * 3 / 2 > 1000 ? 1000 : delay * 3 / 2;
    }
}

/* Reads what the done export says about its version and artifact. */
static int take_export(pull *p, tly_error *err)
{
    const char *v = tc_jstr(p->exp, "sha256");
    if (!tly_is_sha256_hex(v))
        return tly_fail(err, TLY_E_IO, "bad_response",
                        "export %lld is done but has no version (sha256)", (long long)p->id);
    snprintf(p->version, sizeof p->version, "%s", v);
    const json_t *a = json_object_get(p->exp, "artifact");
    const char *as = tc_jstr(a, "sha256");
    snprintf(p->artifact_sha, sizeof p->artifact_sha, "%s", tly_is_sha256_hex(as) ? as : "");
    snprintf(p->artifact_type, sizeof p->artifact_type, "%s", tc_jstr(a, "content_type"));
    p->size = tc_jint(a, "size") > 0 ? (uint64_t)tc_jint(a, "size") : 0;
    snprintf(p->partial, sizeof p->partial, ".partial-%.12s.%s", p->version,
             p->artifact_type[0] ? artifact_ext(p->artifact_type) : "part");
    return 0;
}

/* ---- the download ------------------------------------------------------------------------ */

/* The response's headers are in: check the ETag and what a resume got back. */
static int on_headers(void *arg, long status, const char *etag, const char *content_range,
                      const char *content_type)
{
    pull *p = arg;
    snprintf(p->resp_type, sizeof p->resp_type, "%s", content_type);
    if (status != 200 && status != 206)
        return 0; /* an error reply: its body goes to the response, not the file */
    if (*etag) {
        const char *t = strncmp(etag, "W/", 2) == 0 ? etag + 2 : etag;
        size_t n = strlen(t);
        if (n >= 2 && t[0] == '"' && t[n - 1] == '"') {
            t++;
            n -= 2;
        }
        if (n != TLY_SHA256_HEX_LEN || strncmp(t, p->version, n) != 0) {
            snprintf(p->why, sizeof p->why, "the server sends %s, not version %s", etag,
                     p->version);
            return -1;
        }
    }
    if (status == 206) {
        unsigned long long first = 0, end = 0;
        if (p->offset == 0 || sscanf(content_range, "bytes %llu-%llu/", &first, &end) != 2 ||
            first != p->offset) {
            snprintf(p->why, sizeof p->why,
                     "the server resumed at '%s', not at byte %llu", content_range,
                     (unsigned long long)p->offset);
            return -1;
        }
        p->resumed = 1;
        tc_progress_note(&p->prog, "resumed at byte %llu of %llu",
                         (unsigned long long)p->offset, (unsigned long long)p->size);
    } else if (p->offset > 0) {
        /* a 200 to a Range with If-Range: the whole file comes again */
        if (fflush(p->f) != 0 || ftruncate(fileno(p->f), 0) < 0) {
            snprintf(p->why, sizeof p->why, "cannot truncate %s/%s: %s", p->out, p->partial,
                     strerror(errno));
            return -1;
        }
        tc_progress_note(&p->prog, "the server sends the whole file again; starting over");
        p->offset = 0;
        tc_progress_init_bytes(&p->prog, 0, p->size);
    }
    return 0;
}

static void on_progress(void *arg, uint64_t now, uint64_t total)
{
    pull *p = arg;
    tc_progress_set(&p->prog, now, total);
}

/* One GET of the artifact into the partial file, from p->offset on. On a 416 (the
 * partial file does not fit the artifact) *retry is set. */
static int fetch_artifact(pull *p, int *retry, tly_error *err)
{
    int fd = openat(p->outfd, p->partial,
                    O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 || !(p->f = fdopen(fd, "ab"))) {
        if (fd >= 0)
            close(fd);
        return tly_fail(err, TLY_E_IO, "local_write", "cannot write %s/%s: %s", p->out,
                        p->partial, strerror(errno));
    }
    char range[64], if_range[TLY_SHA256_HEX_LEN + 16];
    snprintf(range, sizeof range, "Range: bytes=%llu-", (unsigned long long)p->offset);
    snprintf(if_range, sizeof if_range, "If-Range: \"%s\"", p->version);
    const char *headers[] = { range, if_range, NULL };
    tc_download_opts o = { p->offset ? headers : NULL, on_headers, on_progress, p };
    char path[256];
    const char *url = tc_jstr(p->exp, "download_url");
    if (strncmp(url, "/v1/", 4) == 0 && strlen(url) < sizeof path)
        snprintf(path, sizeof path, "%s", url);
    else
        snprintf(path, sizeof path, "/v1/exports/%lld/download", (long long)p->id);

    if (p->offset)
        fprintf(stderr, "resuming the download of %s/%s (%llu bytes there)\n", p->out,
                p->partial, (unsigned long long)p->offset);
    p->resumed = 0;
    p->why[0] = '\0';
    p->resp_type[0] = '\0';
    tc_progress_init_bytes(&p->prog, p->offset, p->size);
    tc_resp r;
    tc_resp_init(&r);
    uint64_t got = 0;
    int rc = tc_http_download_ex(p->ctx->http, path, p->f, p->size ? p->size : NO_LIMIT, &o, &r,
                                 &got, err);
    tc_progress_finish(&p->prog);
    if (fclose(p->f) != 0 && rc == 0)
        rc = tly_fail(err, TLY_E_IO, "local_write", "writing %s/%s: %s", p->out, p->partial,
                      strerror(errno));
    p->f = NULL;
    struct stat st;
    if (rc < 0 && fstatat(p->outfd, p->partial, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_size == 0)
        unlinkat(p->outfd, p->partial, 0); /* nothing came: leave no empty partial file */
    if (rc < 0 && r.status == 416) {
        *retry = 1;
    } else if (rc < 0 && strcmp(err->code, "aborted") == 0) {
        tly_fail(err, TLY_E_IO, "download_refused", "downloading export %lld: %s",
                 (long long)p->id, p->why);
    } else if (rc < 0 && r.status == 0 && strcmp(err->code, "local_write") != 0) {
        char cause[sizeof err->message];
        snprintf(cause, sizeof cause, "%s", err->message);
        tly_fail(err, TLY_E_IO, "download_interrupted",
                 "the download stopped at byte %llu (pull again with --version %lld --out %s "
                 "to resume): %s",
                 (unsigned long long)(p->offset + got), (long long)p->id, p->out, cause);
    }
    tc_resp_free(&r);
    return rc;
}

/* Size and SHA-256 of the partial file against the artifact's. 0 matches, 1 does not
 * (why in err), -1 cannot read it. */
static int check_artifact(pull *p, tly_error *err)
{
    int fd = openat(p->outfd, p->partial, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    char hex[TLY_SHA256_HEX_LEN + 1];
    uint64_t size = 0;
    if (fd < 0 || hash_fd(fd, hex, &size) < 0) {
        int rc = tly_fail(err, TLY_E_IO, "local_read", "reading %s/%s: %s", p->out, p->partial,
                          strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    close(fd);
    if (p->size && size != p->size) {
        tly_fail(err, TLY_E_IO, "artifact_mismatch",
                 "%s/%s: %llu bytes, but export %lld's artifact has %llu", p->out, p->partial,
                 (unsigned long long)size, (long long)p->id, (unsigned long long)p->size);
        return 1;
    }
    if (p->artifact_sha[0] && strcmp(hex, p->artifact_sha) != 0) {
        tly_fail(err, TLY_E_IO, "artifact_mismatch",
                 "%s/%s: SHA-256 %s, but export %lld's artifact has %s", p->out, p->partial, hex,
                 (long long)p->id, p->artifact_sha);
        return 1;
    }
    if (!p->size)
        p->size = size;
    return 0;
}

/* The artifact, complete and checked, in the partial file. */
static int download(pull *p, tly_error *err)
{
    for (int attempt = 0;; attempt++) {
        struct stat st;
        p->offset = 0;
        if (fstatat(p->outfd, p->partial, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (!S_ISREG(st.st_mode))
                return tly_fail(err, TLY_E_IO, "local_write", "%s/%s is not a regular file",
                                p->out, p->partial);
            p->offset = (uint64_t)st.st_size;
            if (p->size && p->offset > p->size) {
                unlinkat(p->outfd, p->partial, 0);
                p->offset = 0;
            }
        }
        int had_partial = p->offset > 0, retry = 0;
        if (p->size && p->offset == p->size) {
            fprintf(stderr, "%s/%s is complete already\n", p->out, p->partial);
        } else if (fetch_artifact(p, &retry, err) < 0) {
            if (!retry || attempt > 0)
                return -1;
            fprintf(stderr, "the server cannot resume at byte %llu; starting over\n",
                    (unsigned long long)p->offset);
            unlinkat(p->outfd, p->partial, 0);
            continue;
        }
        int rc = check_artifact(p, err);
        if (rc <= 0)
            return rc;
        unlinkat(p->outfd, p->partial, 0); /* bad bytes: never resume from them */
        if (!had_partial || attempt > 0)
            return -1;
        fprintf(stderr, "tally: %s\n"
                        "the resumed file does not match; downloading it again from the start\n",
                err->message);
    }
}

/* ---- unpacking ----------------------------------------------------------------------------- */

static int is_tar(pull *p)
{
    const char *type = p->artifact_type[0] ? p->artifact_type : p->resp_type;
    if (*type)
        return strstr(type, "tar") != NULL;
    /* no content type at all: look for the ustar magic of the first header */
    char block[512];
    int fd = openat(p->outfd, p->partial, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n = fd >= 0 ? pread(fd, block, sizeof block, 0) : -1;
    if (fd >= 0)
        close(fd);
    return n == (ssize_t)sizeof block && memcmp(block + 257, "ustar", 5) == 0;
}

/* One pass over the tar: with check_only, only the entries' names and types are
 * looked at (so an unsafe archive writes nothing); else they are written below OUT. */
static int unpack_tar(pull *p, int check_only, tly_error *err)
{
    int fd = openat(p->outfd, p->partial, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return tly_fail(err, TLY_E_IO, "local_read", "reading %s/%s: %s", p->out, p->partial,
                        strerror(errno));
    struct archive *a = archive_read_new();
    if (!a) {
        close(fd);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    archive_read_support_format_tar(a);
    int rc = -1;
    if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
        tly_fail(err, TLY_E_IO, "bad_archive", "%s/%s: %s", p->out, p->partial,
                 archive_error_string(a));
        goto out;
    }
    static char buf[1 << 16];
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            tly_fail(err, TLY_E_IO, "bad_archive", "%s/%s: %s", p->out, p->partial,
                     archive_error_string(a));
            goto out;
        }
        const char *name = archive_entry_pathname(e);
        char tmp[4096];
        char *comps[MAX_DEPTH];
        if (!name || split_path(name, tmp, sizeof tmp, comps) < 0) {
            tly_fail(err, TLY_E_IO, "unsafe_archive",
                     "the archive holds the path '%s' (absolute, with '..' or empty): refused",
                     name ? name : "");
            goto out;
        }
        mode_t type = archive_entry_filetype(e);
        if (archive_entry_hardlink(e) || archive_entry_symlink(e) ||
            (type != AE_IFREG && type != AE_IFDIR)) {
            tly_fail(err, TLY_E_IO, "unsafe_archive",
                     "the archive entry '%s' is not a regular file or directory: refused", name);
            goto out;
        }
        if (check_only)
            continue; /* the next header skips the data */
        if (type == AE_IFDIR) {
            const char *last;
            int pfd = open_parent(p->outfd, name, 1, tmp, sizeof tmp, &last);
            struct stat st;
            if (pfd < 0 || (mkdirat(pfd, last, 0755) < 0 && errno != EEXIST) ||
                fstatat(pfd, last, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode)) {
                tly_fail(err, TLY_E_IO, "local_write", "cannot make the directory %s/%s: %s",
                         p->out, name, errno ? strerror(errno) : "something else is there");
                if (pfd >= 0)
                    close(pfd);
                goto out;
            }
            close(pfd);
            continue;
        }
        int ofd = create_file(p->outfd, name);
        if (ofd < 0) {
            tly_fail(err, TLY_E_IO, "local_write", "cannot create %s/%s: %s", p->out, name,
                     errno == ENOTDIR || errno == ELOOP
                         ? "its directory in the output is a symbolic link or a file (refused)"
                         : strerror(errno));
            goto out;
        }
        la_ssize_t n;
        int wfail = 0;
        while ((n = archive_read_data(a, buf, sizeof buf)) > 0)
            if (tly_write_all(ofd, buf, (size_t)n) < 0) {
                wfail = 1;
                break;
            }
        int cfail = close(ofd) < 0;
        if (n < 0) {
            tly_fail(err, TLY_E_IO, "bad_archive", "%s/%s: %s: %s", p->out, p->partial, name,
                     archive_error_string(a));
            goto out;
        }
        if (wfail || cfail) {
            tly_fail(err, TLY_E_IO, "local_write", "writing %s/%s: %s", p->out, name,
                     strerror(errno));
            goto out;
        }
    }
    rc = 0;
out:
    archive_read_free(a); /* closes nothing: the fd is ours */
    close(fd);
    return rc;
}

/* A single annotation file: GET the manifest (one line), move the artifact to the
 * path it names and save the manifest as OUT/manifest.jsonl. */
static int place_single(pull *p, tly_error *err)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/exports/%lld/manifest", (long long)p->id);
    tc_resp r;
    tc_resp_init(&r);
    json_t *line = NULL;
    int rc = -1;
    if (tc_http_json(p->ctx->http, "GET", path, NULL, &r, err) < 0)
        goto out;
    char hex[TLY_SHA256_HEX_LEN + 1];
    tly_sha256_hex(r.body.data ? r.body.data : "", r.body.len, hex);
    if (strcmp(hex, p->version) != 0) {
        tly_fail(err, TLY_E_IO, "manifest_mismatch",
                 "GET %s: the manifest's SHA-256 is %s, not the version %s", path, hex, p->version);
        goto out;
    }
    const char *text = r.body.data ? r.body.data : "";
    const char *nl = strchr(text, '\n');
    size_t first_len = nl ? (size_t)(nl - text) : strlen(text);
    if (first_len == 0 || (nl && nl[1] != '\0')) {
        tly_fail(err, TLY_E_IO, "manifest_mismatch",
                 "the download is a single file, but the manifest does not list exactly one");
        goto out;
    }
    line = json_loadb(text, first_len, 0, NULL);
    const char *name = tc_jstr(line, "path");
    if (!*name || (p->artifact_sha[0] && strcmp(tc_jstr(line, "sha256"), p->artifact_sha) != 0)) {
        tly_fail(err, TLY_E_IO, "manifest_mismatch",
                 "the manifest's %s (SHA-256 %s) is not the downloaded file (SHA-256 %s)",
                 *name ? name : "line", tc_jstr(line, "sha256"), p->artifact_sha);
        goto out;
    }
    char buf[4096];
    const char *last;
    int pfd = open_parent(p->outfd, name, 1, buf, sizeof buf, &last);
    if (pfd < 0 || renameat(p->outfd, p->partial, pfd, last) < 0) {
        tly_fail(err, TLY_E_IO, "local_write", "cannot move the download to %s/%s: %s", p->out,
                 name, errno == EINVAL ? "unsafe path" : strerror(errno));
        if (pfd >= 0)
            close(pfd);
        goto out;
    }
    close(pfd);
    int mfd = create_file(p->outfd, MANIFEST);
    int wrc = mfd >= 0 ? tly_write_all(mfd, text, r.body.len) : -1;
    if (mfd < 0 || wrc < 0 || close(mfd) < 0) {
        tly_fail(err, TLY_E_IO, "local_write", "writing %s/%s: %s", p->out, MANIFEST,
                 strerror(errno));
        goto out;
    }
    rc = 0;
out:
    json_decref(line);
    tc_resp_free(&r);
    return rc;
}

/* ---- verification -------------------------------------------------------------------------- */

static void mismatch(pull *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mismatch(pull *p, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tally: mismatch: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    p->bad++;
}

/* One manifest line against the file in OUT. */
static void verify_file(pull *p, const char *name, const char *sha, uint64_t size)
{
    int fd = open_read(p->outfd, name);
    if (fd < 0) {
        mismatch(p, "%s/%s: %s", p->out, name,
                 errno == ENOENT ? "missing"
                 : errno == ELOOP ? "is a symbolic link"
                 : errno == EINVAL ? "unsafe path in the manifest"
                                   : strerror(errno));
        return;
    }
    struct stat st;
    char hex[TLY_SHA256_HEX_LEN + 1];
    uint64_t got = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        mismatch(p, "%s/%s: not a regular file", p->out, name);
    } else if (hash_fd(fd, hex, &got) < 0) {
        mismatch(p, "%s/%s: %s", p->out, name, strerror(errno));
    } else if (got != size) {
        mismatch(p, "%s/%s: %llu bytes, the manifest says %llu", p->out, name,
                 (unsigned long long)got, (unsigned long long)size);
    } else if (strcmp(hex, sha) != 0) {
        mismatch(p, "%s/%s: SHA-256 %s, the manifest says %s", p->out, name, hex, sha);
    }
    close(fd);
}

/* OUT/manifest.jsonl against the version, then every file it lists. */
static int verify(pull *p, uint64_t *files, tly_error *err)
{
    *files = 0;
    int fd = open_read(p->outfd, MANIFEST);
    if (fd < 0)
        return tly_fail(err, TLY_E_IO, "manifest_missing", "%s/%s: %s", p->out, MANIFEST,
                        strerror(errno));
    char hex[TLY_SHA256_HEX_LEN + 1];
    uint64_t size;
    if (hash_fd(fd, hex, &size) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        int rc = tly_fail(err, TLY_E_IO, "local_read", "reading %s/%s: %s", p->out, MANIFEST,
                          strerror(errno));
        close(fd);
        return rc;
    }
    if (strcmp(hex, p->version) != 0)
        mismatch(p, "%s/%s: SHA-256 %s, not the version %s", p->out, MANIFEST, hex, p->version);
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        json_t *m = json_loadb(line, (size_t)n, 0, NULL);
        const char *name = tc_jstr(m, "path"), *sha = tc_jstr(m, "sha256");
        json_t *sz = json_object_get(m, "size");
        if (!*name || !tly_is_sha256_hex(sha) || !json_is_integer(sz) || json_integer_value(sz) < 0)
            mismatch(p, "%s/%s line %ld: not a {\"path\",\"sha256\",\"size\"} object", p->out,
                     MANIFEST, lineno);
        else
            verify_file(p, name, sha, (uint64_t)json_integer_value(sz));
        (*files)++;
        json_decref(m);
    }
    free(line);
    int rerr = ferror(f);
    fclose(f);
    if (rerr)
        return tly_fail(err, TLY_E_IO, "local_read", "reading %s/%s", p->out, MANIFEST);
    return 0;
}

/* ---- the command ----------------------------------------------------------------------------- */

int cmd_pull(tc_ctx *ctx, int argc, char **argv)
{
    const char *format = NULL, *version = NULL, *split_s = NULL, *min_conf = NULL, *out = NULL;
    int no_media = 0;
    const tc_opt opts[] = {
        { "format", 1, &format, NULL },    { "version", 1, &version, NULL },
        { "split", 1, &split_s, NULL },    { "no-media", 0, NULL, &no_media },
        { "min-confidence", 1, &min_conf, NULL }, { "out", 1, &out, NULL },
        { NULL, 0, NULL, NULL },
    };
    int npos;
    TC_PARSE(ctx, argc, argv, opts, &pull_help, argv, &npos);
    int64_t project = npos == 1 ? tc_parse_id(argv[0]) : -1;
    if (project < 0)
        return tc_usage_error(&pull_help, "expected one PROJECT_ID (a positive integer)");
    if (!format)
        return tc_usage_error(&pull_help, "--format is required");
    if (!known_format(format))
        return tc_usage_error(&pull_help,
                              "unknown format '%s' (coco, voc, yolo, csv, imagenet, nemo, rttm, "
                              "segments_csv, jsonl, labelstudio)", format);
    if (version && (split_s || no_media || min_conf))
        return tc_usage_error(&pull_help, "--split, --no-media and --min-confidence shape a new "
                                          "export; --version reuses one as it is");
    if (min_conf) {
        char *end;
        double v = strtod(min_conf, &end);
        if (!*min_conf || *end || !isfinite(v) || v < 0 || v > 1)
            return tc_usage_error(&pull_help, "--min-confidence takes a number from 0 to 1, "
                                              "not '%s'", min_conf);
    }
    json_t *split = NULL;
    if (split_s) {
        char why[256];
        if (!(split = parse_split(split_s, why, sizeof why)))
            return tc_usage_error(&pull_help, "%s", why);
    }
    char out_default[128];
    if (!out) {
        snprintf(out_default, sizeof out_default, "tally-%lld-%s", (long long)project, format);
        out = out_default;
    }

    pull p;
    memset(&p, 0, sizeof p);
    p.ctx = ctx;
    p.project = project;
    p.format = format;
    p.out = out;
    p.outfd = -1;
    int rc = TC_EXIT_FAIL;
    tly_error err;
    if (tc_connect(ctx, 1, &err) < 0)
        goto report;
    tc_http_set_stall_timeout(ctx->http, 120);
    if (version) {
        if ((p.id = resolve_version(&p, version, &err)) < 0)
            goto report;
    } else if (create_export(&p, split, no_media, min_conf, &err) < 0) {
        goto report;
    }
    if (wait_export(&p, &err) < 0 || take_export(&p, &err) < 0)
        goto report;

    if (tly_mkdirs(out, 0755) < 0 ||
        (p.outfd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        tc_fail_local("cannot create the directory %s: %s", out, strerror(errno));
        goto out;
    }
    if (download(&p, &err) < 0)
        goto report;
    if (is_tar(&p)) {
        if (unpack_tar(&p, 1, &err) < 0 || unpack_tar(&p, 0, &err) < 0)
            goto report; /* the checked artifact stays: the next pull unpacks it again */
        unlinkat(p.outfd, p.partial, 0);
    } else if (place_single(&p, &err) < 0) {
        goto report;
    }
    uint64_t checked;
    if (verify(&p, &checked, &err) < 0)
        goto report;
    if (p.bad) {
        tc_fail_local("%d mismatch%s in %s: the pulled files of export %lld are not version %.12s",
                      p.bad, p.bad == 1 ? "" : "es", out, (long long)p.id, p.version);
        goto out;
    }
    printf("pulled export %lld of project %lld (%s)\n", (long long)p.id, (long long)project,
           format);
    printf("  version  %.12s\n", p.version);
    printf("  items    %lld\n", (long long)tc_jint(p.exp, "items"));
    printf("  files    %lld (%llu verified)\n", (long long)tc_jint(p.exp, "files"),
           (unsigned long long)checked);
    printf("  bytes    %lld\n", (long long)tc_jint(p.exp, "bytes"));
    printf("  out      %s\n", out);
    rc = fflush(stdout) == 0 ? TC_EXIT_OK
                             : tc_fail_local("writing the summary: %s", strerror(errno));
    goto out;
report:
    rc = tc_report(&err);
out:
    if (p.outfd >= 0)
        close(p.outfd);
    json_decref(p.exp);
    json_decref(split);
    return rc;
}
