/* it_export.c -- dataset versions end to end against a real tallyd (docs/API.md
 * "Export"): an image project and an audio project are labeled, accepted and
 * released, then exported in every format of their media; the archives are unpacked
 * with libarchive and every file is checked against the manifest (SHA-256, size) and
 * parsed (COCO ids and boxes, VOC XML, YOLO numbers, NeMo durations, ...). Splits
 * are stable across versions, unchanged data gives the same version identity, and a
 * download resumed with Range yields the same bytes. Bad requests get clear errors.
 */
#include "harness.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <openssl/sha.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct {
    it_server srv;
    char *mgr;
    char *consumer;
    int seq;
    int64_t img_project, audio_project;
} g;

/* ---- making a labeled, released project ------------------------------------------------ */

/* The worker labels every task of the project with answer(i). */
static void label_all(int64_t project, const char *tok, char *(*answer)(int64_t item, int k))
{
    for (int k = 0;; k++) {
        json_t *task = it_next_task(&g.srv, tok, project);
        if (!task)
            break;
        int64_t a = it_json_int(task, "assignment_id");
        int64_t item = it_json_int(json_object_get(task, "item"), "id");
        json_decref(task);
        char *body = answer(item, k);
        json_t *ok = it_json_requestf(&g.srv, "POST", tok, body, 200, "/v1/assignments/%lld/submit", (long long)a);
        json_decref(ok);
        free(body);
    }
}

static char *image_answer(int64_t item, int k)
{
    char *s = NULL;
    (void)item;
    assert_true(asprintf(&s,
                         "{\"answer\":{\"label\":\"%s\",\"objects\":[{\"label\":\"car\",\"x\":%d,\"y\":40,\"w\":100,\"h\":60},"
                         "{\"label\":\"person\",\"x\":500,\"y\":300,\"w\":140,\"h\":180}],"
                         "\"outline\":[{\"label\":\"car\",\"points\":[[10,10],[110,10],[60,90]]}]}}",
                         k % 2 ? "dog" : "cat", 10 + k) > 0);
    return s;
}

static char *audio_answer(int64_t item, int k)
{
    char *s = NULL;
    (void)item;
    assert_true(asprintf(&s,
                         "{\"answer\":{\"events\":[{\"label\":\"speech\",\"start\":0.25,\"end\":1.5},"
                         "{\"label\":\"noise\",\"start\":2.0,\"end\":2.75}],\"transcript\":\"hello world %d\"}}",
                         k) > 0);
    return s;
}

static const char *WORKFLOW = "{\"overlap\":1,\"quiz\":{\"size\":0},\"gold_rate\":0,\"min_trust\":0,\"min_confidence\":0,"
                              "\"checks\":{\"min_box_px\":0,\"same_answer_min\":0}}";

static int group_setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    curl_global_init(CURL_GLOBAL_ALL);
    if (it_server_start_users(&g.srv, NULL, &g.mgr, NULL, &g.consumer) < 0)
        return -1;
    char body[1024];
    snprintf(body, sizeof body,
             "{\"name\":\"export-img\",\"media\":\"image\",\"template\":{\"controls\":["
             "{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"]},"
             "{\"name\":\"objects\",\"type\":\"bbox\",\"labels\":[\"car\",\"person\"]},"
             "{\"name\":\"outline\",\"type\":\"polygon\",\"labels\":[\"car\"]}]},\"workflow\":%s}",
             WORKFLOW);
    g.img_project = it_post_project(&g.srv, g.mgr, body);
    it_add_jpegs(&g.srv, g.mgr, g.img_project, "export", "img", 6, 1);
    char *w = it_new_user(&g.srv, &g.seq, "worker");
    label_all(g.img_project, w, image_answer);
    it_release_all(&g.srv, g.mgr, g.img_project, 6);
    snprintf(body, sizeof body,
             "{\"name\":\"export-audio\",\"media\":\"audio\",\"template\":{\"controls\":["
             "{\"name\":\"events\",\"type\":\"audio_segments\",\"labels\":[\"speech\",\"noise\"]},"
             "{\"name\":\"transcript\",\"type\":\"transcription\"}]},\"workflow\":%s}",
             WORKFLOW);
    g.audio_project = it_post_project(&g.srv, g.mgr, body);
    static const char *const audio[] = {"speech.wav", "speech.flac", "speech.ogg"};
    it_add_files(&g.srv, g.mgr, g.audio_project, "audio", audio, 3);
    label_all(g.audio_project, w, audio_answer);
    it_release_all(&g.srv, g.mgr, g.audio_project, 3);
    free(w);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = it_server_finish(&g.srv);
    free(g.mgr);
    free(g.consumer);
    curl_global_cleanup();
    return rc;
}

/* ---- exports and downloads ------------------------------------------------------------------ */

/* Creates an export and waits for it; the done export object. */
static json_t *export_done(int64_t project, const char *body)
{
    json_t *e = it_json_requestf(&g.srv, "POST", g.consumer, body, 202, "/v1/projects/%lld/exports", (long long)project);
    int64_t id = it_json_int(e, "id");
    json_decref(e);
    long long deadline = it_now_ms() + 60000;
    for (;;) {
        e = it_json_requestf(&g.srv, "GET", g.consumer, NULL, 200, "/v1/exports/%lld", (long long)id);
        const char *state = it_json_str(e, "state");
        if (strcmp(state, "done") == 0)
            return e;
        if (strcmp(state, "failed") == 0)
            fail_msg("export %lld failed: %s", (long long)id, it_json_str(e, "error"));
        json_decref(e);
        assert_true(it_now_ms() < deadline);
        it_sleep_ms(100);
    }
}

typedef struct {
    char *data;
    size_t len, cap;
    char etag[128];
    long status;
} download;

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
    download *d = arg;
    size_t len = sz * n;
    if (d->len + len + 1 > d->cap) {
        d->cap = (d->len + len + 1) * 2;
        d->data = realloc(d->data, d->cap);
        assert_non_null(d->data);
    }
    memcpy(d->data + d->len, p, len);
    d->len += len;
    d->data[d->len] = 0;
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    download *d = arg;
    size_t len = sz * n;
    if (len > 6 && strncasecmp(p, "ETag:", 5) == 0) {
        size_t k = len - 5;
        while (k && (p[5 + k - 1] == '\r' || p[5 + k - 1] == '\n'))
            k--;
        snprintf(d->etag, sizeof d->etag, "%.*s", (int)(k > 0 && p[5] == ' ' ? k - 1 : k), p + (p[5] == ' ' ? 6 : 5));
    }
    return len;
}

/* GET path with optional extra headers (NULL-terminated). */
static void fetch(const char *path, download *d, ...)
{
    char url[512], auth[256];
    snprintf(url, sizeof url, "%s%s", g.srv.base_url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", g.consumer);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    va_list ap;
    va_start(ap, d);
    const char *extra;
    while ((extra = va_arg(ap, const char *)))
        h = curl_slist_append(h, extra);
    va_end(ap);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, d);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &d->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
}

static void sha_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    SHA256(data, len, md);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

/* ---- unpacking ------------------------------------------------------------------------------ */

#define MAX_FILES 256
typedef struct {
    char *path[MAX_FILES];
    char *data[MAX_FILES];
    size_t len[MAX_FILES];
    int n;
} files;

static void untar(const download *d, files *f)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, d->data, d->len), ARCHIVE_OK);
    struct archive_entry *e;
    f->n = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        assert_true(f->n < MAX_FILES);
        const char *p = archive_entry_pathname(e);
        assert_true(p[0] != '/' && !strstr(p, ".."));
        assert_int_equal(archive_entry_mtime(e), 0);   /* deterministic headers */
        size_t size = (size_t)archive_entry_size(e);
        f->path[f->n] = strdup(p);
        f->data[f->n] = malloc(size + 1);
        assert_int_equal(archive_read_data(a, f->data[f->n], size), (la_ssize_t)size);
        f->data[f->n][size] = 0;
        f->len[f->n] = size;
        f->n++;
    }
    archive_read_free(a);
}

static void files_free(files *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->path[i]);
        free(f->data[i]);
    }
    f->n = 0;
}

static int find(const files *f, const char *path)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->path[i], path) == 0)
            return i;
    return -1;
}

/* Every manifest line names a file of the archive with that size and SHA-256, and the
 * manifest's own hash is the version's. */
static void check_manifest(const files *f, const char *version)
{
    int m = find(f, "manifest.jsonl");
    assert_true(m >= 0);
    char hex[65];
    sha_hex(f->data[m], f->len[m], hex);
    assert_string_equal(hex, version);
    char *copy = strdup(f->data[m]), *save = NULL;
    int lines = 0;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *e = json_loads(l, 0, NULL);
        assert_non_null(e);
        int i = find(f, it_json_str(e, "path"));
        if (i < 0)
            fail_msg("manifest names %s, not in the archive", it_json_str(e, "path"));
        assert_int_equal((int64_t)f->len[i], it_json_int(e, "size"));
        sha_hex(f->data[i], f->len[i], hex);
        assert_string_equal(hex, it_json_str(e, "sha256"));
        json_decref(e);
        lines++;
    }
    free(copy);
    assert_int_equal(lines, f->n - 1);   /* every file but the manifest itself */
}

static json_t *export_files(int64_t project, const char *body, files *f, json_t **export_out)
{
    json_t *e = export_done(project, body);
    char path[96];
    snprintf(path, sizeof path, "/v1/exports/%lld/download", (long long)it_json_int(e, "id"));
    download d = {0};
    fetch(path, &d, NULL);
    assert_int_equal(d.status, 200);
    char hex[65];
    sha_hex(d.data, d.len, hex);
    assert_string_equal(hex, it_json_str(json_object_get(e, "artifact"), "sha256"));
    untar(&d, f);
    check_manifest(f, it_json_str(e, "sha256"));
    free(d.data);
    *export_out = e;
    return e;
}

/* ---- the tests -------------------------------------------------------------------------------- */

static void test_coco(void **state)
{
    (void)state;
    files f;
    json_t *e;
    export_files(g.img_project, "{\"format\":\"coco\",\"split\":{\"train\":0.5,\"val\":0.25,\"test\":0.25,\"seed\":3}}", &f,
                 &e);
    assert_int_equal(it_json_int(e, "items"), 6);
    int images = 0, anns = 0;
    static const char *const splits[] = {"train", "val", "test"};
    for (int s = 0; s < 3; s++) {
        char name[64];
        snprintf(name, sizeof name, "annotations/instances_%s.json", splits[s]);
        int i = find(&f, name);
        if (i < 0)
            continue;
        json_t *coco = json_loads(f.data[i], 0, NULL);
        assert_non_null(coco);
        json_t *cats = json_object_get(coco, "categories");
        assert_true(json_array_size(cats) >= 2);
        size_t k;
        json_t *im, *an;
        json_array_foreach(json_object_get(coco, "images"), k, im) {
            images++;
            assert_int_equal(it_json_int(im, "width"), 640);
            assert_int_equal(it_json_int(im, "height"), 480);
            /* The image is in the archive under its file_name, in its split. */
            const char *fn = it_json_str(im, "file_name");
            assert_true(find(&f, fn) >= 0 || find(&f, strstr(fn, "images/") ? fn : "") >= 0);
            assert_non_null(strstr(fn, splits[s]));
        }
        json_array_foreach(json_object_get(coco, "annotations"), k, an) {
            anns++;
            int64_t image_id = it_json_int(an, "image_id");
            int found = 0;
            size_t q;
            json_array_foreach(json_object_get(coco, "images"), q, im)
                found |= it_json_int(im, "id") == image_id;
            assert_true(found);
            json_t *bbox = json_object_get(an, "bbox");
            double x = json_number_value(json_array_get(bbox, 0)), y = json_number_value(json_array_get(bbox, 1));
            double w = json_number_value(json_array_get(bbox, 2)), h = json_number_value(json_array_get(bbox, 3));
            assert_true(x >= 0 && y >= 0 && x + w <= 640 && y + h <= 480);
            assert_int_equal(it_json_int(an, "iscrowd"), 0);
            assert_true(json_number_value(json_object_get(an, "area")) > 0);
        }
        json_decref(coco);
    }
    assert_int_equal(images, 6);
    assert_int_equal(anns, 6 * 3);   /* two boxes and a polygon each */
    files_free(&f);
    json_decref(e);
}

static void test_voc_yolo_imagenet(void **state)
{
    (void)state;
    files f;
    json_t *e;
    export_files(g.img_project, "{\"format\":\"voc\"}", &f, &e);
    int xml = 0;
    for (int i = 0; i < f.n; i++) {
        if (!strstr(f.path[i], ".xml"))
            continue;
        xml++;
        const char *x = f.data[i];
        assert_non_null(strstr(x, "<annotation>"));
        assert_non_null(strstr(x, "</annotation>"));
        assert_non_null(strstr(x, "<width>640</width>"));
        assert_non_null(strstr(x, "<name>car</name>"));
        /* Tags balance. */
        int open = 0, close = 0;
        for (const char *p = x; (p = strchr(p, '<')); p++)
            p[1] == '/' ? close++ : p[1] != '?' ? open++ : 0;
        assert_int_equal(open, close);
    }
    assert_int_equal(xml, 6);
    files_free(&f);
    json_decref(e);

    export_files(g.img_project, "{\"format\":\"yolo\"}", &f, &e);
    int labels = 0;
    assert_true(find(&f, "data.yaml") >= 0);
    for (int i = 0; i < f.n; i++) {
        if (strncmp(f.path[i], "labels/", 7) != 0)
            continue;
        labels++;
        char *copy = strdup(f.data[i]), *save = NULL;
        for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            int cls;
            double v[4];
            assert_int_equal(sscanf(l, "%d %lf %lf %lf %lf", &cls, &v[0], &v[1], &v[2], &v[3]), 5);
            assert_true(cls >= 0);
            for (int k = 0; k < 4; k++)
                assert_true(v[k] >= 0 && v[k] <= 1);
        }
        free(copy);
    }
    assert_int_equal(labels, 6);
    files_free(&f);
    json_decref(e);

    export_files(g.img_project, "{\"format\":\"imagenet\"}", &f, &e);
    int cats = 0, dogs = 0;
    for (int i = 0; i < f.n; i++) {
        cats += strncmp(f.path[i], "all/cat/", 8) == 0;
        dogs += strncmp(f.path[i], "all/dog/", 8) == 0;
    }
    assert_int_equal(cats + dogs, 6);
    assert_true(cats >= 1 && dogs >= 1);
    files_free(&f);
    json_decref(e);
}

static void test_manifests_and_single_files(void **state)
{
    (void)state;
    files f;
    json_t *e;
    export_files(g.img_project, "{\"format\":\"jsonl\"}", &f, &e);
    int i = -1;
    for (int k = 0; k < f.n; k++)
        if (strstr(f.path[k], ".jsonl") && strcmp(f.path[k], "manifest.jsonl") != 0)
            i = k;
    assert_true(i >= 0);
    int lines = 0;
    char *copy = strdup(f.data[i]), *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *line = json_loads(l, 0, NULL);
        assert_non_null(line);
        assert_true(find(&f, it_json_str(line, "source-ref")) >= 0);
        lines++;
        json_decref(line);
    }
    free(copy);
    assert_int_equal(lines, 6);
    /* Worker identities appear only as pseudonyms. */
    assert_null(strstr(f.data[i], "\"worker_id\""));
    files_free(&f);
    json_decref(e);

    export_files(g.img_project, "{\"format\":\"labelstudio\"}", &f, &e);
    files_free(&f);
    json_decref(e);

    /* No media, one file: the CSV alone, not an archive. */
    e = export_done(g.img_project, "{\"format\":\"csv\",\"media\":false}");
    assert_string_equal(it_json_str(json_object_get(e, "artifact"), "content_type"), "text/csv");
    char path[96];
    snprintf(path, sizeof path, "/v1/exports/%lld/download", (long long)it_json_int(e, "id"));
    download d = {0};
    fetch(path, &d, NULL);
    assert_int_equal(d.status, 200);
    assert_non_null(strstr(d.data, "_unit_id"));
    int rows = 0;
    for (const char *p = d.data; (p = strchr(p, '\n')); p++)
        rows++;
    assert_true(rows >= 7);   /* header + 6 */
    free(d.data);
    json_decref(e);
}

static void test_audio(void **state)
{
    (void)state;
    files f;
    json_t *e;
    export_files(g.audio_project, "{\"format\":\"nemo\"}", &f, &e);
    int i = find(&f, "manifest.json");
    assert_true(i >= 0);
    int lines = 0;
    char *copy = strdup(f.data[i]), *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *line = json_loads(l, 0, NULL);
        assert_non_null(line);
        const char *audio = it_json_str(line, "audio_filepath");
        assert_true(find(&f, audio) >= 0);
        /* speech.* are 3.082875 s long (tests/data/README.md). */
        double dur = json_number_value(json_object_get(line, "duration"));
        assert_true(dur > 3.08 && dur < 3.09);
        assert_non_null(strstr(it_json_str(line, "text"), "hello world"));
        lines++;
        json_decref(line);
    }
    free(copy);
    assert_int_equal(lines, 3);
    files_free(&f);
    json_decref(e);

    e = export_done(g.audio_project, "{\"format\":\"rttm\",\"media\":false}");
    char path[96];
    snprintf(path, sizeof path, "/v1/exports/%lld/download", (long long)it_json_int(e, "id"));
    download d = {0};
    fetch(path, &d, NULL);
    int rows = 0;
    char *save2 = NULL;
    for (char *l = strtok_r(d.data, "\n", &save2); l; l = strtok_r(NULL, "\n", &save2)) {
        int fields = 0;
        for (char *p = l; *p;) {
            while (*p == ' ')
                p++;
            if (!*p)
                break;
            fields++;
            while (*p && *p != ' ')
                p++;
        }
        assert_int_equal(fields, 10);
        assert_int_equal(strncmp(l, "SPEAKER ", 8), 0);
        rows++;
    }
    assert_int_equal(rows, 6);   /* two segments each */
    free(d.data);
    json_decref(e);

    export_files(g.audio_project, "{\"format\":\"segments_csv\"}", &f, &e);
    files_free(&f);
    json_decref(e);
}

static void test_versions_and_resume(void **state)
{
    (void)state;
    const char *body = "{\"format\":\"jsonl\",\"split\":{\"train\":0.5,\"val\":0.25,\"test\":0.25,\"seed\":9}}";
    const char *strat = "{\"format\":\"jsonl\",\"split\":{\"train\":0.5,\"val\":0.5,\"test\":0,\"seed\":2,"
                        "\"stratify\":true}}";
    json_t *v1 = export_done(g.img_project, body);
    /* Stratified: per class (cat / dog, 3 each) the exact shares: 2 + 1 or 1 + 2. */
    files fs1;
    json_t *es1;
    export_files(g.img_project, strat, &fs1, &es1);
    int per[2][2] = {{0, 0}, {0, 0}};
    for (int i = 0; i < fs1.n; i++) {
        if (strncmp(fs1.path[i], "images/", 7) != 0)
            continue;
        int val = strncmp(fs1.path[i], "images/val/", 11) == 0;
        assert_true(val || strncmp(fs1.path[i], "images/train/", 13) == 0);
        /* The class of the item: its line in the SageMaker manifest. */
        int m = -1;
        for (int k = 0; k < fs1.n; k++)
            if (strstr(fs1.path[k], "output.manifest"))
                m = k;
        assert_true(m >= 0);
        char *line = strstr(fs1.data[m], fs1.path[i]);
        assert_non_null(line);
        char *eol = strchr(line, '\n');
        int dog = eol && memmem(line, (size_t)(eol - line), "\"dog\"", 5) != NULL;
        per[dog][val]++;
    }
    for (int c = 0; c < 2; c++)
        assert_true(per[c][0] + per[c][1] == 3 && abs(per[c][0] - per[c][1]) == 1);
    json_decref(es1);
    json_t *v2 = export_done(g.img_project, body);
    /* Unchanged data, same parameters: the same version, byte for byte. */
    assert_string_equal(it_json_str(v1, "sha256"), it_json_str(v2, "sha256"));
    assert_string_equal(it_json_str(json_object_get(v1, "artifact"), "sha256"),
                        it_json_str(json_object_get(v2, "artifact"), "sha256"));
    assert_true(it_json_int(v1, "id") != it_json_int(v2, "id"));

    /* A resumed download: the first half, then the rest with Range and If-Range. */
    char path[96], range[64], if_range[160];
    snprintf(path, sizeof path, "/v1/exports/%lld/download", (long long)it_json_int(v1, "id"));
    int64_t size = it_json_int(json_object_get(v1, "artifact"), "size");
    download a = {0}, b = {0}, full = {0};
    snprintf(range, sizeof range, "Range: bytes=0-%lld", (long long)(size / 2 - 1));
    fetch(path, &a, range, NULL);
    assert_int_equal(a.status, 206);
    assert_int_equal((int64_t)a.len, size / 2);
    snprintf(range, sizeof range, "Range: bytes=%lld-", (long long)(size / 2));
    snprintf(if_range, sizeof if_range, "If-Range: %s", a.etag);
    fetch(path, &b, range, if_range, NULL);
    assert_int_equal(b.status, 206);
    assert_int_equal((int64_t)(a.len + b.len), size);
    char *joined = malloc((size_t)size);
    memcpy(joined, a.data, a.len);
    memcpy(joined + a.len, b.data, b.len);
    char hex[65];
    sha_hex(joined, (size_t)size, hex);
    assert_string_equal(hex, it_json_str(json_object_get(v1, "artifact"), "sha256"));
    free(joined);
    /* The ETag is the version; If-None-Match with it: 304. */
    assert_non_null(strstr(a.etag, it_json_str(v1, "sha256")));
    char inm[160];
    snprintf(inm, sizeof inm, "If-None-Match: %s", a.etag);
    fetch(path, &full, inm, NULL);
    assert_int_equal(full.status, 304);
    free(a.data);
    free(b.data);
    free(full.data);

    /* New data: two more items labeled and released. Every earlier item keeps its split. */
    it_add_jpegs(&g.srv, g.mgr, g.img_project, "export-more", "more", 2, 101);
    char *w = it_new_user(&g.srv, &g.seq, "worker");
    label_all(g.img_project, w, image_answer);
    free(w);
    it_release_all(&g.srv, g.mgr, g.img_project, 2);
    json_t *v3 = export_done(g.img_project, body);
    assert_int_equal(it_json_int(v3, "items"), 8);
    assert_string_not_equal(it_json_str(v3, "sha256"), it_json_str(v1, "sha256"));
    files f1, f3;
    json_t *e3;
    /* Compare "source-ref" -> split of both versions' manifests. */
    export_files(g.img_project, body, &f3, &e3);
    char p1[96];
    snprintf(p1, sizeof p1, "/v1/exports/%lld/download", (long long)it_json_int(v1, "id"));
    download d1 = {0};
    fetch(p1, &d1, NULL);
    untar(&d1, &f1);
    free(d1.data);
    /* Stratified assignments are kept too. */
    files fs3;
    json_t *es3;
    export_files(g.img_project, strat, &fs3, &es3);
    int skept = 0;
    for (int i = 0; i < fs1.n; i++)
        if (strncmp(fs1.path[i], "images/", 7) == 0) {
            assert_true(find(&fs3, fs1.path[i]) >= 0);
            skept++;
        }
    assert_int_equal(skept, 6);
    files_free(&fs1);
    files_free(&fs3);
    json_decref(es3);
    int kept = 0;
    for (int i = 0; i < f1.n; i++) {
        if (strncmp(f1.path[i], "images/", 7) != 0)
            continue;
        /* images/<split>/<stem>.jpg in v1 is at the same path in v3. */
        assert_true(find(&f3, f1.path[i]) >= 0);
        kept++;
    }
    assert_int_equal(kept, 6);
    files_free(&f1);
    files_free(&f3);
    json_decref(e3);
    json_decref(v1);
    json_decref(v2);
    json_decref(v3);
}

static void test_bad_requests(void **state)
{
    (void)state;
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"format\":\"tiff\"}", 400, "invalid_format", "/v1/projects/%lld/exports",
                     (long long)g.img_project);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"format\":\"nemo\"}", 422, "format_mismatch", "/v1/projects/%lld/exports",
                     (long long)g.img_project);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"format\":\"coco\",\"split\":{\"train\":0.5,\"val\":0.1}}", 400,
                     "invalid_split", "/v1/projects/%lld/exports", (long long)g.img_project);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"format\":\"coco\",\"filters\":{\"state\":\"new\"}}", 400,
                     "invalid_filter", "/v1/projects/%lld/exports", (long long)g.img_project);
    IT_EXPECT_STATUSF(&g.srv, "POST", g.mgr, "{\"format\":\"coco\",\"colour\":1}", 400, "/v1/projects/%lld/exports",
                      (long long)g.img_project);
    IT_EXPECT_STATUSF(&g.srv, "GET", g.mgr, NULL, 404, "/v1/exports/987654");
    IT_EXPECT_STATUSF(&g.srv, "POST", g.mgr, "{\"format\":\"coco\"}", 404, "/v1/projects/987654/exports");
    char *w = it_new_user(&g.srv, &g.seq, "worker");
    IT_EXPECT_STATUSF(&g.srv, "POST", w, "{\"format\":\"coco\"}", 404, "/v1/projects/%lld/exports",
                      (long long)g.img_project);
    free(w);
    /* A filter that matches nothing still gives a valid (empty) dataset. */
    json_t *e = export_done(g.img_project, "{\"format\":\"coco\",\"media\":false,\"filters\":{\"label\":\"zebra\"}}");
    assert_int_equal(it_json_int(e, "items"), 0);
    json_decref(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coco),
        cmocka_unit_test(test_voc_yolo_imagenet),
        cmocka_unit_test(test_manifests_and_single_files),
        cmocka_unit_test(test_audio),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_versions_and_resume),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
