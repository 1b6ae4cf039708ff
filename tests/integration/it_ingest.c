/* it_ingest.c -- integration tests of the `collect` step against a real tallyd:
 *
 *   - upload batches mixing good and bad files, in an image and an audio project:
 *     every file gets exactly one outcome and each count is checked exactly, with
 *     the per-file error codes (empty_file, unsupported_format, extension_mismatch,
 *     wrong_media, truncated, corrupt) and duplicates (same bytes, photo_copy.jpg);
 *   - upload edge cases: file_exists, invalid_name ('/', '..'), batch_closed,
 *     not_upload_batch, --max-file-size (413, also without Content-Length); 8
 *     concurrent uploads of one name (exactly one 201), a close while a body is
 *     streaming (the upload ends in 409 batch_closed);
 *   - server-side directory import: sub-directories, hidden files skipped, a symlink
 *     pointing out of the import root rejected (path_not_allowed), path traversal
 *     and paths outside the roots refused at creation (403 / 400); an empty
 *     directory (own server, since it used to crash it);
 *   - URL lists served by a libmicrohttpd file server inside this test process
 *     (404 -> fetch_failed, refused connection -> fetch_failed after retries);
 *   - manifests with gold answers and meta;
 *   - items: listing and paging, media metadata of every test file, /media with
 *     ETag / If-None-Match / Range, /thumbnail (JPEG, size from its SOF marker),
 *     /waveform, role checks; gold answers (PUT / DELETE);
 *   - ingest metrics, and no temp files left behind.
 *
 * One server (with --import-root) is shared by the group; the --max-file-size test
 * starts its own. Tests run in order and share `g`.
 */
#include "harness.h"

#include "core/fsutil.h"
#include "core/hash.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define BATCH_TIMEOUT_MS 120000

static struct {
    it_server srv;
    char *mgr, *worker, *consumer;
    char root[4096];     /* the import root */
    char outside[4096];  /* a directory outside every import root */
    struct MHD_Daemon *files; /* in-process HTTP file server */
    int files_port;
    unsigned long files_hits;
    int64_t img_project, img_batch;  /* the mixed image upload */
    int64_t audio_project;
} g;

static const char *TEMPLATE =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],"
    "\"required\":true}]}";
static const char *AUDIO_TEMPLATE =
    "{\"controls\":[{\"name\":\"text\",\"type\":\"transcription\"}]}";

/* ---- small helpers ----------------------------------------------------------------- */

static unsigned char *load_data(const char *name, size_t *len)
{
    unsigned char *b = it_load_test_data(name, len);
    assert_non_null(b);
    return b;
}

static void data_sha(const char *name, char hex[65])
{
    size_t len;
    unsigned char *b = load_data(name, &len);
    tly_sha256_hex(b, len, hex);
    free(b);
}

/* Copies tests/data/name to dir/rel (creating parent directories). */
static void put_data(const char *dir, const char *rel, const char *name)
{
    char to[4400], from[4096];
    snprintf(to, sizeof to, "%s/%s", dir, rel);
    char *slash = strrchr(to, '/');
    *slash = '\0';
    assert_int_equal(tly_mkdirs(to, 0700), 0);
    *slash = '/';
    int rc = it_copy_file(it_test_data(name, from, sizeof from), to);
    if (rc != 0)
        fprintf(stderr, "cannot copy %s to %s\n", from, to);
    assert_int_equal(rc, 0);
}

static void expect_counts(const json_t *b, int64_t total, int64_t accepted, int64_t dups,
                          int64_t rejected)
{
    if (it_json_int(b, "total") != total || it_json_int(b, "accepted") != accepted ||
        it_json_int(b, "duplicates") != dups || it_json_int(b, "rejected") != rejected) {
        char *t = json_dumps(b, JSON_COMPACT);
        fprintf(stderr, "batch: %s\nwant total %lld accepted %lld duplicates %lld rejected %lld\n", t,
                (long long)total, (long long)accepted, (long long)dups, (long long)rejected);
        free(t);
    }
    assert_string_equal(it_json_str(b, "state"), "done");
    assert_int_equal(it_json_int(b, "total"), total);
    assert_int_equal(it_json_int(b, "accepted"), accepted);
    assert_int_equal(it_json_int(b, "duplicates"), dups);
    assert_int_equal(it_json_int(b, "rejected"), rejected);
    assert_int_equal(it_json_int(b, "pending"), 0);
    assert_int_equal(accepted + dups + rejected, total);
}

/* errors: [{"file","code","message"}]; want: n pairs {file, code}. Each wanted file must
 * appear exactly once with its code, and nothing else. */
static void expect_errors(const json_t *errors, const char *const (*want)[2], size_t n)
{
    assert_true(json_is_array(errors));
    if (json_array_size(errors) != n) {
        char *t = json_dumps(errors, JSON_COMPACT);
        fprintf(stderr, "errors: %s (want %zu)\n", t, n);
        free(t);
    }
    assert_int_equal(json_array_size(errors), n);
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        size_t k;
        json_t *e;
        json_array_foreach(errors, k, e) {
            if (strcmp(it_json_str(e, "file"), want[i][0]) != 0)
                continue;
            found++;
            if (strcmp(it_json_str(e, "code"), want[i][1]) != 0)
                fprintf(stderr, "file %s: code %s (message '%s'), want %s\n", want[i][0],
                        it_json_str(e, "code"), it_json_str(e, "message"), want[i][1]);
            assert_string_equal(it_json_str(e, "code"), want[i][1]);
            assert_true(strlen(it_json_str(e, "message")) > 0);
        }
        if (found != 1)
            fprintf(stderr, "file %s appears %d times in the errors\n", want[i][0], found);
        assert_int_equal(found, 1);
    }
}

/* Every item of a project (paging with limit `page`), as a new array. */
static json_t *list_items(int64_t project, const char *state, int page)
{
    json_t *all = json_array();
    char cursor[64] = "";
    for (int guard = 0; guard < 10000; guard++) {
        it_response r;
        char q[256];
        snprintf(q, sizeof q, "/v1/projects/%lld/items?limit=%d%s%s%s%s", (long long)project, page,
                 state ? "&state=" : "", state ? state : "", cursor[0] ? "&cursor=" : "", cursor);
        assert_int_equal(it_request_json(&g.srv, "GET", q, g.mgr, NULL, &r), 0);
        IT_ASSERT_STATUS(r, 200);
        json_t *items = json_object_get(r.json, "items");
        assert_true(json_is_array(items));
        assert_true(json_array_size(items) <= (size_t)page);
        json_array_extend(all, items);
        json_t *next = json_object_get(r.json, "next_cursor");
        assert_true(json_is_null(next) || json_is_string(next));
        if (json_is_null(next)) {
            it_response_free(&r);
            return all;
        }
        assert_int_equal(json_array_size(items), page);
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        it_response_free(&r);
    }
    fail_msg("paging did not end");
    return NULL;
}

static int64_t create_project(const char *name, const char *media, const char *tmpl)
{
    int64_t p = it_create_project(&g.srv, g.mgr, name, media, tmpl);
    assert_true(p > 0);
    return p;
}

/* Creates a batch with the given source JSON (text); asserts 201, returns the id. */
static int64_t create_batch_src(int64_t project, const char *source_json, json_t **created)
{
    char *body = NULL;
    assert_true(asprintf(&body, "{\"name\":\"b\",\"source\":%s}", source_json) > 0);
    it_response r;
    assert_int_equal(it_requestf(&g.srv, "POST", g.mgr, body, &r, "/v1/projects/%lld/batches", (long long)project), 0);
    IT_ASSERT_STATUS(r, 201);
    int64_t id = it_json_int(r.json, "id");
    assert_true(id > 0);
    if (created)
        *created = json_incref(r.json);
    it_response_free(&r);
    free(body);
    return id;
}

/* POST a batch that must be refused with status/code. */
static void refuse_batch(int64_t project, const char *source_json, long status, const char *code)
{
    char *body = NULL;
    assert_true(asprintf(&body, "{\"name\":\"bad\",\"source\":%s}", source_json) > 0);
    it_response r;
    assert_int_equal(it_requestf(&g.srv, "POST", g.mgr, body, &r, "/v1/projects/%lld/batches", (long long)project), 0);
    if (r.status != status || (code && strcmp(it_err_code(&r), code) != 0))
        fprintf(stderr, "source %s: want %ld %s, got %ld %s\n", source_json, status, code ? code : "",
                r.status, r.body);
    assert_int_equal(r.status, status);
    if (code)
        assert_string_equal(it_err_code(&r), code);
    it_response_free(&r);
    free(body);
}

static json_t *wait_done(int64_t batch)
{
    json_t *b = it_wait_batch(&g.srv, g.mgr, batch, BATCH_TIMEOUT_MS);
    assert_non_null(b);
    return b;
}

/* Uploads tests/data/name as `as` into batch; checks the 201 body against the file. */
static void upload_data(int64_t batch, const char *name, const char *as)
{
    char path[4096];
    it_test_data(name, path, sizeof path);
    it_response r;
    assert_int_equal(it_upload_file(&g.srv, g.mgr, batch, as, path, &r), 0);
    IT_ASSERT_STATUS(r, 201);
    char sha[65];
    uint64_t size = 0;
    assert_int_equal(tly_sha256_file(path, sha, &size), 0);
    assert_true(it_json_int(r.json, "file_id") > 0);
    assert_string_equal(it_json_str(r.json, "name"), as);
    assert_int_equal(it_json_int(r.json, "size"), (int64_t)size);
    assert_string_equal(it_json_str(r.json, "sha256"), sha);
    it_response_free(&r);
}

/* ---- raw HTTP for what the harness does not expose (headers, path-as-is, chunked) -- */

typedef struct {
    long status;
    unsigned char *body;
    size_t len;
    char content_type[128], etag[128], content_range[128];
} raw_resp;

static size_t raw_body(char *data, size_t size, size_t nmemb, void *userp)
{
    raw_resp *o = userp;
    size_t n = size * nmemb;
    unsigned char *p = realloc(o->body, o->len + n + 1);
    if (!p)
        return 0;
    memcpy(p + o->len, data, n);
    o->len += n;
    p[o->len] = '\0';
    o->body = p;
    return n;
}

static size_t raw_header(char *data, size_t size, size_t nmemb, void *userp)
{
    raw_resp *o = userp;
    size_t n = size * nmemb;
    if (n > 13 && strncasecmp(data, "Content-Type:", 13) == 0)
        it_copy_header_value(o->content_type, sizeof o->content_type, data + 13, n - 13);
    else if (n > 5 && strncasecmp(data, "ETag:", 5) == 0)
        it_copy_header_value(o->etag, sizeof o->etag, data + 5, n - 5);
    else if (n > 14 && strncasecmp(data, "Content-Range:", 14) == 0)
        it_copy_header_value(o->content_range, sizeof o->content_range, data + 14, n - 14);
    return n;
}

typedef struct {
    const unsigned char *data;
    size_t len, off;
} read_src;

static size_t raw_read(char *dst, size_t size, size_t nmemb, void *userp)
{
    read_src *s = userp;
    size_t n = size * nmemb;
    if (n > 4096)
        n = 4096;
    if (n > s->len - s->off)
        n = s->len - s->off;
    memcpy(dst, s->data + s->off, n);
    s->off += n;
    return n;
}

/* One request. header1/header2 may be NULL. If chunked, the body (PUT) is sent with
 * Transfer-Encoding: chunked; otherwise with a Content-Length. */
static void raw_request(it_server *s, const char *method, const char *path, const char *token,
                        const char *header1, const char *header2, const void *body, size_t len,
                        int chunked, raw_resp *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[2048], auth[300];
    snprintf(url, sizeof url, "%s%s", s->base_url, path);
    struct curl_slist *h = NULL;
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    if (header1)
        h = curl_slist_append(h, header1);
    if (header2)
        h = curl_slist_append(h, header2);
    read_src src = {body, len, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, raw_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, raw_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (body) {
        h = curl_slist_append(h, "Content-Type: application/octet-stream");
        h = curl_slist_append(h, "Expect:");
        if (chunked)
            h = curl_slist_append(h, "Transfer-Encoding: chunked");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, raw_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &src);
        if (!chunked)
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
        if (strcmp(method, "PUT") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    else
        fprintf(stderr, "%s %s: %s\n", method, path, curl_easy_strerror(cc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

/* ---- the in-process HTTP file server (URL ingest) ---------------------------------- */

static enum MHD_Result serve_file(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    __atomic_add_fetch(&g.files_hits, 1, __ATOMIC_SEQ_CST);
    struct MHD_Response *resp = NULL;
    unsigned status = MHD_HTTP_NOT_FOUND;
    const char *name = url[0] == '/' ? url + 1 : url;
    if (strcmp(method, "GET") == 0 && tly_is_safe_filename(name)) {
        char path[4096];
        size_t len = 0;
        unsigned char *b = it_load_file(it_test_data(name, path, sizeof path), &len);
        if (b) {
            resp = MHD_create_response_from_buffer(len, b, MHD_RESPMEM_MUST_FREE);
            status = MHD_HTTP_OK;
        }
    }
    if (!resp)
        resp = MHD_create_response_from_buffer(9, (void *)"not found", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static int start_file_server(void)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g.files = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                               NULL, serve_file, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                               MHD_OPTION_END);
    if (!g.files)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(g.files, MHD_DAEMON_INFO_BIND_PORT);
    g.files_port = info ? info->port : 0;
    return g.files_port > 0 ? 0 : -1;
}

/* A loopback port nothing listens on (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* ---- JPEG SOF parsing for thumbnails --------------------------------------------- */

/* Width, height and components from the first SOF marker; 0 or -1. */
static int jpeg_dims(const unsigned char *b, size_t len, int *w, int *h, int *comps)
{
    if (len < 4 || b[0] != 0xFF || b[1] != 0xD8)
        return -1;
    size_t i = 2;
    while (i + 4 <= len) {
        if (b[i] != 0xFF)
            return -1;
        unsigned char m = b[i + 1];
        if (m == 0xFF) {
            i++;
            continue;
        }
        size_t seglen = ((size_t)b[i + 2] << 8) | b[i + 3];
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (i + 10 > len)
                return -1;
            *h = (b[i + 5] << 8) | b[i + 6];
            *w = (b[i + 7] << 8) | b[i + 8];
            *comps = b[i + 9];
            return 0;
        }
        i += 2 + seglen;
    }
    return -1;
}

/* ---- setup ------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(g.root, sizeof g.root, "%s/tally-it-root-XXXXXX", tmp);
    snprintf(g.outside, sizeof g.outside, "%s/tally-it-outside-XXXXXX", tmp);
    if (!mkdtemp(g.root) || !mkdtemp(g.outside)) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    /* The test file server listens on loopback, which URL ingest refuses by default
     * (it_url_guard.c tests that); this server may fetch from it. */
    const char *args[] = {"--import-root", g.root, "--url-allow-private", NULL};
    if (it_server_start_users(&g.srv, args, &g.mgr, &g.worker, &g.consumer) != 0)
        return -1;
    if (start_file_server() != 0) {
        fprintf(stderr, "cannot start the test file server\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = it_server_finish(&g.srv);
    if (g.files)
        MHD_stop_daemon(g.files);
    if (g.root[0])
        tly_remove_tree(g.root);
    if (g.outside[0])
        tly_remove_tree(g.outside);
    free(g.mgr);
    free(g.worker);
    free(g.consumer);
    return rc;
}

/* ---- uploads ----------------------------------------------------------------------- */

static const char *const GOOD_IMAGES[] = {
    "photo.jpg", "photo2.jpg", "gray.jpg", "progressive.jpg", "cmyk.jpg",
    "photo.png", "interlaced.png", "alpha.png", "palette.png", "deep.png",
};
#define N_GOOD_IMAGES (sizeof GOOD_IMAGES / sizeof *GOOD_IMAGES)

static const char *const BAD_IMAGES[][2] = {
    {"truncated.jpg", "truncated"},       {"corrupt.jpg", "corrupt"},
    {"truncated.png", "truncated"},       {"corrupt.png", "corrupt"},
    {"empty.jpg", "empty_file"},          {"text.wav", "unsupported_format"},
    {"png_named.jpg", "extension_mismatch"}, {"speech.wav", "wrong_media"},
    {"stereo.wav", "wrong_media"},
};
#define N_BAD_IMAGES (sizeof BAD_IMAGES / sizeof *BAD_IMAGES)

static void test_upload_mixed_images(void **state)
{
    (void)state;
    g.img_project = create_project("images", "image", TEMPLATE);
    json_t *created = NULL;
    g.img_batch = create_batch_src(g.img_project, "{\"kind\":\"upload\"}", &created);
    assert_string_equal(it_json_str(created, "kind"), "upload");
    assert_string_equal(it_json_str(created, "state"), "open");
    assert_int_equal(it_json_int(created, "project_id"), g.img_project);
    assert_string_equal(it_json_str(created, "name"), "b");
    assert_int_equal(it_json_int(created, "total"), 0);
    assert_int_equal(it_json_int(created, "pending"), 0);
    assert_int_equal(it_json_int(created, "accepted"), 0);
    assert_true(json_is_array(json_object_get(created, "errors")));
    assert_true(strlen(it_json_str(created, "created_at")) >= 20);
    json_decref(created);

    /* interleave good and bad files so one bad file cannot stop the rest */
    size_t total = 0;
    for (size_t i = 0; i < N_GOOD_IMAGES || i < N_BAD_IMAGES; i++) {
        if (i < N_GOOD_IMAGES) {
            upload_data(g.img_batch, GOOD_IMAGES[i], GOOD_IMAGES[i]);
            total++;
        }
        if (i < N_BAD_IMAGES) {
            upload_data(g.img_batch, BAD_IMAGES[i][0], BAD_IMAGES[i][0]);
            total++;
        }
    }
    upload_data(g.img_batch, "photo_copy.jpg", "photo_copy.jpg"); /* same bytes as photo.jpg */
    total++;

    /* still open: nothing is processed before close */
    it_response r;
    assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/batches/%lld", (long long)g.img_batch), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_string_equal(it_json_str(r.json, "state"), "open");
    assert_int_equal(it_json_int(r.json, "total"), (int64_t)total);
    it_response_free(&r);

    assert_int_equal(it_requestf(&g.srv, "POST", g.mgr, NULL, &r, "/v1/batches/%lld/close", (long long)g.img_batch), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(r.json, "id"), g.img_batch);
    const char *st = it_json_str(r.json, "state");
    assert_true(strcmp(st, "processing") == 0 || strcmp(st, "done") == 0);
    it_response_free(&r);

    json_t *b = wait_done(g.img_batch);
    expect_counts(b, (int64_t)total, (int64_t)N_GOOD_IMAGES, 1, (int64_t)N_BAD_IMAGES);
    expect_errors(json_object_get(b, "errors"), BAD_IMAGES, N_BAD_IMAGES);
    assert_true(strlen(it_json_str(b, "closed_at")) >= 20);
    json_decref(b);

    /* the paged error list says the same */
    json_t *errs = json_array();
    char cursor[64] = "";
    for (int pages = 0;; pages++) {
        assert_true(pages < 20);
        if (cursor[0])
            assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/batches/%lld/errors?limit=4&cursor=%s",
                                  (long long)g.img_batch, cursor),
                             0);
        else
            assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/batches/%lld/errors?limit=4",
                                  (long long)g.img_batch),
                             0);
        IT_ASSERT_STATUS(r, 200);
        json_t *items = json_object_get(r.json, "items");
        assert_true(json_array_size(items) <= 4);
        json_array_extend(errs, items);
        json_t *next = json_object_get(r.json, "next_cursor");
        if (!json_is_string(next)) {
            assert_true(json_is_null(next));
            it_response_free(&r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        it_response_free(&r);
    }
    expect_errors(errs, BAD_IMAGES, N_BAD_IMAGES);
    json_decref(errs);

    /* exactly the good files became items, once each */
    json_t *items = list_items(g.img_project, NULL, 1000);
    assert_int_equal(json_array_size(items), N_GOOD_IMAGES);
    for (size_t i = 0; i < N_GOOD_IMAGES; i++) {
        char sha[65];
        data_sha(GOOD_IMAGES[i], sha);
        json_t *it = it_json_find(items, "sha256", sha);
        if (!it)
            fprintf(stderr, "no item for %s\n", GOOD_IMAGES[i]);
        assert_non_null(it);
        const char *name = it_json_str(it, "name");
        if (strcmp(GOOD_IMAGES[i], "photo.jpg") == 0) /* or its copy, whichever came first */
            assert_true(strcmp(name, "photo.jpg") == 0 || strcmp(name, "photo_copy.jpg") == 0);
        else
            assert_string_equal(name, GOOD_IMAGES[i]);
        assert_int_equal(it_json_int(it, "batch_id"), g.img_batch);
        assert_string_equal(it_json_str(it, "state"), "new");
    }
    json_decref(items);

    /* stats */
    assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/projects/%lld/stats", (long long)g.img_project), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(r.json, "project_id"), g.img_project);
    assert_int_equal(it_json_int(r.json, "items_total"), (int64_t)N_GOOD_IMAGES);
    assert_int_equal(it_json_int(r.json, "gold"), 0);
    assert_int_equal(it_json_int(json_object_get(r.json, "items"), "new"), (int64_t)N_GOOD_IMAGES);
    it_response_free(&r);

    /* the project's batch list has it */
    assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/projects/%lld/batches", (long long)g.img_project), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    assert_int_equal(it_json_int(json_array_get(json_object_get(r.json, "items"), 0), "id"), g.img_batch);
    it_response_free(&r);
}

static void test_duplicate_across_batches(void **state)
{
    (void)state;
    /* a later batch with bytes the project already has: duplicates, no new items */
    int64_t b2 = create_batch_src(g.img_project, "{\"kind\":\"upload\"}", NULL);
    upload_data(b2, "photo_copy.jpg", "again.jpg");
    upload_data(b2, "gray.jpg", "gray-again.jpg");
    assert_int_equal(it_close_batch(&g.srv, g.mgr, b2), 200);
    json_t *b = wait_done(b2);
    expect_counts(b, 2, 0, 2, 0);
    assert_int_equal(json_array_size(json_object_get(b, "errors")), 0);
    json_decref(b);
    json_t *items = list_items(g.img_project, NULL, 1000);
    assert_int_equal(json_array_size(items), N_GOOD_IMAGES);
    assert_null(it_json_find(items, "name", "again.jpg"));
    json_decref(items);

    /* the same bytes in another project are a new item there */
    int64_t p2 = create_project("images-2", "image", TEMPLATE);
    int64_t b3 = create_batch_src(p2, "{\"kind\":\"upload\"}", NULL);
    upload_data(b3, "photo.jpg", "photo.jpg");
    assert_int_equal(it_close_batch(&g.srv, g.mgr, b3), 200);
    b = wait_done(b3);
    expect_counts(b, 1, 1, 0, 0);
    json_decref(b);
}

static const char *const GOOD_AUDIO[] = {"speech.wav", "speech.flac", "speech.ogg", "stereo.wav"};
static const char *const BAD_AUDIO[][2] = {
    {"truncated.wav", "truncated"}, {"truncated.flac", "truncated"}, {"text.wav", "unsupported_format"},
    {"photo.jpg", "wrong_media"},   {"photo.png", "wrong_media"},    {"empty.jpg", "empty_file"},
};

static void test_upload_mixed_audio(void **state)
{
    (void)state;
    g.audio_project = create_project("audio", "audio", AUDIO_TEMPLATE);
    int64_t batch = create_batch_src(g.audio_project, "{\"kind\":\"upload\"}", NULL);
    for (size_t i = 0; i < 6; i++) {
        if (i < 4)
            upload_data(batch, GOOD_AUDIO[i], GOOD_AUDIO[i]);
        upload_data(batch, BAD_AUDIO[i][0], BAD_AUDIO[i][0]);
    }
    assert_int_equal(it_close_batch(&g.srv, g.mgr, batch), 200);
    json_t *b = wait_done(batch);
    expect_counts(b, 10, 4, 0, 6);
    expect_errors(json_object_get(b, "errors"), BAD_AUDIO, 6);
    json_decref(b);

    json_t *items = list_items(g.audio_project, "new", 3);
    assert_int_equal(json_array_size(items), 4);
    struct {
        const char *name, *format;
        int rate, channels;
        int64_t frames;
        double duration;
    } want[] = {
        {"speech.wav", "wav", 16000, 1, 49326, 3.082875},
        {"speech.flac", "flac", 16000, 1, 49326, 3.082875},
        {"speech.ogg", "ogg", 16000, 1, 49326, 3.082875},
        {"stereo.wav", "wav", 44100, 2, 88200, 2.0},
    };
    for (size_t i = 0; i < 4; i++) {
        json_t *it = it_json_find(items, "name", want[i].name);
        assert_non_null(it);
        char sha[65];
        data_sha(want[i].name, sha);
        assert_string_equal(it_json_str(it, "sha256"), sha);
        json_t *m = json_object_get(it, "media");
        assert_string_equal(it_json_str(m, "format"), want[i].format);
        assert_int_equal(it_json_int(m, "sample_rate"), want[i].rate);
        assert_int_equal(it_json_int(m, "channels"), want[i].channels);
        assert_int_equal(it_json_int(m, "frames"), want[i].frames);
        double d = json_number_value(json_object_get(m, "duration"));
        if (d < want[i].duration - 1e-6 || d > want[i].duration + 1e-6)
            fprintf(stderr, "%s: duration %f, want %f\n", want[i].name, d, want[i].duration);
        assert_true(d > want[i].duration - 1e-6 && d < want[i].duration + 1e-6);
        assert_null(json_object_get(m, "width"));
        /* audio has a waveform, not a thumbnail */
        char url[96];
        snprintf(url, sizeof url, "/v1/items/%lld/waveform", (long long)it_json_int(it, "id"));
        assert_string_equal(it_json_str(it, "waveform_url"), url);
        assert_null(json_object_get(it, "thumbnail_url"));
        snprintf(url, sizeof url, "/v1/items/%lld/media", (long long)it_json_int(it, "id"));
        assert_string_equal(it_json_str(it, "media_url"), url);
    }
    json_decref(items);
}

static void test_upload_edge_cases(void **state)
{
    (void)state;
    int64_t project = create_project("edges", "image", TEMPLATE);
    int64_t batch = create_batch_src(project, "{\"kind\":\"upload\"}", NULL);
    it_response r;
    char path[512];

    upload_data(batch, "photo.jpg", "a.jpg");
    /* the same name again */
    char file[4096];
    it_test_data("photo2.jpg", file, sizeof file);
    assert_int_equal(it_upload_file(&g.srv, g.mgr, batch, "a.jpg", file, &r), 0);
    IT_ASSERT_ERROR(r, 409, "file_exists");
    it_response_free(&r);

    /* names that are not plain file names: '/' (sent as %2F), "..", "." */
    assert_int_equal(it_upload_file(&g.srv, g.mgr, batch, "sub/b.jpg", file, &r), 0);
    IT_ASSERT_ERROR(r, 400, "invalid_name");
    it_response_free(&r);
    assert_int_equal(it_upload_file(&g.srv, g.mgr, batch, "../../b.jpg", file, &r), 0);
    IT_ASSERT_ERROR(r, 400, "invalid_name");
    it_response_free(&r);
    const char *raw_names[] = {"..", ".", "%2E%2E", "..%2Fescape.jpg", "a%5Cb.jpg", "x%0Ay.jpg"};
    for (size_t i = 0; i < sizeof raw_names / sizeof *raw_names; i++) {
        raw_resp rr;
        snprintf(path, sizeof path, "/v1/batches/%lld/files/%s", (long long)batch, raw_names[i]);
        raw_request(&g.srv, "PUT", path, g.mgr, NULL, NULL, "abc", 3, 0, &rr);
        if (rr.status != 400)
            fprintf(stderr, "PUT %s -> %ld %s\n", path, rr.status, rr.body ? (char *)rr.body : "");
        assert_int_equal(rr.status, 400);
        assert_non_null(rr.body);
        assert_non_null(strstr((char *)rr.body, "invalid_name"));
        free(rr.body);
    }
    /* an empty file is accepted as an upload and rejected as a file */
    assert_int_equal(it_upload_bytes(&g.srv, g.mgr, batch, "nothing.jpg", NULL, 0, &r), 0);
    IT_ASSERT_STATUS(r, 201);
    assert_int_equal(it_json_int(r.json, "size"), 0);
    assert_string_equal(it_json_str(r.json, "sha256"),
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    it_response_free(&r);
    /* a UTF-8 name with a space is fine */
    upload_data(batch, "gray.jpg", "caf\xc3\xa9 au lait.jpg");
    /* the body streams without a Content-Length, too */
    size_t plen = 0;
    unsigned char *png = load_data("palette.png", &plen);
    raw_resp rr;
    snprintf(path, sizeof path, "/v1/batches/%lld/files/chunked.png", (long long)batch);
    raw_request(&g.srv, "PUT", path, g.mgr, NULL, NULL, png, plen, 1, &rr);
    if (rr.status != 201)
        fprintf(stderr, "chunked PUT -> %ld %s\n", rr.status, rr.body ? (char *)rr.body : "");
    assert_int_equal(rr.status, 201);
    json_t *j = json_loadb((char *)rr.body, rr.len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(it_json_int(j, "size"), (int64_t)plen);
    char sha[65];
    tly_sha256_hex(png, plen, sha);
    assert_string_equal(it_json_str(j, "sha256"), sha);
    json_decref(j);
    free(rr.body);
    free(png);

    /* unknown batch */
    assert_int_equal(it_upload_file(&g.srv, g.mgr, 987654, "x.jpg", file, &r), 0);
    IT_ASSERT_ERROR(r, 404, "not_found");
    it_response_free(&r);

    /* close, twice (idempotent), then no more uploads */
    assert_int_equal(it_close_batch(&g.srv, g.mgr, batch), 200);
    assert_int_equal(it_close_batch(&g.srv, g.mgr, batch), 200);
    assert_int_equal(it_upload_file(&g.srv, g.mgr, batch, "late.jpg", file, &r), 0);
    IT_ASSERT_ERROR(r, 409, "batch_closed");
    it_response_free(&r);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, NULL, 404, "not_found", "/v1/batches/987654/close");

    json_t *b = wait_done(batch);
    static const char *const bad[][2] = {{"nothing.jpg", "empty_file"}};
    expect_counts(b, 4, 3, 0, 1);
    expect_errors(json_object_get(b, "errors"), bad, 1);
    json_decref(b);
    json_t *items = list_items(project, NULL, 10);
    assert_int_equal(json_array_size(items), 3);
    assert_non_null(it_json_find(items, "name", "a.jpg"));
    assert_non_null(it_json_find(items, "name", "caf\xc3\xa9 au lait.jpg"));
    assert_non_null(it_json_find(items, "name", "chunked.png"));
    json_decref(items);

    /* uploads into a batch that is not an upload batch, and closing one */
    char src[4400], one[4200];
    snprintf(one, sizeof one, "%s/one", g.root);
    put_data(one, "x.jpg", "photo.jpg");
    snprintf(src, sizeof src, "{\"kind\":\"dir\",\"path\":\"%s\"}", one);
    int64_t dir_batch = create_batch_src(project, src, NULL);
    assert_int_equal(it_upload_file(&g.srv, g.mgr, dir_batch, "x.jpg", file, &r), 0);
    IT_ASSERT_ERROR(r, 409, "not_upload_batch");
    it_response_free(&r);
    IT_EXPECT_STATUSF(&g.srv, "POST", g.mgr, NULL, 409, "/v1/batches/%lld/close", (long long)dir_batch);
    json_decref(wait_done(dir_batch));
    tly_remove_tree(one);

    /* batch bodies */
    refuse_batch(project, "{\"kind\":\"upload\",\"extra\":1}", 400, "unknown_field");
    refuse_batch(project, "{\"kind\":\"tape\"}", 400, NULL);
    refuse_batch(project, "{}", 400, "missing_field");
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"name\":\"x\"}", 400, "missing_field", "/v1/projects/%lld/batches", (long long)project);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"name\":\"x\",\"source\":{\"kind\":\"upload\"}}", 404, "not_found", "/v1/projects/987654/batches");
}

/* ---- uploads racing each other and a close ---------------------------------------- */

typedef struct {
    const unsigned char *data;
    size_t len, off, pause_at;
    int paused;
} paced_src;

/* Sends up to pause_at bytes, then pauses until the test resumes the transfer. */
static size_t paced_read(char *dst, size_t size, size_t nmemb, void *userp)
{
    paced_src *p = userp;
    if (p->off >= p->pause_at && !p->paused) {
        p->paused = 1;
        return CURL_READFUNC_PAUSE;
    }
    size_t n = size * nmemb;
    if (n > p->len - p->off)
        n = p->len - p->off;
    if (!p->paused && n > p->pause_at - p->off)
        n = p->pause_at - p->off;
    memcpy(dst, p->data + p->off, n);
    p->off += n;
    return n;
}

static CURL *upload_handle(it_server *s, const char *token, int64_t batch, const char *name,
                           paced_src *src, raw_resp *out, struct curl_slist **headers)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[1024], auth[300];
    char *esc = curl_easy_escape(c, name, 0);
    snprintf(url, sizeof url, "%s/v1/batches/%lld/files/%s", s->base_url, (long long)batch, esc);
    curl_free(esc);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    *headers = curl_slist_append(NULL, auth);
    *headers = curl_slist_append(*headers, "Expect:");
    *headers = curl_slist_append(*headers, "Content-Type: application/octet-stream");
    memset(out, 0, sizeof *out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)src->len);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, paced_read);
    curl_easy_setopt(c, CURLOPT_READDATA, src);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, raw_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    return c;
}

/* Runs the multi handle until every transfer is done (or 30 s passed). */
static void run_multi(CURLM *m)
{
    int running = 1;
    for (int i = 0; i < 3000 && running; i++) {
        curl_multi_perform(m, &running);
        if (running) {
            int numfds;
            curl_multi_poll(m, NULL, 0, 10, &numfds);
        }
    }
    assert_int_equal(running, 0);
}

static void test_upload_races(void **state)
{
    (void)state;
    int64_t project = create_project("races", "image", TEMPLATE);
    int64_t batch = create_batch_src(project, "{\"kind\":\"upload\"}", NULL);
    size_t len;
    unsigned char *photo = load_data("photo.jpg", &len);

    /* 8 uploads of one name at the same time: exactly one wins */
    enum { N = 8 };
    CURLM *m = curl_multi_init();
    CURL *c[N];
    paced_src src[N];
    raw_resp out[N];
    struct curl_slist *h[N];
    for (int i = 0; i < N; i++) {
        src[i] = (paced_src){photo, len, 0, len, 1};
        c[i] = upload_handle(&g.srv, g.mgr, batch, "same.jpg", &src[i], &out[i], &h[i]);
        curl_multi_add_handle(m, c[i]);
    }
    run_multi(m);
    int created = 0, exists = 0;
    for (int i = 0; i < N; i++) {
        long st = 0;
        curl_easy_getinfo(c[i], CURLINFO_RESPONSE_CODE, &st);
        if (st == 201)
            created++;
        else if (st == 409 && out[i].body && strstr((char *)out[i].body, "file_exists"))
            exists++;
        else
            fprintf(stderr, "concurrent upload %d: %ld %s\n", i, st, out[i].body ? (char *)out[i].body : "");
        curl_multi_remove_handle(m, c[i]);
        curl_easy_cleanup(c[i]);
        curl_slist_free_all(h[i]);
        free(out[i].body);
    }
    assert_int_equal(created, 1);
    assert_int_equal(exists, N - 1);

    /* a close while a body is streaming in: the upload is refused when it ends */
    paced_src slow = {photo, len, 0, len / 2, 0};
    raw_resp so;
    struct curl_slist *sh;
    CURL *sc = upload_handle(&g.srv, g.mgr, batch, "late.jpg", &slow, &so, &sh);
    curl_multi_add_handle(m, sc);
    int running = 1;
    for (int i = 0; i < 500 && !slow.paused; i++) {
        curl_multi_perform(m, &running);
        int numfds;
        curl_multi_poll(m, NULL, 0, 10, &numfds);
    }
    assert_true(slow.paused);
    for (int i = 0; i < 10; i++) { /* let the first half reach the server */
        curl_multi_perform(m, &running);
        it_sleep_ms(10);
    }
    assert_int_equal(it_close_batch(&g.srv, g.mgr, batch), 200);
    curl_easy_pause(sc, CURLPAUSE_CONT);
    run_multi(m);
    long st = 0;
    curl_easy_getinfo(sc, CURLINFO_RESPONSE_CODE, &st);
    if (st != 409)
        fprintf(stderr, "upload across a close: %ld %s\n", st, so.body ? (char *)so.body : "");
    assert_int_equal(st, 409);
    assert_non_null(strstr((char *)so.body, "batch_closed"));
    curl_multi_remove_handle(m, sc);
    curl_easy_cleanup(sc);
    curl_slist_free_all(sh);
    free(so.body);
    curl_multi_cleanup(m);
    free(photo);

    json_t *b = wait_done(batch);
    expect_counts(b, 1, 1, 0, 0);
    json_decref(b);
    json_t *items = list_items(project, NULL, 10);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(it_json_str(json_array_get(items, 0), "name"), "same.jpg");
    json_decref(items);

    /* names too long for a file name are refused, never a crash */
    int64_t b2 = create_batch_src(project, "{\"kind\":\"upload\"}", NULL);
    char name[2100];
    memset(name, 'n', sizeof name);
    memcpy(name + 300 - 4, ".jpg", 5);
    it_response r;
    assert_int_equal(it_upload_bytes(&g.srv, g.mgr, b2, name, "abc", 3, &r), 0);
    IT_ASSERT_ERROR(r, 400, "invalid_name");
    it_response_free(&r);
    memcpy(name + sizeof name - 5, ".jpg", 5);
    assert_int_equal(it_upload_bytes(&g.srv, g.mgr, b2, name, "abc", 3, &r), 0);
    if (r.status < 400 || r.status >= 500)
        fprintf(stderr, "2 KB name: %ld %s\n", r.status, r.body);
    assert_true(r.status >= 400 && r.status < 500);
    it_response_free(&r);
    assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/batches/%lld", (long long)b2), 0);
    assert_int_equal(it_json_int(r.json, "total"), 0);
    it_response_free(&r);
}

static void test_max_file_size(void **state)
{
    (void)state;
    it_server s;
    const char *args[] = {"--max-file-size", "10K", NULL};
    char *mgr = NULL;
    assert_int_equal(it_server_start_users(&s, args, &mgr, NULL, NULL), 0);
    assert_non_null(mgr);
    int64_t project = it_create_project(&s, mgr, "small-files", "image", TEMPLATE);
    assert_true(project > 0);
    int64_t batch = it_create_batch(&s, mgr, project, "b", NULL);
    assert_true(batch > 0);
    char file[4096];
    it_response r;
    /* 29605 and 11116 bytes: over 10 KiB */
    assert_int_equal(it_upload_file(&s, mgr, batch, "photo.jpg", it_test_data("photo.jpg", file, sizeof file), &r), 0);
    IT_ASSERT_ERROR(r, 413, "too_large");
    it_response_free(&r);
    assert_int_equal(it_upload_file(&s, mgr, batch, "gray.jpg", it_test_data("gray.jpg", file, sizeof file), &r), 0);
    IT_ASSERT_ERROR(r, 413, "too_large");
    it_response_free(&r);
    /* without a Content-Length the limit is enforced while streaming */
    size_t len = 0;
    unsigned char *big = load_data("photo.jpg", &len);
    raw_resp rr;
    char path[256];
    snprintf(path, sizeof path, "/v1/batches/%lld/files/streamed.jpg", (long long)batch);
    raw_request(&s, "PUT", path, mgr, NULL, NULL, big, len, 1, &rr);
    if (rr.status != 413)
        fprintf(stderr, "chunked oversized PUT -> %ld %s\n", rr.status, rr.body ? (char *)rr.body : "");
    assert_int_equal(rr.status, 413);
    assert_non_null(strstr((char *)rr.body, "too_large"));
    free(rr.body);
    free(big);
    /* 8857 bytes: fine */
    assert_int_equal(it_upload_file(&s, mgr, batch, "palette.png", it_test_data("palette.png", file, sizeof file), &r), 0);
    IT_ASSERT_STATUS(r, 201);
    it_response_free(&r);
    /* the refused uploads left nothing in the batch nor in the spool */
    assert_int_equal(it_close_batch(&s, mgr, batch), 200);
    json_t *b = it_wait_batch(&s, mgr, batch, BATCH_TIMEOUT_MS);
    assert_non_null(b);
    assert_int_equal(it_json_int(b, "total"), 1);
    assert_int_equal(it_json_int(b, "accepted"), 1);
    json_decref(b);
    char tmpdir[4400];
    snprintf(tmpdir, sizeof tmpdir, "%s/spool/tmp", s.data_dir);
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    struct dirent *de;
    int leftovers = 0;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            fprintf(stderr, "left in spool/tmp: %s\n", de->d_name);
            leftovers++;
        }
    closedir(d);
    assert_int_equal(leftovers, 0);

    /* this server has no --import-root: server-side imports are refused */
    it_response r2;
    char body[256];
    snprintf(body, sizeof body, "{\"name\":\"d\",\"source\":{\"kind\":\"dir\",\"path\":\"%s\"}}", s.data_dir);
    assert_int_equal(it_requestf(&s, "POST", mgr, body, &r2, "/v1/projects/%lld/batches", (long long)project), 0);
    IT_ASSERT_ERROR(r2, 403, "path_not_allowed");
    it_response_free(&r2);

    free(mgr);
    int stopped = it_server_stop(&s);
    it_server_cleanup(&s);
    assert_int_equal(stopped, 0);
}

/* ---- server-side directory import --------------------------------------------------- */

static void test_dir_import(void **state)
{
    (void)state;
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/dirimp", g.root);
    put_data(dir, "photo.jpg", "photo.jpg");
    put_data(dir, "sub/photo2.jpg", "photo2.jpg");
    put_data(dir, "sub/deeper/gray.png", "palette.png");
    put_data(dir, ".hidden.jpg", "progressive.jpg");      /* skipped */
    put_data(dir, ".hiddendir/inside.jpg", "cmyk.jpg");    /* skipped */
    put_data(dir, "empty.jpg", "empty.jpg");
    put_data(dir, "sub/corrupt.png", "corrupt.png");
    /* a symlink to a file outside the import root, and one inside it */
    put_data(g.outside, "secret.jpg", "gray.jpg");
    char link[4500], target[4500];
    snprintf(link, sizeof link, "%s/link.jpg", dir);
    snprintf(target, sizeof target, "%s/secret.jpg", g.outside);
    assert_int_equal(symlink(target, link), 0);
    snprintf(link, sizeof link, "%s/sub/alias.jpg", dir);
    assert_int_equal(symlink("../photo.jpg", link), 0);

    int64_t project = create_project("dir-import", "image", TEMPLATE);
    char src[4600];
    snprintf(src, sizeof src, "{\"kind\":\"dir\",\"path\":\"%s\"}", dir);
    json_t *created = NULL;
    int64_t batch = create_batch_src(project, src, &created);
    char sha[65];
    assert_string_equal(it_json_str(created, "kind"), "dir");
    const char *st = it_json_str(created, "state");
    assert_true(strcmp(st, "processing") == 0 || strcmp(st, "done") == 0);
    json_decref(created);
    json_t *b = wait_done(batch);
    static const char *const bad[][2] = {
        {"empty.jpg", "empty_file"}, {"sub/corrupt.png", "corrupt"}, {"link.jpg", "path_not_allowed"},
    };
    /* photo, sub/photo2, sub/deeper/gray.png, sub/alias.jpg (duplicate of photo.jpg),
     * empty, corrupt, link */
    expect_counts(b, 7, 3, 1, 3);
    expect_errors(json_object_get(b, "errors"), bad, 3);
    json_decref(b);

    json_t *items = list_items(project, NULL, 100);
    assert_int_equal(json_array_size(items), 3);
    /* photo.jpg and sub/alias.jpg have the same bytes: whichever finished first is
     * the item, the other the duplicate */
    data_sha("photo.jpg", sha);
    json_t *photo = it_json_find(items, "sha256", sha);
    assert_non_null(photo);
    assert_true(strcmp(it_json_str(photo, "name"), "photo.jpg") == 0 ||
                strcmp(it_json_str(photo, "name"), "sub/alias.jpg") == 0);
    const char *names[][2] = {{"sub/photo2.jpg", "photo2.jpg"}, {"sub/deeper/gray.png", "palette.png"}};
    for (size_t i = 0; i < 2; i++) {
        json_t *it = it_json_find(items, "name", names[i][0]);
        if (!it)
            fprintf(stderr, "no item named %s\n", names[i][0]);
        assert_non_null(it);
        data_sha(names[i][1], sha);
        assert_string_equal(it_json_str(it, "sha256"), sha);
    }
    /* neither the hidden files nor the file behind the escaping link got in */
    data_sha("progressive.jpg", sha);
    assert_null(it_json_find(items, "sha256", sha));
    data_sha("cmyk.jpg", sha);
    assert_null(it_json_find(items, "sha256", sha));
    data_sha("gray.jpg", sha);
    assert_null(it_json_find(items, "sha256", sha));
    json_decref(items);

    /* the source files are left alone */
    char p[4500];
    snprintf(p, sizeof p, "%s/photo.jpg", dir);
    assert_true(it_file_exists(p));

    /* the whole root, recursively, also works (the names carry the sub-path) */
    int64_t p2 = create_project("dir-import-root", "image", TEMPLATE);
    snprintf(src, sizeof src, "{\"kind\":\"dir\",\"path\":\"%s/\"}", g.root);
    int64_t batch2 = create_batch_src(p2, src, NULL);
    b = wait_done(batch2);
    assert_int_equal(it_json_int(b, "accepted"), 3);
    json_decref(b);
    items = list_items(p2, NULL, 100);
    assert_non_null(it_json_find(items, "name", "dirimp/sub/photo2.jpg"));
    json_decref(items);
}

static void test_dir_import_refused(void **state)
{
    (void)state;
    int64_t project = create_project("dir-refused", "image", TEMPLATE);
    char src[4600];
    /* traversal out of the root */
    snprintf(src, sizeof src, "{\"kind\":\"dir\",\"path\":\"%s/../etc\"}", g.root);
    refuse_batch(project, src, 403, "path_not_allowed");
    snprintf(src, sizeof src, "{\"kind\":\"dir\",\"path\":\"%s/dirimp/../..\"}", g.root);
    refuse_batch(project, src, 403, "path_not_allowed");
    snprintf(src, sizeof src, "{\"kind\":\"dir\",\"path\":\"%s/..\"}", g.root);
    refuse_batch(project, src, 403, "path_not_allowed");
    /* outside every root */
    refuse_batch(project, "{\"kind\":\"dir\",\"path\":\"/etc\"}", 403, "path_not_allowed");
    refuse_batch(project, "{\"kind\":\"dir\",\"path\":\"/\"}", 403, "path_not_allowed");
    snprintf(src, sizeof src, "{\"kind\":\"dir\",\"path\":\"%s\"}", g.outside);
    refuse_batch(project, src, 403, "path_not_allowed");
    /* a sibling whose name merely starts with the root's */
    char sibling[4200];
    snprintf(sibling, sizeof sibling, "%s-sibling", g.root);
    assert_int_equal(tly_mkdirs(sibling, 0700), 0);
    snprintf(src, sizeof src, "{\"kind\":\"dir\",\"path\":\"%s\"}", sibling);
    refuse_batch(project, src, 403, "path_not_allowed");
    tly_remove_tree(sibling);
    /* a directory symlink inside the root that points outside */
    char link[4500];
    snprintf(link, sizeof link, "%s/escape", g.root);
    assert_int_equal(symlink(g.outside, link), 0);
    snprintf(src, sizeof src, "{\"kind\":\"dir\",\"path\":\"%s\"}", link);
    refuse_batch(project, src, 403, "path_not_allowed");
    unlink(link);
    /* relative */
    refuse_batch(project, "{\"kind\":\"dir\",\"path\":\"images/cats\"}", 400, "invalid_path");
    refuse_batch(project, "{\"kind\":\"dir\",\"path\":\"\"}", 400, NULL);
    /* missing / wrong type */
    refuse_batch(project, "{\"kind\":\"dir\"}", 400, "missing_field");
    refuse_batch(project, "{\"kind\":\"dir\",\"path\":5}", 400, "invalid_field");
    /* nothing was created */
    it_response r;
    assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/projects/%lld/batches", (long long)project), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 0);
    it_response_free(&r);
}

/* An empty directory is a batch with no files: done at once, not a crash. Runs on its
 * own server so a crash cannot take the shared one down. */
static void test_dir_import_empty(void **state)
{
    (void)state;
    char root[4200];
    snprintf(root, sizeof root, "%s/empty-root", g.outside);
    assert_int_equal(tly_mkdirs(root, 0700), 0);
    char sub[4300];
    snprintf(sub, sizeof sub, "%s/only-hidden", root);
    assert_int_equal(tly_mkdirs(sub, 0700), 0);
    put_data(sub, ".hidden.jpg", "photo.jpg");
    it_server s;
    const char *args[] = {"--import-root", root, NULL};
    assert_int_equal(it_server_start_users(&s, args, NULL, NULL, NULL), 0);
    int64_t project = it_create_project(&s, s.admin_token, "empty", "image", TEMPLATE);
    int64_t b1 = -1, b2 = -1;
    json_t *d1 = NULL, *d2 = NULL;
    if (project > 0) {
        char src[4400];
        snprintf(src, sizeof src, "{\"kind\":\"dir\",\"path\":\"%s\"}", root);
        b1 = it_create_batch(&s, s.admin_token, project, "empty", src);
        d1 = b1 > 0 ? it_wait_batch(&s, s.admin_token, b1, 30000) : NULL;
        snprintf(src, sizeof src, "{\"kind\":\"dir\",\"path\":\"%s\"}", sub);
        b2 = it_create_batch(&s, s.admin_token, project, "hidden-only", src);
        d2 = b2 > 0 ? it_wait_batch(&s, s.admin_token, b2, 30000) : NULL;
    }
    /* a crash shows up here: it_server_stop prints the log's tail */
    int stopped = it_server_stop(&s);
    it_server_cleanup(&s);
    assert_true(project > 0);
    assert_true(b1 > 0);
    assert_non_null(d1);
    assert_non_null(d2);
    assert_string_equal(it_json_str(d1, "state"), "done");
    assert_int_equal(it_json_int(d1, "total"), 0);
    assert_int_equal(it_json_int(d2, "total"), 0);
    assert_string_equal(it_json_str(d2, "state"), "done");
    json_decref(d1);
    json_decref(d2);
    assert_int_equal(stopped, 0);
}

/* ---- URL lists ------------------------------------------------------------------------ */

static void test_url_list(void **state)
{
    (void)state;
    int64_t project = create_project("urls", "image", TEMPLATE);
    int dead = closed_port();
    assert_true(dead > 0);
    unsigned long hits_before = __atomic_load_n(&g.files_hits, __ATOMIC_SEQ_CST);
    char src[2048];
    int P = g.files_port;
    snprintf(src, sizeof src,
             "{\"kind\":\"urls\",\"urls\":[\"http://127.0.0.1:%d/photo.jpg\",\"http://127.0.0.1:%d/photo2.jpg?size=big#x\","
             "\"http://127.0.0.1:%d/alpha.png\",\"http://127.0.0.1:%d/missing.jpg\","
             "\"http://127.0.0.1:%d/truncated.png\",\"http://127.0.0.1:%d/speech.wav\","
             "\"http://127.0.0.1:%d/photo_copy.jpg\",\"http://127.0.0.1:%d/gone.jpg\"]}",
             P, P, P, P, P, P, P, dead);
    int64_t batch = create_batch_src(project, src, NULL);
    json_t *b = wait_done(batch);
    static const char *const bad[][2] = {
        {"missing.jpg", "fetch_failed"}, {"truncated.png", "truncated"},
        {"speech.wav", "wrong_media"},   {"gone.jpg", "fetch_failed"},
    };
    expect_counts(b, 8, 3, 1, 4);
    expect_errors(json_object_get(b, "errors"), bad, 4);
    json_decref(b);
    assert_true(__atomic_load_n(&g.files_hits, __ATOMIC_SEQ_CST) >= hits_before + 7);

    json_t *items = list_items(project, NULL, 100);
    assert_int_equal(json_array_size(items), 3);
    const char *files[] = {"photo2.jpg", "alpha.png"};
    for (size_t i = 0; i < 2; i++) {
        json_t *it = it_json_find(items, "name", files[i]); /* named by the URL's basename */
        if (!it)
            fprintf(stderr, "no item named %s\n", files[i]);
        assert_non_null(it);
        char sha[65];
        data_sha(files[i], sha);
        assert_string_equal(it_json_str(it, "sha256"), sha);
    }
    char sha[65];
    data_sha("photo.jpg", sha);
    assert_non_null(it_json_find(items, "sha256", sha));
    json_decref(items);

    /* refused at creation */
    refuse_batch(project, "{\"kind\":\"urls\",\"urls\":[\"ftp://x/photo.jpg\"]}", 400, "invalid_url");
    refuse_batch(project, "{\"kind\":\"urls\",\"urls\":[\"file:///etc/passwd\"]}", 400, "invalid_url");
    refuse_batch(project, "{\"kind\":\"urls\",\"urls\":[\"photo.jpg\"]}", 400, "invalid_url");
    refuse_batch(project, "{\"kind\":\"urls\",\"urls\":[5]}", 400, "invalid_url");
    snprintf(src, sizeof src, "{\"kind\":\"urls\",\"urls\":[\"http://127.0.0.1:%d/photo.jpg\",\"gopher://x\"]}", P);
    refuse_batch(project, src, 400, "invalid_url");
    refuse_batch(project, "{\"kind\":\"urls\",\"urls\":[]}", 400, NULL);
    refuse_batch(project, "{\"kind\":\"urls\"}", 400, "missing_field");
    refuse_batch(project, "{\"kind\":\"urls\",\"urls\":\"http://127.0.0.1/x.jpg\"}", 400, "invalid_field");
}

/* ---- manifests ---------------------------------------------------------------------- */

static void test_manifest(void **state)
{
    (void)state;
    char dir[4400];
    snprintf(dir, sizeof dir, "%s/manifest", g.root);
    put_data(dir, "photo.jpg", "photo.jpg");
    put_data(dir, "more/gray.jpg", "gray.jpg");
    put_data(dir, "empty.jpg", "empty.jpg");
    int64_t project = create_project("manifest", "image", TEMPLATE);
    char src[4096];
    snprintf(src, sizeof src,
             "{\"kind\":\"manifest\",\"root\":\"%s\",\"lines\":["
             "{\"file\":\"photo.jpg\",\"gold\":{\"label\":\"cat\"},\"meta\":{\"k\":\"v\",\"n\":3}},"
             "{\"url\":\"http://127.0.0.1:%d/photo2.jpg\",\"meta\":{\"source\":\"web\"}},"
             "{\"file\":\"more/gray.jpg\",\"name\":\"renamed.jpg\"},"
             "{\"file\":\"%s/empty.jpg\"}]}",
             dir, g.files_port, dir);
    int64_t batch = create_batch_src(project, src, NULL);
    json_t *b = wait_done(batch);
    static const char *const bad[][2] = {{"empty.jpg", "empty_file"}};
    expect_counts(b, 4, 3, 0, 1);
    expect_errors(json_object_get(b, "errors"), bad, 1);
    json_decref(b);

    json_t *items = list_items(project, NULL, 100);
    assert_int_equal(json_array_size(items), 3);
    json_t *photo = it_json_find(items, "name", "photo.jpg");
    json_t *photo2 = it_json_find(items, "name", "photo2.jpg");
    json_t *gray = it_json_find(items, "name", "renamed.jpg");
    assert_non_null(photo);
    assert_non_null(photo2);
    assert_non_null(gray);
    char sha[65];
    data_sha("gray.jpg", sha);
    assert_string_equal(it_json_str(gray, "sha256"), sha);
    int64_t photo_id = it_json_int(photo, "id");
    int64_t photo2_id = it_json_int(photo2, "id");
    json_decref(items);

    /* gold and meta are on the item (the manager sees the gold answer) */
    it_response r;
    assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/items/%lld", (long long)photo_id), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_true(json_is_true(json_object_get(r.json, "gold")));
    json_t *want_gold = json_pack("{s:s}", "label", "cat");
    json_t *want_meta = json_pack("{s:s,s:i}", "k", "v", "n", 3);
    assert_true(json_equal(json_object_get(r.json, "gold_answer"), want_gold));
    assert_true(json_equal(json_object_get(r.json, "meta"), want_meta));
    json_decref(want_gold);
    json_decref(want_meta);
    it_response_free(&r);
    assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/items/%lld", (long long)photo2_id), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_true(json_is_false(json_object_get(r.json, "gold")));
    assert_null(json_object_get(r.json, "gold_answer"));
    assert_string_equal(it_json_str(json_object_get(r.json, "meta"), "source"), "web");
    it_response_free(&r);
    assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/projects/%lld/stats", (long long)project), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(r.json, "gold"), 1);
    assert_int_equal(it_json_int(r.json, "items_total"), 2);   /* work items: test questions apart */
    it_response_free(&r);

    /* refused manifests */
    snprintf(src, sizeof src,
             "{\"kind\":\"manifest\",\"root\":\"%s\",\"lines\":[{\"file\":\"photo.jpg\",\"gold\":{\"colour\":\"red\"}}]}", dir);
    refuse_batch(project, src, 422, "invalid_gold");
    snprintf(src, sizeof src,
             "{\"kind\":\"manifest\",\"root\":\"%s\",\"lines\":[{\"file\":\"photo.jpg\",\"gold\":{}}]}", dir);
    refuse_batch(project, src, 422, "invalid_gold");
    snprintf(src, sizeof src,
             "{\"kind\":\"manifest\",\"root\":\"%s\",\"lines\":[{\"file\":\"photo.jpg\",\"gold\":\"cat\"}]}", dir);
    refuse_batch(project, src, 400, NULL);
    snprintf(src, sizeof src,
             "{\"kind\":\"manifest\",\"root\":\"%s\",\"lines\":[{\"file\":\"photo.jpg\",\"url\":\"http://127.0.0.1:%d/photo.jpg\"}]}",
             dir, g.files_port);
    refuse_batch(project, src, 400, NULL);
    snprintf(src, sizeof src, "{\"kind\":\"manifest\",\"root\":\"%s\",\"lines\":[{\"meta\":{}}]}", dir);
    refuse_batch(project, src, 400, NULL);
    snprintf(src, sizeof src, "{\"kind\":\"manifest\",\"root\":\"%s\",\"lines\":[]}", dir);
    refuse_batch(project, src, 400, NULL);
    snprintf(src, sizeof src, "{\"kind\":\"manifest\",\"root\":\"%s\",\"lines\":[\"photo.jpg\"]}", dir);
    refuse_batch(project, src, 400, NULL);
    snprintf(src, sizeof src, "{\"kind\":\"manifest\",\"root\":\"%s\",\"lines\":[{\"file\":\"../../etc/passwd\"}]}", dir);
    refuse_batch(project, src, 403, "path_not_allowed");
    refuse_batch(project, "{\"kind\":\"manifest\",\"lines\":[{\"file\":\"photo.jpg\"}]}", 400, NULL);
    refuse_batch(project, "{\"kind\":\"manifest\",\"root\":\"/etc\",\"lines\":[{\"file\":\"passwd\"}]}", 403,
                 "path_not_allowed");
    refuse_batch(project, "{\"kind\":\"manifest\",\"lines\":[{\"url\":\"ftp://x/y.jpg\"}]}", 400, "invalid_url");
    snprintf(src, sizeof src,
             "{\"kind\":\"manifest\",\"root\":\"%s\",\"lines\":[{\"file\":\"photo.jpg\",\"colour\":1}]}", dir);
    refuse_batch(project, src, 400, NULL);
}

/* ---- items and their media ------------------------------------------------------------ */

static void test_items_paging(void **state)
{
    (void)state;
    /* pages of 2 with state=new: every item once, ids increasing */
    json_t *items = list_items(g.img_project, "new", 2);
    assert_int_equal(json_array_size(items), N_GOOD_IMAGES);
    int64_t last = 0;
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        int64_t id = it_json_int(it, "id");
        assert_true(id > last);
        last = id;
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(it_json_str(json_array_get(items, k), "sha256"), it_json_str(it, "sha256"));
    }
    json_decref(items);
    /* first page by hand: 2 items and a cursor */
    it_response r;
    assert_int_equal(it_requestf(&g.srv, "GET", g.consumer, NULL, &r, "/v1/projects/%lld/items?state=new&limit=2",
                          (long long)g.img_project),
                     0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 2);
    assert_true(json_is_string(json_object_get(r.json, "next_cursor")));
    it_response_free(&r);
    /* another state has nothing */
    assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/projects/%lld/items?state=done", (long long)g.img_project), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 0);
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    it_response_free(&r);
    /* bad paging */
    IT_EXPECT_STATUSF(&g.srv, "GET", g.mgr, NULL, 400, "/v1/projects/%lld/items?limit=0", (long long)g.img_project);
    IT_EXPECT_ERRORF(&g.srv, "GET", g.mgr, NULL, 404, "not_found", "/v1/projects/987654/items");
}

static void test_item_image_metadata(void **state)
{
    (void)state;
    struct {
        const char *name, *format;
        int w, h, ch;
    } want[] = {
        {"photo.jpg", "jpeg", 640, 480, 3},   {"photo2.jpg", "jpeg", 480, 640, 3},
        {"gray.jpg", "jpeg", 320, 240, 1},    {"progressive.jpg", "jpeg", 400, 300, 3},
        {"cmyk.jpg", "jpeg", 320, 240, 4},    {"photo.png", "png", 320, 240, 3},
        {"interlaced.png", "png", 320, 240, 3}, {"alpha.png", "png", 200, 150, 4},
        {"palette.png", "png", 160, 120, 3},  {"deep.png", "png", 64, 48, 3},
    };
    json_t *items = list_items(g.img_project, NULL, 100);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char sha[65];
        data_sha(want[i].name, sha);
        json_t *it = it_json_find(items, "sha256", sha);
        assert_non_null(it);
        int64_t id = it_json_int(it, "id");
        /* the single-item view matches the list's */
        it_response r;
        assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/items/%lld", (long long)id), 0);
        IT_ASSERT_STATUS(r, 200);
        json_t *item = r.json;
        assert_int_equal(it_json_int(item, "id"), id);
        assert_int_equal(it_json_int(item, "project_id"), g.img_project);
        assert_int_equal(it_json_int(item, "batch_id"), g.img_batch);
        assert_string_equal(it_json_str(item, "sha256"), sha);
        assert_string_equal(it_json_str(item, "state"), "new");
        assert_true(strlen(it_json_str(item, "created_at")) >= 20);
        char path[4096];
        struct stat st;
        assert_int_equal(stat(it_test_data(want[i].name, path, sizeof path), &st), 0);
        assert_int_equal(it_json_int(item, "size"), (int64_t)st.st_size);
        json_t *m = json_object_get(item, "media");
        if (strcmp(it_json_str(m, "format"), want[i].format) != 0 || it_json_int(m, "width") != want[i].w ||
            it_json_int(m, "height") != want[i].h || it_json_int(m, "channels") != want[i].ch) {
            char *t = json_dumps(m, JSON_COMPACT);
            fprintf(stderr, "%s: media %s\n", want[i].name, t);
            free(t);
        }
        assert_string_equal(it_json_str(m, "format"), want[i].format);
        assert_int_equal(it_json_int(m, "width"), want[i].w);
        assert_int_equal(it_json_int(m, "height"), want[i].h);
        assert_int_equal(it_json_int(m, "channels"), want[i].ch);
        char url[96];
        snprintf(url, sizeof url, "/v1/items/%lld/media", (long long)id);
        assert_string_equal(it_json_str(item, "media_url"), url);
        snprintf(url, sizeof url, "/v1/items/%lld/thumbnail", (long long)id);
        assert_string_equal(it_json_str(item, "thumbnail_url"), url);
        assert_null(json_object_get(item, "waveform_url"));
        assert_true(json_is_false(json_object_get(item, "gold")));
        json_t *listed = json_deep_copy(it);
        json_t *single = json_deep_copy(item);
        assert_true(json_equal(listed, single));
        json_decref(listed);
        json_decref(single);
        it_response_free(&r);
    }
    json_decref(items);
}

/* The id of the image project's item with the bytes of tests/data/name. */
static int64_t item_id_of(const char *name)
{
    json_t *items = list_items(g.img_project, NULL, 100);
    char sha[65];
    data_sha(name, sha);
    json_t *it = it_json_find(items, "sha256", sha);
    assert_non_null(it);
    int64_t id = it_json_int(it, "id");
    json_decref(items);
    return id;
}

static void test_item_media_download(void **state)
{
    (void)state;
    const char *files[][2] = {{"photo.jpg", "image/jpeg"}, {"alpha.png", "image/png"}};
    for (size_t f = 0; f < 2; f++) {
        int64_t id = item_id_of(files[f][0]);
        size_t len;
        unsigned char *orig = load_data(files[f][0], &len);
        char sha[65], etag[80], path[128];
        tly_sha256_hex(orig, len, sha);
        snprintf(etag, sizeof etag, "\"%s\"", sha);
        snprintf(path, sizeof path, "/v1/items/%lld/media", (long long)id);

        /* whole file: the original bytes */
        it_response r;
        assert_int_equal(it_request(&g.srv, "GET", path, g.mgr, NULL, NULL, 0, &r), 0);
        IT_ASSERT_STATUS(r, 200);
        assert_int_equal(r.len, len);
        assert_memory_equal(r.body, orig, len);
        assert_non_null(strstr(r.content_type, files[f][1]));
        assert_string_equal(r.etag, etag);
        it_response_free(&r);

        /* conditional */
        char inm[128];
        snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
        raw_resp rr;
        raw_request(&g.srv, "GET", path, g.mgr, inm, NULL, NULL, 0, 0, &rr);
        assert_int_equal(rr.status, 304);
        assert_int_equal(rr.len, 0);
        assert_string_equal(rr.etag, etag);
        free(rr.body);
        raw_request(&g.srv, "GET", path, g.mgr,
                    "If-None-Match: \"0000000000000000000000000000000000000000000000000000000000000000\"", NULL,
                    NULL, 0, 0, &rr);
        assert_int_equal(rr.status, 200);
        assert_int_equal(rr.len, len);
        free(rr.body);

        /* ranges */
        raw_request(&g.srv, "GET", path, g.mgr, "Range: bytes=0-99", NULL, NULL, 0, 0, &rr);
        assert_int_equal(rr.status, 206);
        assert_int_equal(rr.len, 100);
        assert_memory_equal(rr.body, orig, 100);
        char cr[128];
        snprintf(cr, sizeof cr, "bytes 0-99/%zu", len);
        assert_string_equal(rr.content_range, cr);
        free(rr.body);
        raw_request(&g.srv, "GET", path, g.mgr, "Range: bytes=1000-", NULL, NULL, 0, 0, &rr);
        assert_int_equal(rr.status, 206);
        assert_int_equal(rr.len, len - 1000);
        assert_memory_equal(rr.body, orig + 1000, len - 1000);
        snprintf(cr, sizeof cr, "bytes 1000-%zu/%zu", len - 1, len);
        assert_string_equal(rr.content_range, cr);
        free(rr.body);
        raw_request(&g.srv, "GET", path, g.mgr, "Range: bytes=-10", NULL, NULL, 0, 0, &rr);
        assert_int_equal(rr.status, 206);
        assert_int_equal(rr.len, 10);
        assert_memory_equal(rr.body, orig + len - 10, 10);
        free(rr.body);
        raw_request(&g.srv, "GET", path, g.mgr, "Range: bytes=50-1000000", NULL, NULL, 0, 0, &rr);
        assert_int_equal(rr.status, 206);
        assert_int_equal(rr.len, len - 50);
        free(rr.body);
        char range[64];
        snprintf(range, sizeof range, "Range: bytes=%zu-", len);
        raw_request(&g.srv, "GET", path, g.mgr, range, NULL, NULL, 0, 0, &rr);
        assert_int_equal(rr.status, 416);
        snprintf(cr, sizeof cr, "bytes */%zu", len);
        assert_string_equal(rr.content_range, cr);
        free(rr.body);
        raw_request(&g.srv, "GET", path, g.mgr, "Range: bytes=100000-100099", NULL, NULL, 0, 0, &rr);
        assert_int_equal(rr.status, 416);
        free(rr.body);
        /* If-Range with another validator: the whole file */
        raw_request(&g.srv, "GET", path, g.mgr, "Range: bytes=0-99", "If-Range: \"other\"", NULL, 0, 0, &rr);
        assert_int_equal(rr.status, 200);
        assert_int_equal(rr.len, len);
        free(rr.body);
        free(orig);

        /* a consumer may download, a worker may not even see it */
        assert_int_equal(it_request(&g.srv, "GET", path, g.consumer, NULL, NULL, 0, &r), 0);
        IT_ASSERT_STATUS(r, 200);
        assert_int_equal(r.len, len);
        it_response_free(&r);
        IT_EXPECT_ERRORF(&g.srv, "GET", g.worker, NULL, 404, "not_found", "%s", path);
        IT_EXPECT_ERRORF(&g.srv, "GET", NULL, NULL, 401, "unauthorized", "%s", path);
    }
    IT_EXPECT_ERRORF(&g.srv, "GET", g.mgr, NULL, 404, "not_found", "/v1/items/987654/media");
}

static void test_item_thumbnails(void **state)
{
    (void)state;
    /* Longest side at most 256. A source larger than that is reduced to between 7/8
     * of 256 and 256 (JPEGs may stop at libjpeg's nearest DCT scale M/8: 640x480 at
     * 3/8 is 240x180; PNGs are box-filtered to exactly 256), keeping its aspect and
     * orientation; a smaller one keeps its size (no upscaling). Gray stays gray,
     * everything else (CMYK, alpha, palette, 16-bit) becomes 3-component RGB. */
    struct {
        const char *name;
        int ow, oh, comps; /* original size, thumbnail components */
    } want[] = {
        {"photo.jpg", 640, 480, 3},   {"photo2.jpg", 480, 640, 3},    {"gray.jpg", 320, 240, 1},
        {"progressive.jpg", 400, 300, 3}, {"cmyk.jpg", 320, 240, 3},  {"photo.png", 320, 240, 3},
        {"interlaced.png", 320, 240, 3}, {"alpha.png", 200, 150, 3},  {"palette.png", 160, 120, 3},
        {"deep.png", 64, 48, 3},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        int64_t id = item_id_of(want[i].name);
        it_response r;
        assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/items/%lld/thumbnail", (long long)id), 0);
        IT_ASSERT_STATUS(r, 200);
        assert_non_null(strstr(r.content_type, "image/jpeg"));
        assert_true(r.len > 100);
        assert_int_equal((unsigned char)r.body[0], 0xFF);
        assert_int_equal((unsigned char)r.body[1], 0xD8);
        int w = 0, h = 0, comps = 0;
        assert_int_equal(jpeg_dims((unsigned char *)r.body, r.len, &w, &h, &comps), 0);
        fprintf(stderr, "%s: thumbnail %dx%d (%d components)\n", want[i].name, w, h, comps);
        int longest = w > h ? w : h, olongest = want[i].ow > want[i].oh ? want[i].ow : want[i].oh;
        assert_true(w > 0 && h > 0 && longest <= 256);
        if (olongest > 256) {
            assert_true(longest >= 224);
            /* aspect within a pixel of the thumbnail's: |w/h - ow/oh| * h <= 1 */
            long lhs = (long)w * want[i].oh, rhs = (long)h * want[i].ow;
            assert_true(labs(lhs - rhs) <= (long)(want[i].ow > want[i].oh ? want[i].oh : want[i].ow));
            assert_true((w >= h) == (want[i].ow >= want[i].oh));
        } else {
            assert_int_equal(w, want[i].ow);
            assert_int_equal(h, want[i].oh);
        }
        if (strcmp(want[i].name, "photo.png") == 0 || strcmp(want[i].name, "interlaced.png") == 0) {
            assert_int_equal(w, 256); /* 320x240 box-filtered: 256x192 exactly */
            assert_int_equal(h, 192);
        }
        assert_int_equal(comps, want[i].comps);
        /* the thumbnail is content-addressed too: ETag + 304 */
        assert_true(strlen(r.etag) == 66);
        char sha[65];
        tly_sha256_hex(r.body, r.len, sha);
        char etag[80];
        snprintf(etag, sizeof etag, "\"%s\"", sha);
        assert_string_equal(r.etag, etag);
        char inm[128], path[96];
        snprintf(inm, sizeof inm, "If-None-Match: %s", r.etag);
        snprintf(path, sizeof path, "/v1/items/%lld/thumbnail", (long long)id);
        raw_resp rr;
        raw_request(&g.srv, "GET", path, g.consumer, inm, NULL, NULL, 0, 0, &rr);
        assert_int_equal(rr.status, 304);
        free(rr.body);
        it_response_free(&r);
        IT_EXPECT_ERRORF(&g.srv, "GET", g.worker, NULL, 404, "not_found", "/v1/items/%lld/thumbnail", (long long)id);
        /* an image has no waveform */
        IT_EXPECT_STATUSF(&g.srv, "GET", g.mgr, NULL, 404, "/v1/items/%lld/waveform", (long long)id);
    }
}

static void test_item_waveforms(void **state)
{
    (void)state;
    json_t *items = list_items(g.audio_project, NULL, 100);
    struct {
        const char *name;
        int64_t length, spp, rate;
    } want[] = {
        {"speech.wav", 796, 62, 16000}, {"speech.flac", 796, 62, 16000},
        {"speech.ogg", 796, 62, 16000}, {"stereo.wav", 795, 111, 44100},
    };
    json_t *wav_data = NULL, *flac_data = NULL;
    for (size_t i = 0; i < 4; i++) {
        json_t *it = it_json_find(items, "name", want[i].name);
        assert_non_null(it);
        int64_t id = it_json_int(it, "id");
        it_response r;
        assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/items/%lld/waveform", (long long)id), 0);
        IT_ASSERT_STATUS(r, 200);
        assert_non_null(strstr(r.content_type, "json"));
        assert_non_null(r.json);
        assert_int_equal(it_json_int(r.json, "length"), want[i].length);
        assert_int_equal(it_json_int(r.json, "samples_per_pixel"), want[i].spp);
        assert_int_equal(it_json_int(r.json, "sample_rate"), want[i].rate);
        json_t *data = json_object_get(r.json, "data");
        assert_true(json_is_array(data));
        assert_int_equal(json_array_size(data), (size_t)(2 * want[i].length));
        size_t k;
        json_t *v;
        int64_t peak = 0;
        json_array_foreach(data, k, v) {
            assert_true(json_is_integer(v));
            int64_t x = json_integer_value(v);
            assert_true(x >= -128 && x <= 127);
            if (k % 2 == 1) /* a max is never below its min */
                assert_true(x >= json_integer_value(json_array_get(data, k - 1)));
            if (llabs(x) > peak)
                peak = llabs(x);
        }
        assert_true(peak > 10); /* not silence */
        if (strcmp(want[i].name, "stereo.wav") == 0)
            assert_true(peak >= 55 && peak <= 70); /* -6 dBFS: about 64 of 128 */
        if (strcmp(want[i].name, "speech.wav") == 0)
            wav_data = json_incref(data);
        if (strcmp(want[i].name, "speech.flac") == 0)
            flac_data = json_incref(data);
        it_response_free(&r);

        /* no thumbnail for audio */
        IT_EXPECT_ERRORF(&g.srv, "GET", g.mgr, NULL, 404, "no_thumbnail", "/v1/items/%lld/thumbnail", (long long)id);
        /* the media comes back byte for byte */
        assert_int_equal(it_getf(&g.srv, g.consumer, &r, "/v1/items/%lld/media", (long long)id), 0);
        IT_ASSERT_STATUS(r, 200);
        char sha[65];
        tly_sha256_hex(r.body, r.len, sha);
        assert_string_equal(sha, it_json_str(it, "sha256"));
        assert_non_null(strstr(r.content_type, "audio/"));
        it_response_free(&r);
    }
    /* FLAC holds the same samples as the WAV */
    assert_non_null(wav_data);
    assert_non_null(flac_data);
    assert_true(json_equal(wav_data, flac_data));
    json_decref(wav_data);
    json_decref(flac_data);
    json_decref(items);
}

static void test_item_access(void **state)
{
    (void)state;
    int64_t id = item_id_of("photo.jpg");
    it_response r;
    IT_EXPECT_ERRORF(&g.srv, "GET", g.worker, NULL, 404, "not_found", "/v1/items/%lld", (long long)id);
    assert_int_equal(it_getf(&g.srv, g.consumer, &r, "/v1/items/%lld", (long long)id), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(r.json, "id"), id);
    it_response_free(&r);
    IT_EXPECT_ERRORF(&g.srv, "GET", g.mgr, NULL, 404, "not_found", "/v1/items/987654");
    IT_EXPECT_ERRORF(&g.srv, "GET", g.mgr, NULL, 404, "not_found", "/v1/items/987654/thumbnail");
    IT_EXPECT_ERRORF(&g.srv, "GET", g.mgr, NULL, 404, "not_found", "/v1/items/%lld/nothing", (long long)id);
    IT_EXPECT_ERRORF(&g.srv, "DELETE", g.mgr, NULL, 405, "method_not_allowed", "/v1/items/%lld", (long long)id);
}

/* ---- gold ------------------------------------------------------------------------------ */

static void test_gold(void **state)
{
    (void)state;
    int64_t id = item_id_of("photo2.jpg");
    it_response r;
    assert_int_equal(it_requestf(&g.srv, "PUT", g.mgr, "{\"answer\":{\"label\":\"cat\"}}", &r, "/v1/items/%lld/gold",
                          (long long)id),
                     0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(r.json, "id"), id);
    assert_true(json_is_true(json_object_get(r.json, "gold")));
    assert_string_equal(it_json_str(json_object_get(r.json, "gold_answer"), "label"), "cat");
    it_response_free(&r);
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/items/%lld", (long long)id), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_true(json_is_true(json_object_get(r.json, "gold")));
    assert_string_equal(it_json_str(json_object_get(r.json, "gold_answer"), "label"), "cat");
    it_response_free(&r);
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/stats", (long long)g.img_project), 0);
    assert_int_equal(it_json_int(r.json, "gold"), 1);
    assert_int_equal(it_json_int(r.json, "items_total"), (int64_t)N_GOOD_IMAGES - 1);
    it_response_free(&r);

    /* replacing it */
    assert_int_equal(it_requestf(&g.srv, "PUT", g.srv.admin_token, "{\"answer\":{\"label\":\"dog\"}}", &r,
                          "/v1/items/%lld/gold", (long long)id),
                     0);
    IT_ASSERT_STATUS(r, 200);
    assert_string_equal(it_json_str(json_object_get(r.json, "gold_answer"), "label"), "dog");
    it_response_free(&r);

    /* bad gold */
    IT_EXPECT_ERRORF(&g.srv, "PUT", g.mgr, "{\"answer\":{\"colour\":\"red\"}}", 422, "invalid_gold", "/v1/items/%lld/gold", (long long)id);
    IT_EXPECT_ERRORF(&g.srv, "PUT", g.mgr, "{\"answer\":{}}", 422, "invalid_gold", "/v1/items/%lld/gold", (long long)id);
    IT_EXPECT_STATUSF(&g.srv, "PUT", g.mgr, "{\"label\":\"cat\"}", 400, "/v1/items/%lld/gold", (long long)id);
    IT_EXPECT_STATUSF(&g.srv, "PUT", g.mgr, "{\"answer\":\"cat\"}", 400, "/v1/items/%lld/gold", (long long)id);
    IT_EXPECT_ERRORF(&g.srv, "PUT", g.mgr, "{\"answer\":", 400, "invalid_json", "/v1/items/%lld/gold", (long long)id);
    IT_EXPECT_ERRORF(&g.srv, "PUT", g.mgr, "{\"answer\":{\"label\":\"cat\"}}", 404, "not_found", "/v1/items/987654/gold");
    /* the refused requests left the answer as it was */
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/items/%lld", (long long)id), 0);
    assert_string_equal(it_json_str(json_object_get(r.json, "gold_answer"), "label"), "dog");
    it_response_free(&r);

    /* roles: a worker does not see the item, a consumer may not set gold */
    IT_EXPECT_ERRORF(&g.srv, "PUT", g.worker, "{\"answer\":{\"label\":\"cat\"}}", 404, "not_found", "/v1/items/%lld/gold", (long long)id);
    IT_EXPECT_ERRORF(&g.srv, "PUT", g.consumer, "{\"answer\":{\"label\":\"cat\"}}", 403, "forbidden", "/v1/items/%lld/gold", (long long)id);
    IT_EXPECT_ERRORF(&g.srv, "DELETE", g.consumer, NULL, 403, "forbidden", "/v1/items/%lld/gold", (long long)id);

    /* clearing */
    assert_int_equal(it_requestf(&g.srv, "DELETE", g.mgr, NULL, &r, "/v1/items/%lld/gold", (long long)id), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_true(json_is_false(json_object_get(r.json, "gold")));
    assert_null(json_object_get(r.json, "gold_answer"));
    it_response_free(&r);
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/items/%lld", (long long)id), 0);
    assert_true(json_is_false(json_object_get(r.json, "gold")));
    assert_null(json_object_get(r.json, "gold_answer"));
    it_response_free(&r);
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/stats", (long long)g.img_project), 0);
    assert_int_equal(it_json_int(r.json, "gold"), 0);
    it_response_free(&r);
}

/* A gold answer must fit the control, not just name it: "horse" is not an option. */
static void test_gold_value_checked(void **state)
{
    (void)state;
    int64_t id = item_id_of("gray.jpg");
    it_response r;
    IT_EXPECT_ERRORF(&g.srv, "PUT", g.mgr, "{\"answer\":{\"label\":\"horse\"}}", 422, "invalid_gold", "/v1/items/%lld/gold", (long long)id);
    IT_EXPECT_ERRORF(&g.srv, "PUT", g.mgr, "{\"answer\":{\"label\":42}}", 422, "invalid_gold", "/v1/items/%lld/gold", (long long)id);
    /* clean up whatever a buggy server stored */
    assert_int_equal(it_requestf(&g.srv, "DELETE", g.mgr, NULL, &r, "/v1/items/%lld/gold", (long long)id), 0);
    it_response_free(&r);
}

/* ---- metrics and leftovers -------------------------------------------------------- */

/* The three ingest outcome counters, read from /metrics. */
static void read_ingest_counters(double out[3])
{
    static const char *const series[3] = {
        "tally_ingest_files_total{outcome=\"accepted\"}",
        "tally_ingest_files_total{outcome=\"duplicate\"}",
        "tally_ingest_files_total{outcome=\"rejected\"}",
    };
    it_response r;
    assert_int_equal(it_request(&g.srv, "GET", "/metrics", NULL, NULL, NULL, 0, &r), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_non_null(strstr(r.content_type, "text/plain"));
    for (int i = 0; i < 3; i++) {
        out[i] = it_metric_value(r.body, series[i]);
        if (out[i] < 0)
            fprintf(stderr, "no %s in /metrics\n", series[i]);
        assert_true(out[i] >= 0); /* the tests above produced every outcome */
    }
    it_response_free(&r);
}

static void test_ingest_metrics(void **state)
{
    (void)state;
    double before[3], after[3];
    read_ingest_counters(before);
    /* one batch with 2 accepted, 1 duplicate, 3 rejected: the counters move by exactly that */
    int64_t project = create_project("metrics", "image", TEMPLATE);
    int64_t batch = create_batch_src(project, "{\"kind\":\"upload\"}", NULL);
    upload_data(batch, "photo.jpg", "a.jpg");
    upload_data(batch, "photo2.jpg", "b.jpg");
    upload_data(batch, "photo_copy.jpg", "c.jpg");
    upload_data(batch, "empty.jpg", "d.jpg");
    upload_data(batch, "corrupt.png", "e.png");
    upload_data(batch, "speech.wav", "f.wav");
    assert_int_equal(it_close_batch(&g.srv, g.mgr, batch), 200);
    json_t *b = wait_done(batch);
    expect_counts(b, 6, 2, 1, 3);
    json_decref(b);
    const double want[3] = {2, 1, 3};
    /* counters are bumped just after each file's outcome commits: allow a moment */
    for (int tries = 0; tries < 100; tries++) {
        read_ingest_counters(after);
        if (after[0] - before[0] >= want[0] && after[1] - before[1] >= want[1] && after[2] - before[2] >= want[2])
            break;
        it_sleep_ms(20);
    }
    for (int i = 0; i < 3; i++) {
        if (after[i] - before[i] != want[i])
            fprintf(stderr, "counter %d moved by %g, want %g\n", i, after[i] - before[i], want[i]);
        assert_true(after[i] - before[i] == want[i]);
    }
    it_response r;
    assert_int_equal(it_request(&g.srv, "GET", "/metrics", NULL, NULL, NULL, 0, &r), 0);
    assert_non_null(strstr(r.body, "tally_http_requests_total{route=\"upload_file\",status=\"201\"}"));
    assert_non_null(strstr(r.body, "tally_http_requests_total{route=\"upload_file\",status=\"409\"}"));
    assert_non_null(strstr(r.body, "tally_ingest_thumbnails_total"));
    assert_non_null(strstr(r.body, "tally_ingest_waveforms_total"));
    it_response_free(&r);
}

static void test_no_temp_leftovers(void **state)
{
    (void)state;
    /* every batch above is done: nothing may remain in flight */
    char p[4400];
    snprintf(p, sizeof p, "%s/spool/tmp", g.srv.data_dir);
    assert_int_equal(it_count_entries(p, NULL, 1), 0);
    snprintf(p, sizeof p, "%s/blobs/tmp", g.srv.data_dir);
    int n = it_count_entries(p, NULL, 1);
    assert_true(n == 0 || n == -1);
    snprintf(p, sizeof p, "%s/spool", g.srv.data_dir);
    assert_int_equal(it_count_entries(p, ".up", 1), 0);
    /* and the server is still healthy */
    for (int i = 0; i < 3; i++) {
        IT_EXPECT_STATUSF(&g.srv, "GET", NULL, NULL, 200, "/healthz");
        it_sleep_ms(10);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upload_mixed_images),
        cmocka_unit_test(test_duplicate_across_batches),
        cmocka_unit_test(test_upload_mixed_audio),
        cmocka_unit_test(test_upload_edge_cases),
        cmocka_unit_test(test_upload_races),
        cmocka_unit_test(test_max_file_size),
        cmocka_unit_test(test_dir_import),
        cmocka_unit_test(test_dir_import_refused),
        cmocka_unit_test(test_dir_import_empty),
        cmocka_unit_test(test_url_list),
        cmocka_unit_test(test_manifest),
        cmocka_unit_test(test_items_paging),
        cmocka_unit_test(test_item_image_metadata),
        cmocka_unit_test(test_item_media_download),
        cmocka_unit_test(test_item_thumbnails),
        cmocka_unit_test(test_item_waveforms),
        cmocka_unit_test(test_item_access),
        cmocka_unit_test(test_gold),
        cmocka_unit_test(test_gold_value_checked),
        cmocka_unit_test(test_ingest_metrics),
        cmocka_unit_test(test_no_temp_leftovers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
