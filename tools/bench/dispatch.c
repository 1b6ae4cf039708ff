/* dispatch.c -- the crowd-work dispatch load benchmark (driven by tools/bench/dispatch).
 *
 *   bench_dispatch make-items DIR COUNT
 *       Writes COUNT distinct tiny JPEGs DIR/item_NNNNNN.jpg: 32x32 images of an 8x8
 *       grid of colour blocks drawn from a PRNG seeded with the item's number, each
 *       with a COM segment naming the item right after the SOI. Different pictures,
 *       not just different bytes: ingest's near-duplicate search (perceptual hashes,
 *       storage/store_imagechecks.c) costs in proportion to how many earlier items
 *       look alike, so 20,000 copies of one picture would make the import quadratic
 *       (it did: over 300 s for 20,000 items, every item flagged a near duplicate).
 *
 *   bench_dispatch prepare --url URL --token ADMIN_TOKEN --items-dir DIR --items N
 *                          [--overlap K]
 *       Creates an image project with one choice control "label" (cat/dog) and
 *       workflow {"overlap":K,"lease_seconds":600} without quiz, gold or dynamic overlap
 *       (min_confidence 0: every item gets exactly K judgments; the background
 *       aggregation still runs), imports DIR ({"kind":"dir"}),
 *       polls the batch until done with all N items accepted, prints the project id.
 *       The script snapshots tallyd's data dir after this, so runs skip the import.
 *
 *   bench_dispatch run --url URL[,URL...] --token ADMIN_TOKEN --project P --items N
 *                      [--workers W] [--seconds S] [--healthz-seconds H]
 *                      [--overlap K] [--tallyd-pid PID[,PID...]]
 *                      [--suffix SUF] [--target-suffix SUF] [--speed-targets 0|1]
 *       1. setup (admin token): project P must hold N items, all still new; creates
 *          W worker users.
 *       2. load: W threads, one keep-alive libcurl easy handle each, loop
 *          POST /v1/projects/{p}/work/next -> 200: POST /v1/assignments/{a}/submit
 *          {"answer":{"label":"cat"|"dog"},"duration_ms":1}; 204: that worker is done;
 *          until S seconds have passed (a pair started in time is finished).
 *       3. ceiling: the same W threads (same connections) GET /healthz for H seconds.
 *       4. verify (admin): page through GET /v1/projects/{p}/judgments: no item with
 *          more than K judgments, no (item, worker) pair or assignment twice, every
 *          acknowledged assignment present.
 *       Several nodes (tallyds sharing one store): --url may be repeated or a comma
 *       list; worker thread i talks to node i mod NODES (setup and verify use the
 *       first); --tallyd-pid likewise, tallyd CPU is the sum over the pids. --suffix
 *       is appended to every figure name (e.g. "_pg2"), --target-suffix to every
 *       target name; --speed-targets 0 leaves out the throughput and latency targets
 *       (the integrity targets are always printed).
 *       Prints `figure:` and `target:` lines on stdout, progress on stderr. Exit 0 when
 *       the figures were measured (even if a target is missed), 1 when something broke
 *       (the load could not run, the verification could not be read), 3 when setup
 *       failed (e.g. project P does not hold N new items).
 *
 * Latencies are taken with CLOCK_MONOTONIC around each curl_easy_perform (so they
 * include the client's request building and response parsing, which are tiny), kept
 * in per-thread arrays and merged at the end; percentiles are nearest-rank.
 */
#include "http_client.h"

#include <curl/curl.h>
#include <jansson.h>
#include <jpeglib.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The shared helpers (http_client.h) under this program's short names. */
#define logf_(...) bench_logf(LOG_PREFIX, __VA_ARGS__)
#define mono_s bench_mono_s
#define mono_us bench_mono_us
#define nap_ms bench_nap_ms
#define LOG_PREFIX "dispatch-bench: "
#define MAX_WORKERS 1024
#define MAX_ERROR_LOGS 12
#define MAX_NODES 16

/* ------------------------------------------------------------------ make-items */

/* Item seed's picture as a JPEG in *out (malloc'd by libjpeg: the caller frees it). */
static int encode_item_jpeg(long seed, unsigned char **out, unsigned long *outlen)
{
    enum { W = 32, H = 32, B = 4 };
    unsigned char px[W * H * 3];
    uint64_t r = (uint64_t)seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    unsigned char block[W / B][H / B][3];
    for (int by = 0; by < H / B; by++)
        for (int bx = 0; bx < W / B; bx++)
            for (int k = 0; k < 3; k++) {
                r ^= r << 13, r ^= r >> 7, r ^= r << 17;   /* xorshift64 */
                block[bx][by][k] = (unsigned char)(r >> 56);
            }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            memcpy(px + (y * W + x) * 3, block[x / B][y / B], 3);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);  /* in-memory encode of fixed input: errors are bugs */
    jpeg_create_compress(&c);
    *out = NULL;
    *outlen = 0;
    jpeg_mem_dest(&c, out, outlen);
    c.image_width = W;
    c.image_height = H;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 85, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = px + c.next_scanline * W * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return *outlen > 4 ? 0 : -1;
}

static int make_items(const char *dir, long count)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        logf_("error: mkdir %s: %s", dir, strerror(errno));
        return 1;
    }
    for (long i = 0; i < count; i++) {
        unsigned char *base;
        unsigned long baselen;
        if (encode_item_jpeg(i, &base, &baselen) < 0 || base[0] != 0xFF || base[1] != 0xD8) {
            logf_("error: libjpeg produced no JPEG");
            free(base);
            return 1;
        }
        unsigned char *buf = malloc(baselen + 128);   /* + the COM segment */
        if (!buf) {
            free(base);
            return 1;
        }
        char text[64], path[PATH_MAX];
        int tl = snprintf(text, sizeof text, "tally dispatch bench item %ld", i);
        size_t seglen = (size_t)tl + 2;  /* the length field counts itself */
        size_t n = 0;
        buf[n++] = 0xFF, buf[n++] = 0xD8;              /* SOI */
        buf[n++] = 0xFF, buf[n++] = 0xFE;              /* COM */
        buf[n++] = (unsigned char)(seglen >> 8), buf[n++] = (unsigned char)(seglen & 0xFF);
        memcpy(buf + n, text, (size_t)tl), n += (size_t)tl;
        memcpy(buf + n, base + 2, baselen - 2), n += baselen - 2;
        snprintf(path, sizeof path, "%s/item_%06ld.jpg", dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int ok = fd >= 0 && write(fd, buf, n) == (ssize_t)n;
        if (!ok)
            logf_("error: writing %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(buf);
        free(base);
        if (!ok)
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ nodes */

/* The nodes, "http://127.0.0.1:PORT"; the strings are argv's or g_url_copy's. */
static const char *g_bases[MAX_NODES];
static int g_nbases;
static char *g_url_copy[MAX_NODES];   /* comma lists split here (owned, freed at exit) */

/* ------------------------------------------------------------------ load phase */

typedef struct {
    uint32_t *v;
    size_t n, cap;
} lat_arr;

static void lat_push(lat_arr *a, uint64_t us)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 4096;
        uint32_t *p = realloc(a->v, nc * sizeof *p);
        if (!p)
            return;  /* out of memory: drop the sample rather than the run */
        a->v = p;
        a->cap = nc;
    }
    a->v[a->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

typedef struct {
    int64_t assignment, judgment;
} ack;

enum { OP_NEXT, OP_SUBMIT, OP_HEALTH, OP_N };
static const char *const op_names[OP_N] = {"next", "submit", "healthz"};

typedef struct {
    int idx;
    pthread_t tid;
    char token[256];
    bench_conn c;
    lat_arr lat[OP_N];
    ack *acks;
    size_t nacks, capacks;
    long judgments, healthz_ok;
    int out_of_work;           /* got 204 before the deadline */
} worker;

static worker *g_workers;
static int g_nworkers;
static int64_t g_project;
static double g_seconds = 10, g_health_seconds = 3;
static double g_t0;            /* load start (monotonic seconds) */
static pthread_barrier_t g_barrier;
static atomic_int g_abort;     /* a fatal answer: stop everyone */
static atomic_long g_errors[OP_N][601];  /* [op][status], 0 = transport error */
static atomic_int g_error_logs;

static void count_error(int op, long status, bench_conn *c, const char *what)
{
    if (status < 0 || status > 600)
        status = 600;
    atomic_fetch_add(&g_errors[op][status], 1);
    if (atomic_fetch_add(&g_error_logs, 1) < MAX_ERROR_LOGS)
        logf_("%s: %s %ld: %s", op_names[op], what, status, bench_snippet(c));
}

static void fatal_abort(int op, long status, bench_conn *c, const char *what)
{
    count_error(op, status, c, what);
    if (!atomic_exchange(&g_abort, 1))
        logf_("error: %s answered %ld (%s); stopping the load", op_names[op], status, what);
}

static void load_loop(worker *w)
{
    char path[128], spath[128], body[128];
    snprintf(path, sizeof path, "/v1/projects/%" PRId64 "/work/next", g_project);
    double deadline = g_t0 + g_seconds;
    long n = 0;
    while (!atomic_load(&g_abort) && mono_s() < deadline) {
        uint64_t a = mono_us();
        long st = bench_http(&w->c, "POST", path, "{}", 1);
        uint64_t b = mono_us();
        if (st == 204) {
            lat_push(&w->lat[OP_NEXT], b - a);
            w->out_of_work = 1;
            return;
        }
        if (st != 200) {
            if (st == 0 || st == 409 || st == 429 || st >= 500) {
                count_error(OP_NEXT, st, &w->c, "HTTP");
                if (st == 0 || st >= 500)
                    nap_ms(5);  /* do not spin on a broken server */
            } else {
                fatal_abort(OP_NEXT, st, &w->c, "unexpected status");
            }
            continue;
        }
        lat_push(&w->lat[OP_NEXT], b - a);
        json_t *j = bench_body_json(&w->c);
        int64_t asg = j ? bench_jint(j, "assignment_id") : -1;
        json_decref(j);
        if (asg < 0) {
            fatal_abort(OP_NEXT, st, &w->c, "200 without an assignment_id");
            return;
        }
        snprintf(spath, sizeof spath, "/v1/assignments/%" PRId64 "/submit", asg);
        snprintf(body, sizeof body, "{\"answer\":{\"label\":\"%s\"},\"duration_ms\":1}",
                 ((w->idx + n++) & 1) ? "dog" : "cat");
        a = mono_us();
        st = bench_http(&w->c, "POST", spath, body, 1);
        b = mono_us();
        if (st != 200) {
            /* Not acknowledged. A 5xx or transport error leaves the lease; the next
             * work/next hands the same assignment back and it is submitted again. */
            count_error(OP_SUBMIT, st, &w->c, "HTTP");
            if (st == 0 || st >= 500)
                nap_ms(5);
            continue;
        }
        lat_push(&w->lat[OP_SUBMIT], b - a);
        j = bench_body_json(&w->c);
        int64_t jid = j ? bench_jint(j, "judgment_id") : -1;
        json_decref(j);
        if (w->nacks == w->capacks) {
            size_t nc = w->capacks ? w->capacks * 2 : 1024;
            ack *p = realloc(w->acks, nc * sizeof *p);
            if (!p) {
                fatal_abort(OP_SUBMIT, st, &w->c, "out of memory");
                return;
            }
            w->acks = p;
            w->capacks = nc;
        }
        w->acks[w->nacks++] = (ack){asg, jid};
        w->judgments++;
    }
}

static void health_loop(worker *w)
{
    double deadline = g_t0 + g_health_seconds;
    while (!atomic_load(&g_abort) && mono_s() < deadline) {
        uint64_t a = mono_us();
        long st = bench_http(&w->c, "GET", "/healthz", NULL, 0);
        uint64_t b = mono_us();
        if (st != 200) {
            count_error(OP_HEALTH, st, &w->c, "HTTP");
            if (st == 0 || st >= 500)
                nap_ms(5);
            continue;
        }
        lat_push(&w->lat[OP_HEALTH], b - a);
        w->healthz_ok++;
    }
}

/* Each phase: all threads meet at a barrier, main sets g_t0, a second barrier lets
 * them go; the barrier after the load tells main that every worker is done. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(&g_barrier);  /* ready */
    pthread_barrier_wait(&g_barrier);  /* go */
    load_loop(w);
    pthread_barrier_wait(&g_barrier);  /* load done */
    pthread_barrier_wait(&g_barrier);  /* go: healthz */
    health_loop(w);
    return NULL;
}

/* ------------------------------------------------------------------ stats helpers */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* All threads' samples of one op, sorted. */
static lat_arr merged(int op)
{
    lat_arr m = {0};
    size_t total = 0;
    for (int i = 0; i < g_nworkers; i++)
        total += g_workers[i].lat[op].n;
    m.v = malloc((total ? total : 1) * sizeof *m.v);
    for (int i = 0; i < g_nworkers && m.v; i++) {
        memcpy(m.v + m.n, g_workers[i].lat[op].v, g_workers[i].lat[op].n * sizeof *m.v);
        m.n += g_workers[i].lat[op].n;
    }
    if (m.v)
        qsort(m.v, m.n, sizeof *m.v, cmp_u32);
    return m;
}

static double pct_ms(const lat_arr *m, double p)  /* nearest rank */
{
    if (!m->n)
        return 0;
    size_t k = (size_t)(p * (double)m->n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > m->n)
        k = m->n;
    return m->v[k - 1] / 1000.0;
}

static const char *g_suffix = "", *g_target_suffix = "";   /* argv's */

static void figure(const char *name, double v, int decimals, const char *unit)
{
    printf("figure: %s%s %.*f %s\n", name, g_suffix, decimals, v, unit);
}

static void target(const char *name, double v, int decimals, const char *op, double limit)
{
    printf("target: %s%s %.*f %s %g\n", name, g_target_suffix, decimals, v, op, limit);
    int ok = strcmp(op, "<=") == 0 ? v <= limit : v >= limit;
    if (!ok)
        logf_("target missed: %s%s = %.*f (want %s %g)", name, g_target_suffix, decimals, v, op, limit);
}

static double cpu_self_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double cpu_pid_s(long pid)  /* user+sys of another process; -1 if unknown */
{
    if (pid <= 0)
        return -1;
    char path[64], line[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    char *p = strrchr(line, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* after ") ": state(3) ... utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long g_pids[MAX_NODES];
static int g_npids;

static double cpu_pids_s(void)   /* the sum over the tallyds; -1 if any is unknown */
{
    double t = 0;
    for (int i = 0; i < g_npids; i++) {
        double x = cpu_pid_s(g_pids[i]);
        if (x < 0)
            return -1;
        t += x;
    }
    return g_npids ? t : -1;
}

/* Appends a comma list of URLs to g_bases; 0 ok, -1 too many or out of memory. */
static int add_urls(const char *list)
{
    if (!strchr(list, ',')) {
        if (g_nbases == MAX_NODES)
            return -1;
        g_bases[g_nbases++] = list;
        return 0;
    }
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n) {
            if (g_nbases == MAX_NODES || !(g_url_copy[g_nbases] = strndup(p, n)))
                return -1;
            g_bases[g_nbases] = g_url_copy[g_nbases];
            g_nbases++;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

/* Appends a comma list of pids to g_pids; -1 on a bad entry. */
static int add_pids(const char *list)
{
    for (const char *p = list; *p;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || g_npids == MAX_NODES)
            return -1;
        if (pid > 0)
            g_pids[g_npids++] = pid;
        p = end + (*end == ',');
    }
    return 0;
}

/* ------------------------------------------------------------------ setup */

static bench_conn g_admin;

/* prepare: the project and its items (snapshotted by the script, reused across runs) */
static int prepare(const char *items_dir, long items, int overlap)
{
    char body[4096], path[256];
    snprintf(body, sizeof body,
             "{\"name\":\"dispatch-bench-%ld\",\"media\":\"image\","
             "\"template\":{\"controls\":[{\"name\":\"label\",\"type\":\"choice\","
             "\"options\":[\"cat\",\"dog\"],\"required\":true}]},"
             "\"workflow\":{\"overlap\":%d,\"lease_seconds\":600,\"quiz\":{\"size\":0},\"gold_rate\":0,"
             "\"min_confidence\":0}}",
             (long)getpid(), overlap);
    long st = bench_http(&g_admin, "POST", "/v1/projects", body, 1);
    json_t *j = st == 201 ? bench_body_json(&g_admin) : NULL;
    g_project = j ? bench_jint(j, "id") : -1;
    json_decref(j);
    if (g_project < 0) {
        logf_("error: POST /v1/projects: HTTP %ld: %s", st, bench_snippet(&g_admin));
        return -1;
    }

    double t0 = mono_s();
    json_t *src = json_pack("{s:s, s:{s:s, s:s}}", "name", "dispatch-bench", "source", "kind",
                            "dir", "path", items_dir);
    char *s = json_dumps(src, JSON_COMPACT);
    json_decref(src);
    snprintf(path, sizeof path, "/v1/projects/%" PRId64 "/batches", g_project);
    st = bench_http(&g_admin, "POST", path, s, 1);
    free(s);
    j = st == 201 ? bench_body_json(&g_admin) : NULL;
    int64_t batch = j ? bench_jint(j, "id") : -1;
    json_decref(j);
    if (batch < 0) {
        logf_("error: POST %s: HTTP %ld: %s", path, st, bench_snippet(&g_admin));
        return -1;
    }
    snprintf(path, sizeof path, "/v1/batches/%" PRId64, batch);
    for (;;) {
        st = bench_http(&g_admin, "GET", path, NULL, 1);
        j = st == 200 ? bench_body_json(&g_admin) : NULL;
        if (!j) {
            logf_("error: GET %s: HTTP %ld: %s", path, st, bench_snippet(&g_admin));
            return -1;
        }
        const char *state = json_string_value(json_object_get(j, "state"));
        if (state && strcmp(state, "done") == 0) {
            int64_t acc = bench_jint(j, "accepted");
            json_decref(j);
            if (acc != items) {
                logf_("error: batch %" PRId64 " done with %" PRId64 " of %ld items accepted: %s",
                      batch, acc, items, bench_snippet(&g_admin));
                return -1;
            }
            break;
        }
        if (state && strcmp(state, "failed") == 0) {
            logf_("error: batch %" PRId64 " failed: %s", batch, bench_snippet(&g_admin));
            json_decref(j);
            return -1;
        }
        json_decref(j);
        if (mono_s() - t0 > 300) {
            logf_("error: batch %" PRId64 " not done after 300 s: %s", batch, bench_snippet(&g_admin));
            return -1;
        }
        nap_ms(50);
    }
    logf_("project %" PRId64 ": %ld items imported in %.2f s", g_project, items, mono_s() - t0);
    return 0;
}

/* run's setup: the project must hold the expected items, untouched; W worker users. */
static int setup(long items)
{
    char body[512], path[256];
    snprintf(path, sizeof path, "/v1/projects/%" PRId64 "/stats", g_project);
    long st = bench_http(&g_admin, "GET", path, NULL, 1);
    json_t *j = st == 200 ? bench_body_json(&g_admin) : NULL;
    int64_t total = j ? bench_jint(j, "items_total") : -1;
    int64_t fresh = j ? bench_jint(json_object_get(j, "items"), "new") : -1;
    json_decref(j);
    if (total != items || fresh != items) {
        logf_("error: project %" PRId64 " should hold %ld new items: GET %s: HTTP %ld: %s", g_project,
              items, path, st, bench_snippet(&g_admin));
        return -1;
    }
    for (int i = 0; i < g_nworkers; i++) {
        snprintf(body, sizeof body, "{\"name\":\"dispatch-bench-%ld-%" PRId64 "-w%d\",\"role\":\"worker\"}",
                 (long)getpid(), g_project, i);
        st = bench_http(&g_admin, "POST", "/v1/users", body, 1);
        j = st == 201 ? bench_body_json(&g_admin) : NULL;
        const char *tok = j ? json_string_value(json_object_get(j, "token")) : NULL;
        if (!tok || strlen(tok) >= sizeof g_workers[i].token) {
            logf_("error: POST /v1/users: HTTP %ld: %s", st, bench_snippet(&g_admin));
            json_decref(j);
            return -1;
        }
        snprintf(g_workers[i].token, sizeof g_workers[i].token, "%s", tok);
        json_decref(j);
    }
    return 0;
}

/* ------------------------------------------------------------------ verification */

typedef struct {
    int64_t id, item, assignment;
    char worker[72];
    int dup;
} judgment;

static int cmp_item_worker(const void *a, const void *b)
{
    const judgment *x = a, *y = b;
    if (x->item != y->item)
        return x->item < y->item ? -1 : 1;
    int c = strcmp(x->worker, y->worker);
    if (c)
        return c;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_assignment(const void *a, const void *b)
{
    const judgment *x = a, *y = b;
    if (x->assignment != y->assignment)
        return x->assignment < y->assignment ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

typedef struct {
    int64_t assignment;
    int worker_idx;
} ack_ref;

static int cmp_ack_ref(const void *a, const void *b)
{
    const ack_ref *x = a, *y = b;
    return x->assignment < y->assignment ? -1 : x->assignment > y->assignment;
}

typedef struct {
    long judgments_read, over_assigned, duplicates, lost, unacknowledged;
    long pseudonym_problems;
    int max_per_item;
} verdict;

static int fetch_judgments(judgment **out, size_t *nout)
{
    size_t n = 0, cap = 0;
    judgment *js = NULL;
    char cursor[256] = "", path[512];
    for (;;) {
        if (cursor[0]) {
            char *esc = curl_easy_escape(g_admin.h, cursor, 0);
            snprintf(path, sizeof path, "/v1/projects/%" PRId64 "/judgments?limit=1000&cursor=%s",
                     g_project, esc ? esc : cursor);
            curl_free(esc);
        } else {
            snprintf(path, sizeof path, "/v1/projects/%" PRId64 "/judgments?limit=1000", g_project);
        }
        long st = bench_http(&g_admin, "GET", path, NULL, 1);
        json_t *j = st == 200 ? bench_body_json(&g_admin) : NULL;
        json_t *items = j ? json_object_get(j, "items") : NULL;
        if (!json_is_array(items)) {
            logf_("error: GET %s: HTTP %ld: %s", path, st, bench_snippet(&g_admin));
            json_decref(j);
            free(js);
            return -1;
        }
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it) {
            if (n == cap) {
                cap = cap ? cap * 2 : 4096;
                judgment *p = realloc(js, cap * sizeof *p);
                if (!p) {
                    json_decref(j);
                    free(js);
                    return -1;
                }
                js = p;
            }
            judgment *x = &js[n++];
            memset(x, 0, sizeof *x);
            x->id = bench_jint(it, "id");
            x->item = bench_jint(it, "item_id");
            x->assignment = bench_jint(it, "assignment_id");
            json_t *wv = json_object_get(it, "worker");
            if (json_is_string(wv))
                snprintf(x->worker, sizeof x->worker, "%s", json_string_value(wv));
            else if (json_is_integer(wv))
                snprintf(x->worker, sizeof x->worker, "%" JSON_INTEGER_FORMAT, json_integer_value(wv));
            if (x->item < 0 || x->assignment < 0 || !x->worker[0]) {
                logf_("error: a judgment without item_id, assignment_id or worker: %s",
                      bench_snippet(&g_admin));
                json_decref(j);
                free(js);
                return -1;
            }
        }
        json_t *nc = json_object_get(j, "next_cursor");
        if (json_is_string(nc) && json_string_length(nc) > 0 && json_string_length(nc) < sizeof cursor)
            snprintf(cursor, sizeof cursor, "%s", json_string_value(nc));
        else if (json_is_integer(nc))
            snprintf(cursor, sizeof cursor, "%" JSON_INTEGER_FORMAT, json_integer_value(nc));
        else
            cursor[0] = 0;
        int more = cursor[0] && json_array_size(items) > 0;
        json_decref(j);
        if (!more)
            break;
    }
    *out = js;
    *nout = n;
    return 0;
}

static int verify(int overlap, verdict *v)
{
    memset(v, 0, sizeof *v);
    judgment *js = NULL;
    size_t n = 0;
    if (fetch_judgments(&js, &n) < 0)
        return -1;
    v->judgments_read = (long)n;

    /* per item counts and (item, worker) pairs */
    if (n)
        qsort(js, n, sizeof *js, cmp_item_worker);
    for (size_t i = 0; i < n;) {
        size_t k = i;
        while (k < n && js[k].item == js[i].item)
            k++;
        if ((int)(k - i) > v->max_per_item)
            v->max_per_item = (int)(k - i);
        if ((long)(k - i) > overlap)
            v->over_assigned++;
        for (size_t m = i + 1; m < k; m++)
            if (strcmp(js[m].worker, js[m - 1].worker) == 0)
                js[m].dup = 1;
        i = k;
    }
    /* the same assignment twice */
    if (n)
        qsort(js, n, sizeof *js, cmp_assignment);
    for (size_t i = 1; i < n; i++)
        if (js[i].assignment == js[i - 1].assignment)
            js[i].dup = 1;
    for (size_t i = 0; i < n; i++)
        v->duplicates += js[i].dup;

    /* acknowledged submissions: each must be there (js is sorted by assignment) */
    size_t nacks = 0;
    for (int w = 0; w < g_nworkers; w++)
        nacks += g_workers[w].nacks;
    ack_ref *acks = malloc((nacks ? nacks : 1) * sizeof *acks);
    if (!acks) {
        free(js);
        return -1;
    }
    size_t a = 0;
    for (int w = 0; w < g_nworkers; w++)
        for (size_t i = 0; i < g_workers[w].nacks; i++)
            acks[a++] = (ack_ref){g_workers[w].acks[i].assignment, w};
    qsort(acks, nacks, sizeof *acks, cmp_ack_ref);
    /* pseudonym of each bench worker: must be one per worker, distinct across workers */
    char (*pseud)[72] = calloc((size_t)g_nworkers, sizeof *pseud);
    size_t j = 0;
    long matched = 0;
    for (size_t i = 0; i < nacks; i++) {
        if (i > 0 && acks[i].assignment == acks[i - 1].assignment)
            continue;  /* acknowledged twice (a resubmission): counted once */
        while (j < n && js[j].assignment < acks[i].assignment)
            j++;
        if (j >= n || js[j].assignment != acks[i].assignment) {
            if (v->lost < 5)
                logf_("lost: assignment %" PRId64 " was acknowledged but has no judgment",
                      acks[i].assignment);
            v->lost++;
            continue;
        }
        matched++;
        if (pseud) {
            char *p = pseud[acks[i].worker_idx];
            if (!p[0])
                snprintf(p, 72, "%s", js[j].worker);
            else if (strcmp(p, js[j].worker) != 0)
                v->pseudonym_problems++;
        }
    }
    /* judgments in the project that no submit acknowledged (duplicates excluded) */
    long distinct = 0;
    for (size_t i = 0; i < n; i++)
        distinct += !js[i].dup;
    v->unacknowledged = distinct - matched;
    if (pseud)
        for (int x = 0; x < g_nworkers; x++)
            for (int y = x + 1; y < g_nworkers; y++)
                if (pseud[x][0] && strcmp(pseud[x], pseud[y]) == 0)
                    v->pseudonym_problems++;
    free(pseud);
    free(acks);
    free(js);
    return 0;
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_dispatch make-items DIR COUNT\n"
            "       bench_dispatch prepare --url URL --token TOKEN --items-dir DIR --items N\n"
            "                      [--overlap K]\n"
            "       bench_dispatch run --url URL[,URL...] --token TOKEN --project P --items N\n"
            "                      [--workers W] [--seconds S] [--healthz-seconds H]\n"
            "                      [--overlap K] [--tallyd-pid PID[,PID...]]\n"
            "                      [--suffix SUF] [--target-suffix SUF] [--speed-targets 0|1]\n");
}

static long errors_of(int op)
{
    long t = 0;
    for (int s = 0; s <= 600; s++)
        t += atomic_load(&g_errors[op][s]);
    return t;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "make-items") == 0) {
        if (argc != 4) {
            usage();
            return 2;
        }
        char *end;
        long count = strtol(argv[3], &end, 10);
        if (*end || count < 1) {
            usage();
            return 2;
        }
        return make_items(argv[2], count);
    }
    int is_prepare = argc >= 2 && strcmp(argv[1], "prepare") == 0;
    if (argc < 2 || (!is_prepare && strcmp(argv[1], "run") != 0)) {
        usage();
        return 2;
    }
    const char *token = NULL, *items_dir = NULL;
    long items = 0, workers = 64, overlap = 3, speed_targets = 1;
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(k, "--url") == 0) {
            if (add_urls(val) < 0) {
                logf_("error: at most %d nodes", MAX_NODES);
                return 2;
            }
        } else if (strcmp(k, "--suffix") == 0)
            g_suffix = val;
        else if (strcmp(k, "--target-suffix") == 0)
            g_target_suffix = val;
        else if (strcmp(k, "--speed-targets") == 0)
            speed_targets = atol(val);
        else if (strcmp(k, "--token") == 0)
            token = val;
        else if (strcmp(k, "--items-dir") == 0)
            items_dir = val;
        else if (strcmp(k, "--project") == 0)
            g_project = atol(val);
        else if (strcmp(k, "--items") == 0)
            items = atol(val);
        else if (strcmp(k, "--workers") == 0)
            workers = atol(val);
        else if (strcmp(k, "--seconds") == 0)
            g_seconds = atof(val);
        else if (strcmp(k, "--healthz-seconds") == 0)
            g_health_seconds = atof(val);
        else if (strcmp(k, "--overlap") == 0)
            overlap = atol(val);
        else if (strcmp(k, "--tallyd-pid") == 0) {
            if (add_pids(val) < 0) {
                usage();
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    if (!g_nbases || !token || items < 1 || workers < 1 || workers > MAX_WORKERS ||
        (is_prepare ? !items_dir : g_project < 1) ||
        g_seconds <= 0 || g_health_seconds < 0 || overlap < 1 || overlap > 100) {
        usage();
        return 2;
    }
    g_nworkers = (int)workers;
    if (curl_global_init(CURL_GLOBAL_ALL) != 0 || bench_conn_init(&g_admin, token, g_bases[0]) < 0) {
        logf_("error: libcurl initialisation failed");
        return 1;
    }
    g_workers = calloc((size_t)workers, sizeof *g_workers);
    if (!g_workers)
        return 1;

    if (is_prepare) {
        logf_("prepare: a project and a dir import of %ld items", items);
        if (prepare(items_dir, items, (int)overlap) < 0)
            return 1;
        printf("%" PRId64 "\n", g_project);
        return 0;
    }
    logf_("setup: %ld worker users", workers);
    if (setup(items) < 0)
        return 3;  /* the script takes 3 to mean: the prepared project is unusable */

    /* Threads and connections are made before the clock starts. */
    pthread_barrier_init(&g_barrier, NULL, (unsigned)workers + 1);
    for (int i = 0; i < g_nworkers; i++) {
        worker *w = &g_workers[i];
        w->idx = i;
        if (bench_conn_init(&w->c, w->token, g_bases[i % g_nbases]) < 0) {
            logf_("error: curl_easy_init failed");
            return 1;
        }
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 0; i < g_nworkers; i++)
        if (pthread_create(&g_workers[i].tid, &attr, worker_main, &g_workers[i]) != 0) {
            logf_("error: pthread_create failed");
            return 1;
        }

    logf_("load: %d workers on %d node%s, next+submit for %.1f s", g_nworkers, g_nbases,
          g_nbases > 1 ? "s" : "", g_seconds);
    double cpu0 = cpu_self_s(), tcpu0 = cpu_pids_s();
    pthread_barrier_wait(&g_barrier);  /* every worker is ready */
    g_t0 = mono_s();
    pthread_barrier_wait(&g_barrier);  /* go */
    pthread_barrier_wait(&g_barrier);  /* every worker is done */
    double t_load = mono_s() - g_t0;
    double cpu1 = cpu_self_s(), tcpu1 = cpu_pids_s();
    g_t0 = mono_s();
    pthread_barrier_wait(&g_barrier);  /* go: healthz */
    logf_("ceiling: %d connections GET /healthz for %.1f s", g_nworkers, g_health_seconds);
    for (int i = 0; i < g_nworkers; i++)
        pthread_join(g_workers[i].tid, NULL);
    double t_health = mono_s() - g_t0;
    double tcpu2 = cpu_pids_s();

    long judgments = 0, health = 0, out_of_work = 0;
    for (int i = 0; i < g_nworkers; i++) {
        judgments += g_workers[i].judgments;
        health += g_workers[i].healthz_ok;
        out_of_work += g_workers[i].out_of_work;
    }
    long errors = errors_of(OP_NEXT) + errors_of(OP_SUBMIT) + errors_of(OP_HEALTH);
    for (int op = 0; op < OP_N; op++)
        for (int s = 0; s <= 600; s++) {
            long c = atomic_load(&g_errors[op][s]);
            if (c && s)
                logf_("errors: %s answered HTTP %d %ld times", op_names[op], s, c);
            else if (c)
                logf_("errors: %s failed in transport %ld times", op_names[op], c);
        }
    if (out_of_work)
        logf_("warning: %ld workers ran out of work before %.0f s (raise the item count)",
              out_of_work, g_seconds);

    logf_("verify: reading the project's judgments");
    verdict v;
    int verified = verify((int)overlap, &v) == 0;
    if (verified) {
        logf_("verify: %ld judgments in the project (max %d per item), %ld acknowledged", v.judgments_read,
              v.max_per_item, judgments);
        if (v.unacknowledged)
            logf_("note: %ld judgments in the project were never acknowledged to the bench",
                  v.unacknowledged);
        if (v.pseudonym_problems)
            logf_("warning: worker pseudonyms are not one per worker (%ld mismatches)",
                  v.pseudonym_problems);
    }

    lat_arr mn = merged(OP_NEXT), ms = merged(OP_SUBMIT), mh = merged(OP_HEALTH);
    if (g_nbases > 1)
        figure("nodes", (double)g_nbases, 0, "nodes");
    figure("workers", (double)g_nworkers, 0, "workers");
    figure("items", (double)items, 0, "items");
    figure("duration_s", t_load, 2, "s");
    figure("judgments", (double)judgments, 0, "judgments");
    figure("judgments_per_s", judgments / t_load, 0, "judgments/s");
    figure("next_p50_ms", pct_ms(&mn, 0.50), 2, "ms");
    figure("next_p99_ms", pct_ms(&mn, 0.99), 2, "ms");
    figure("submit_p50_ms", pct_ms(&ms, 0.50), 2, "ms");
    figure("submit_p99_ms", pct_ms(&ms, 0.99), 2, "ms");
    figure("healthz_req_per_s", t_health > 0 ? health / t_health : 0, 0, "req/s");
    figure("healthz_p99_ms", pct_ms(&mh, 0.99), 2, "ms");
    figure("http_errors", (double)errors, 0, "responses");
    if (tcpu0 >= 0 && tcpu1 >= 0)
        figure("tallyd_cpu_percent", 100 * (tcpu1 - tcpu0) / t_load, 0, "%");
    if (tcpu1 >= 0 && tcpu2 >= 0 && t_health > 0)
        figure("tallyd_healthz_cpu_percent", 100 * (tcpu2 - tcpu1) / t_health, 0, "%");
    figure("client_cpu_percent", 100 * (cpu1 - cpu0) / t_load, 0, "%");
    if (verified) {
        figure("over_assigned_items", (double)v.over_assigned, 0, "items");
        figure("duplicate_judgments", (double)v.duplicates, 0, "judgments");
        figure("lost_submissions", (double)v.lost, 0, "judgments");
    }
    if (speed_targets) {
        target("judgments_per_s", judgments / t_load, 0, ">=", 2000);
        target("next_p99_ms", pct_ms(&mn, 0.99), 2, "<=", 50);
        target("submit_p99_ms", pct_ms(&ms, 0.99), 2, "<=", 50);
    }
    if (verified) {
        target("over_assigned_items", (double)v.over_assigned, 0, "<=", 0);
        target("duplicate_judgments", (double)v.duplicates, 0, "<=", 0);
        target("lost_submissions", (double)v.lost, 0, "<=", 0);
    }
    fflush(stdout);

    int rc = 0;
    if (!verified) {
        logf_("error: could not read the judgments back; correctness not checked");
        rc = 1;
    }
    if (atomic_load(&g_abort)) {
        logf_("error: the load was stopped by an unexpected answer");
        rc = 1;
    }
    if (judgments == 0) {
        logf_("error: no judgment was acknowledged");
        rc = 1;
    }
    for (int i = 0; i < g_nworkers; i++) {
        bench_conn_free(&g_workers[i].c);
        for (int op = 0; op < OP_N; op++)
            free(g_workers[i].lat[op].v);
        free(g_workers[i].acks);
    }
    free(mn.v), free(ms.v), free(mh.v);
    free(g_workers);
    bench_conn_free(&g_admin);
    for (int i = 0; i < MAX_NODES; i++)
        free(g_url_copy[i]);
    curl_global_cleanup();
    return rc;
}
