/* export.c -- the export benchmark's worker (tools/bench/export drives it).
 *
 *   bench_export synth DIR N
 *       Creates DIR/tally.db (the real store, through store.h) holding one image
 *       project and N released items of 1280x720, each with a result of 3 boxes,
 *       inserted straight into the store in transactions of 10,000 items.
 *   bench_export run DIR FORMAT
 *       Exports that project in FORMAT (no media) with the real export code
 *       (export.h; the finished artifact goes into the local blob store DIR/blobs,
 *       as tallyd keeps it), in this fresh process, and prints "seconds bytes
 *       peak_rss_kb items".
 *   bench_export sql
 *       Prints the SELECT that reads the same rows, for `sqlite3 -csv` (the floor).
 */
#include "core/hash.h"
#include "export/export.h"
#include "storage/blob.h"
#include "storage/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

static int open_store(const char *dir, tly_store **st)
{
    char url[4200];
    tly_error err;
    snprintf(url, sizeof url, "sqlite:%s/tally.db", dir);
    if (tly_store_open(url, st, &err) < 0) {
        fprintf(stderr, "bench_export: %s\n", err.message);
        return -1;
    }
    /* A bench run, not a service: no need to wait for the disk at every commit. */
    tly_store_set_durability(*st, TLY_DURABLE_ORDERED, &err);
    return 0;
}

static int synth(const char *dir, long n)
{
    tly_store *st;
    tly_error err;
    if (open_store(dir, &st) < 0)
        return 1;
    tly_project p = {0};
    snprintf(p.name, sizeof p.name, "export-bench");
    snprintf(p.media, sizeof p.media, "image");
    snprintf(p.state, sizeof p.state, "active");
    p.template_json = json_loads("{\"controls\":[{\"name\":\"objects\",\"type\":\"bbox\",\"labels\":[\"car\",\"person\","
                                 "\"bicycle\"]}]}",
                                 0, NULL);
    p.workflow = json_object();
    p.created_by = 1;
    int64_t pid = 0;
    if (tly_store_project_create(st, &p, &pid, &err) < 0) {
        fprintf(stderr, "bench_export: %s\n", err.message);
        return 1;
    }
    json_t *media = json_pack("{s:s,s:i,s:i,s:i}", "format", "jpeg", "width", 1280, "height", 720, "channels", 3);
    static const char *const labels[] = {"car", "person", "bicycle"};
    for (long i = 0; i < n; i++) {
        if (i % 10000 == 0 && tly_store_begin(st, &err) < 0)
            goto fail;
        tly_item it = {0};
        it.project_id = pid;
        it.batch_id = 1;
        snprintf(it.name, sizeof it.name, "frame_%07ld.jpg", i);
        char seed[32];
        snprintf(seed, sizeof seed, "bench-%ld", i);
        tly_sha256_hex(seed, strlen(seed), it.sha256);
        it.size = 250000 + i % 1000;
        snprintf(it.state, sizeof it.state, "released");
        it.media = media;
        int64_t id = 0;
        if (tly_store_item_insert(st, &it, &id, &err) < 0)
            goto fail;
        json_t *boxes = json_array();
        for (int b = 0; b < 3; b++) {
            double x = (double)((i * 37 + b * 211) % 1000), y = (double)((i * 53 + b * 97) % 600);
            json_array_append_new(boxes, json_pack("{s:s,s:f,s:f,s:f,s:f}", "label", labels[(i + b) % 3], "x", x + 0.5,
                                                   "y", y + 0.25, "w", 40.0 + b * 10, "h", 30.0 + b * 5));
        }
        tly_result r = {.item_id = id, .project_id = pid, .answer = json_pack("{s:o}", "objects", boxes),
                        .confidence = 0.9 + (double)(i % 10) / 100.0, .judgments = 3};
        snprintf(r.method, sizeof r.method, "box_fusion");
        int rc = tly_store_result_put(st, &r, &err);
        json_decref(r.answer);
        if (rc < 0)
            goto fail;
        if ((i % 10000 == 9999 || i == n - 1) && tly_store_commit(st, &err) < 0)
            goto fail;
    }
    json_decref(media);
    tly_project_clear(&p);
    tly_store_close(st);
    printf("%lld\n", (long long)pid);
    return 0;
fail:
    fprintf(stderr, "bench_export: %s\n", err.message);
    return 1;
}

static int run(const char *dir, const char *format)
{
    tly_store *st;
    tly_error err;
    if (open_store(dir, &st) < 0)
        return 1;
    tly_export_rec e = {0};
    e.project_id = 1;
    snprintf(e.format, sizeof e.format, "%s", format);
    e.params = json_pack("{s:s,s:b,s:{s:s}}", "format", format, "media", 0, "filters", "state", "released");
    e.created_by = 1;
    char exports[4200], blob_dir[4200];
    snprintf(exports, sizeof exports, "%s/exports", dir);
    snprintf(blob_dir, sizeof blob_dir, "%s/blobs", dir);
    tly_blob_store *blobs = NULL;   /* where tallyd keeps finished exports, as it does */
    if (tly_blob_open(blob_dir, &blobs, &err) < 0) {
        fprintf(stderr, "bench_export: %s\n", err.message);
        return 1;
    }
    double t0 = now_s();
    if (tly_store_export_create(st, &e, &err) < 0 || tly_export_run(st, blobs, exports, e.id, &err) < 0) {
        fprintf(stderr, "bench_export: %s\n", err.message);
        return 1;
    }
    double t = now_s() - t0;
    tly_export_rec done = {0};
    if (tly_store_export_get(st, e.id, &done, &err) < 0 || strcmp(done.state, "done") != 0) {
        fprintf(stderr, "bench_export: export not done: %s\n", done.error ? done.error : done.state);
        return 1;
    }
    printf("%.3f %lld %ld %lld\n", t, (long long)done.artifact_size, peak_rss_kb(), (long long)done.items);
    tly_export_rec_clear(&e);
    tly_export_rec_clear(&done);
    tly_blob_close(blobs);
    tly_store_close(st);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "synth") == 0)
        return synth(argv[2], atol(argv[3]));
    if (argc == 4 && strcmp(argv[1], "run") == 0)
        return run(argv[2], argv[3]);
    if (argc == 2 && strcmp(argv[1], "sql") == 0) {
        /* What an export reads: every released result with its item. */
        puts("SELECT i.id, i.name, i.sha256, i.media, r.answer, r.confidence, r.method, r.judgments, r.updated_at"
             " FROM results r JOIN items i ON i.id = r.item_id WHERE r.project_id = 1 AND i.state = 'released'"
             " ORDER BY r.item_id;");
        return 0;
    }
    fprintf(stderr, "usage: bench_export synth DIR N | run DIR FORMAT | sql\n");
    return 2;
}
