/* prelabel-images.c -- the image pre-labeling benchmark (driven by tools/bench/prelabel-images):
 * how many human judgments the built-in image classifier saves on Fashion-MNIST, and
 * at what accuracy.
 *
 *   bench_prelabel-images make-items DIR COUNT IMAGES_IDX LABELS_IDX
 *       Writes the first COUNT Fashion-MNIST images (28x28 gray, idx3 file) as JPEGs
 *       DIR/fm_NNNNNN.jpg (libjpeg, quality 95) and their true classes, one per line,
 *       to DIR/labels.txt (line N+1 = image N).
 *
 *   bench_prelabel-images prepare --url URL --token ADMIN_TOKEN --items-dir DIR
 *       Creates an image project with one choice control "label" (the 10 classes),
 *       imports DIR ({"kind":"dir"}), waits for the batch, prints the project id. The
 *       script snapshots tallyd's data dir after this; both runs start from a copy.
 *
 *   bench_prelabel-images run --url URL --token ADMIN_TOKEN --project P --labels FILE
 *                             --mode plain|model [--workers W] [--seed S] [--think-ms T]
 *       Sets the project's workflow (the same crowd settings in both modes: overlap 3,
 *       Dawid-Skene, dynamic overlap up to 7 judgments while the result's confidence
 *       is below 0.95; "model" adds the image-classifier with prelabel.target_accuracy
 *       0.95, verify_rate 0.05 and verify_from 0.5, attached and run over every item:
 *       predictions scoring 0.5 up to the derived threshold go to the confirm step, one
 *       worker whose agreement finishes the item). Then W simulated
 *       workers (threads, one libcurl connection each) loop work/next, think T ms
 *       (default 0), submit, until
 *       no item is new, labeling or labeled. Each worker has an accuracy drawn from
 *       0.6..0.95 (seeded), shifted per class (shirts are hard, trousers and bags
 *       easy); a wrong answer is mostly a look-alike class (tops among tops, shoes
 *       among shoes). Finally every result (done and review) is compared with the true
 *       class. Judgments are the project's own count (GET /stats: every submitted
 *       judgment, confirm steps and verification samples included). Prints `figure:`
 *       lines and one `result:` line the script combines (auto = accepted with no
 *       human judgment):
 *       result: judgments=J items=N results=R correct=C auto=A seconds=S
 *
 * Progress goes to stderr. Exit 0 when measured, 1 when something broke.
 */
#include "http_client.h"

#include <curl/curl.h>
#include <jansson.h>
#include <jpeglib.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* The shared helpers (http_client.h) under this program's short names. */
#define logf_(...) bench_logf(LOG_PREFIX, __VA_ARGS__)
#define mono_s bench_mono_s
#define mono_us bench_mono_us
#define nap_ms bench_nap_ms
#define LOG_PREFIX "prelabel-images: "
#define MAX_WORKERS 256
#define CLASSES 10
#define RUN_TIMEOUT_S 900

static const char *const class_names[CLASSES] = {"tshirt", "trouser", "pullover", "dress", "coat",
                                                 "sandal", "shirt",   "sneaker",  "bag",   "ankle_boot"};
/* Look-alike groups: a wrong answer stays in the group 3 times in 4. */
static const int class_group[CLASSES] = {0, 1, 0, 2, 0, 3, 0, 3, 4, 3};
/* Per-class shift of a worker's accuracy. */
static const double class_shift[CLASSES] = {-0.05, 0.05, -0.08, -0.02, -0.08, 0.0, -0.15, 0.0, 0.05, 0.03};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s)
{
    return (double)(splitmix(s) >> 11) / 9007199254740992.0;
}

/* ------------------------------------------------------------------ make-items */

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            unsigned char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int write_jpeg(const char *path, const unsigned char *px, int w, int h)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);   /* in-memory pixels of a fixed shape: errors are bugs */
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 1;
    c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * (size_t)w);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return fclose(f) == 0 ? 0 : -1;
}

static int make_items(const char *dir, long count, const char *images_path, const char *labels_path)
{
    size_t ilen = 0, llen = 0;
    unsigned char *images = read_file(images_path, &ilen), *labels = read_file(labels_path, &llen);
    int rc = 1;
    if (!images || !labels || ilen < 16 || llen < 8 || be32(images) != 0x803 || be32(labels) != 0x801) {
        logf_("error: %s / %s are not idx3 images / idx1 labels", images_path, labels_path);
        goto out;
    }
    uint32_t n = be32(images + 4), rows = be32(images + 8), cols = be32(images + 12);
    if (count > (long)n || be32(labels + 4) < n || ilen < 16 + (size_t)n * rows * cols || llen < 8 + (size_t)n) {
        logf_("error: the dataset has %u images, %ld asked for", n, count);
        goto out;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        logf_("error: mkdir %s: %s", dir, strerror(errno));
        goto out;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/labels.txt", dir);
    FILE *lf = fopen(path, "w");
    if (!lf)
        goto out;
    for (long i = 0; i < count; i++) {
        snprintf(path, sizeof path, "%s/fm_%06ld.jpg", dir, i);
        if (write_jpeg(path, images + 16 + (size_t)i * rows * cols, (int)cols, (int)rows) < 0) {
            logf_("error: writing %s", path);
            fclose(lf);
            goto out;
        }
        fprintf(lf, "%d\n", labels[8 + i]);
    }
    rc = fclose(lf) == 0 ? 0 : 1;
out:
    free(images);
    free(labels);
    return rc;
}

/* ------------------------------------------------------------------ HTTP helpers */

static const char *g_base;   /* argv's --url: every connection talks to it */

/* A count that may be left out when zero (stats' item states). */
static int64_t jcount(json_t *obj, const char *key)
{
    int64_t n = bench_jint(obj, key);
    return n < 0 ? 0 : n;
}

/* A request whose status must be `want`; its JSON body (new reference) or NULL. */
static json_t *call(bench_conn *c, const char *method, const char *path, const char *body, long want)
{
    long st = bench_http(c, method, path, body, 1);
    json_t *j = st == want ? bench_body_json(c) : NULL;
    if (!j)
        logf_("error: %s %s: HTTP %ld: %s", method, path, st, bench_snippet(c));
    return j;
}

/* ------------------------------------------------------------------ prepare */

static int prepare(bench_conn *admin, const char *items_dir)
{
    char body[2048], path[256], options[512] = "";
    for (int c = 0; c < CLASSES; c++)
        snprintf(options + strlen(options), sizeof options - strlen(options), "%s\"%s\"", c ? "," : "",
                 class_names[c]);
    snprintf(body, sizeof body,
             "{\"name\":\"fashion-mnist\",\"media\":\"image\",\"template\":{\"controls\":[{\"name\":\"label\","
             "\"type\":\"choice\",\"options\":[%s],\"required\":true}]}}",
             options);
    json_t *j = call(admin, "POST", "/v1/projects", body, 201);
    int64_t project = bench_jint(j, "id");
    json_decref(j);
    if (project < 1)
        return -1;
    json_t *src = json_pack("{s:s,s:{s:s,s:s}}", "name", "fashion-mnist", "source", "kind", "dir", "path", items_dir);
    char *s = json_dumps(src, JSON_COMPACT);
    json_decref(src);
    snprintf(path, sizeof path, "/v1/projects/%" PRId64 "/batches", project);
    j = call(admin, "POST", path, s, 201);
    free(s);
    int64_t batch = bench_jint(j, "id");
    json_decref(j);
    if (batch < 1)
        return -1;
    double t0 = mono_s();
    snprintf(path, sizeof path, "/v1/batches/%" PRId64, batch);
    for (;;) {
        j = call(admin, "GET", path, NULL, 200);
        if (!j)
            return -1;
        const char *state = json_string_value(json_object_get(j, "state"));
        if (state && (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0)) {
            logf_("project %" PRId64 ": batch %s in %.1f s: %" PRId64 " accepted, %" PRId64 " duplicates, %" PRId64
                  " rejected",
                  project, state, mono_s() - t0, bench_jint(j, "accepted"), bench_jint(j, "duplicates"), bench_jint(j, "rejected"));
            int ok = strcmp(state, "done") == 0 && bench_jint(j, "accepted") > 0;
            json_decref(j);
            if (!ok)
                return -1;
            break;
        }
        json_decref(j);
        if (mono_s() - t0 > 900) {
            logf_("error: batch %" PRId64 " not done after 900 s", batch);
            return -1;
        }
        nap_ms(200);
    }
    printf("%" PRId64 "\n", project);
    return 0;
}

/* ------------------------------------------------------------------ run */

static struct {
    int64_t project;
    int *truth;               /* by item id - id_lo: true class, -1 unknown */
    int64_t id_lo, id_hi;
    int nworkers;
    int think_ms;             /* each worker's time per judgment (0: as fast as tallyd answers) */
    double verify_from;       /* the model run's prelabel.verify_from */
    int uncertain_first;      /* and prelabel.uncertain_first */
    int min_calibration;      /* and prelabel.min_calibration */
    uint64_t seed;
    atomic_int stop;
    atomic_long judgments, errors;
} g;

typedef struct {
    int index;
    char token[128];
    double accuracy;
    uint64_t rng;
    pthread_t thread;
} worker;

static int truth_of(int64_t item)
{
    return item >= g.id_lo && item <= g.id_hi ? g.truth[item - g.id_lo] : -1;
}

/* The simulated worker's answer for an item of class truth. */
static int answer_of(worker *w, int truth)
{
    double p = w->accuracy + class_shift[truth];
    p = p < 0.35 ? 0.35 : p > 0.99 ? 0.99 : p;
    if (uniform(&w->rng) < p)
        return truth;
    int mates[CLASSES], n = 0;
    for (int c = 0; c < CLASSES; c++)
        if (c != truth && class_group[c] == class_group[truth])
            mates[n++] = c;
    if (n && uniform(&w->rng) < 0.75)
        return mates[splitmix(&w->rng) % (uint64_t)n];
    int c = (int)(splitmix(&w->rng) % (CLASSES - 1));
    return c >= truth ? c + 1 : c;
}

static void *work_loop(void *arg)
{
    worker *w = arg;
    bench_conn c;
    if (bench_conn_init(&c, w->token, g_base) < 0) {
        atomic_fetch_add(&g.errors, 1);
        return NULL;
    }
    char path[128], body[160];
    snprintf(path, sizeof path, "/v1/projects/%" PRId64 "/work/next", g.project);
    while (!atomic_load(&g.stop)) {
        long st = bench_http(&c, "POST", path, "{}", 1);
        if (st == 204) {
            nap_ms(100);   /* more may come: dynamic overlap, a model's second look */
            continue;
        }
        json_t *t = st == 200 ? bench_body_json(&c) : NULL;
        int64_t assignment = bench_jint(t, "assignment_id"), item = bench_jint(json_object_get(t, "item"), "id");
        json_decref(t);
        int truth = truth_of(item);
        if (assignment < 1 || truth < 0) {
            if (atomic_fetch_add(&g.errors, 1) < 5)
                logf_("error: work/next: HTTP %ld: %s", st, bench_snippet(&c));
            nap_ms(100);
            continue;
        }
        if (g.think_ms > 0)
            nap_ms(g.think_ms);
        snprintf(body, sizeof body, "{\"answer\":{\"label\":\"%s\"},\"duration_ms\":4000}",
                 class_names[answer_of(w, truth)]);
        char sub[96];
        snprintf(sub, sizeof sub, "/v1/assignments/%" PRId64 "/submit", assignment);
        st = bench_http(&c, "POST", sub, body, 1);
        if (st == 200)
            atomic_fetch_add(&g.judgments, 1);
        else if (atomic_fetch_add(&g.errors, 1) < 5)
            logf_("error: submit: HTTP %ld: %s", st, bench_snippet(&c));
    }
    bench_conn_free(&c);
    return NULL;
}

/* Item id -> true class, from the items' names (fm_NNNNNN.jpg) and the labels file. */
static int load_truth(bench_conn *admin, const char *labels_path)
{
    FILE *f = fopen(labels_path, "r");
    if (!f) {
        logf_("error: %s: %s", labels_path, strerror(errno));
        return -1;
    }
    size_t n = 0, cap = 0;
    int *labels = NULL, v;
    while (fscanf(f, "%d", &v) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            int *p = realloc(labels, cap * sizeof *p);
            if (!p) {
                fclose(f);
                free(labels);
                return -1;
            }
            labels = p;
        }
        labels[n++] = v;
    }
    fclose(f);
    /* Two passes over the items: the id range, then the map. */
    int rc = -1;
    g.id_lo = INT64_MAX;
    g.id_hi = 0;
    for (int pass = 0; pass < 2; pass++) {
        char cursor[128] = "";
        for (;;) {
            char path[400];
            snprintf(path, sizeof path, "/v1/projects/%" PRId64 "/items?limit=1000%s%s", g.project,
                     cursor[0] ? "&cursor=" : "", cursor);
            json_t *j = call(admin, "GET", path, NULL, 200);
            if (!j)
                goto out;
            size_t i;
            json_t *it;
            json_array_foreach(json_object_get(j, "items"), i, it) {
                int64_t id = bench_jint(it, "id");
                const char *name = json_string_value(json_object_get(it, "name"));
                long idx = name && strncmp(name, "fm_", 3) == 0 ? strtol(name + 3, NULL, 10) : -1;
                if (pass == 0) {
                    g.id_lo = id < g.id_lo ? id : g.id_lo;
                    g.id_hi = id > g.id_hi ? id : g.id_hi;
                } else if (idx >= 0 && (size_t)idx < n && id >= g.id_lo && id <= g.id_hi) {
                    g.truth[id - g.id_lo] = labels[idx];
                }
            }
            const char *next = json_string_value(json_object_get(j, "next_cursor"));
            snprintf(cursor, sizeof cursor, "%s", next ? next : "");
            json_decref(j);
            if (!cursor[0])
                break;
        }
        if (pass == 0) {
            if (g.id_hi < g.id_lo)
                goto out;
            g.truth = malloc((size_t)(g.id_hi - g.id_lo + 1) * sizeof *g.truth);
            if (!g.truth)
                goto out;
            for (int64_t k = 0; k <= g.id_hi - g.id_lo; k++)
                g.truth[k] = -1;
        }
    }
    rc = 0;
out:
    free(labels);
    return rc;
}

typedef struct {
    int64_t results, correct, by_model, by_model_right;   /* by_model: auto-accepted, no human judgment */
    int64_t confirmed, confirmed_right;                   /* the model's answer confirmed by one worker */
    int64_t per_class[CLASSES], per_class_right[CLASSES];
} tally_t;

static int score_results(bench_conn *admin, const char *state, tally_t *t)
{
    char cursor[128] = "";
    for (;;) {
        char path[400];
        snprintf(path, sizeof path, "/v1/projects/%" PRId64 "/results?state=%s&limit=1000%s%s", g.project, state,
                 cursor[0] ? "&cursor=" : "", cursor);
        json_t *j = call(admin, "GET", path, NULL, 200);
        if (!j)
            return -1;
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(j, "items"), i, r) {
            int truth = truth_of(bench_jint(r, "item_id"));
            if (truth < 0)
                continue;
            const char *label = json_string_value(json_object_get(json_object_get(r, "answer"), "label"));
            int right = label && strcmp(label, class_names[truth]) == 0;
            const char *method = json_string_value(json_object_get(r, "method"));
            t->results++;
            t->correct += right;
            t->per_class[truth]++;
            t->per_class_right[truth] += right;
            int model = method && strcmp(method, "model") == 0;
            int confirmed = method && strcmp(method, "confirmed") == 0;
            t->by_model += model;
            t->by_model_right += model && right;
            t->confirmed += confirmed;
            t->confirmed_right += confirmed && right;
        }
        const char *next = json_string_value(json_object_get(j, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(j);
        if (!cursor[0])
            return 0;
    }
}

static int run(bench_conn *admin, const char *labels_path, int with_model)
{
    char path[256], body[2048];
    if (load_truth(admin, labels_path) < 0)
        return -1;
    snprintf(path, sizeof path, "/v1/projects/%" PRId64, g.project);
    char prelabel[512];
    snprintf(prelabel, sizeof prelabel,
             ",\"prelabel\":{\"target_accuracy\":0.95,\"min_calibration\":%d,\"verify_rate\":0.05,"
             "\"verify_from\":%g,\"min_train\":300,\"retrain_growth\":0.25,\"uncertain_first\":%s,\"model_vote\":true}",
             g.min_calibration, g.verify_from, g.uncertain_first ? "true" : "false");
    snprintf(body, sizeof body,
             "{\"workflow\":{\"overlap\":3,\"max_overlap\":7,\"min_confidence\":0.95,\"gold_rate\":0,"
             "\"min_trust\":0,\"quiz\":{\"size\":0},\"lease_seconds\":600,\"consensus\":{\"choice\":\"dawid_skene\"},"
             "\"checks\":{\"same_answer_min\":0},\"review\":{\"sample_rate\":0}%s}}",
             with_model ? prelabel : "");
    json_t *j = call(admin, "PATCH", path, body, 200);
    if (!j)
        return -1;
    json_decref(j);
    if (with_model) {
        snprintf(path, sizeof path, "/v1/projects/%" PRId64 "/models", g.project);
        j = call(admin, "POST", path, "{\"name\":\"classifier\",\"kind\":\"builtin\",\"model\":\"image-classifier\"}",
                 201);
        int64_t model = bench_jint(j, "id");
        json_decref(j);
        if (model < 1)
            return -1;
        /* The items exist already: an explicit run covers them. */
        snprintf(path, sizeof path, "/v1/projects/%" PRId64 "/models/%" PRId64 "/run", g.project, model);
        j = call(admin, "POST", path, NULL, 202);
        json_decref(j);
    }
    worker *ws = calloc((size_t)g.nworkers, sizeof *ws);
    if (!ws)
        return -1;
    uint64_t seed = g.seed;
    for (int i = 0; i < g.nworkers; i++) {
        ws[i].index = i;
        ws[i].accuracy = 0.6 + 0.35 * uniform(&seed);
        ws[i].rng = splitmix(&seed);
        snprintf(body, sizeof body, "{\"name\":\"crowd-%" PRId64 "-%d-%d\",\"role\":\"worker\"}", g.project,
                 with_model, i);
        j = call(admin, "POST", "/v1/users", body, 201);
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (!tok || strlen(tok) >= sizeof ws[i].token) {
            json_decref(j);
            free(ws);
            return -1;
        }
        snprintf(ws[i].token, sizeof ws[i].token, "%s", tok);
        json_decref(j);
    }
    double t0 = mono_s(), last_log = t0;
    int started = 0;
    for (; started < g.nworkers; started++)
        if (pthread_create(&ws[started].thread, NULL, work_loop, &ws[started]) != 0)
            break;
    int rc = started == g.nworkers ? 0 : -1;
    snprintf(path, sizeof path, "/v1/projects/%" PRId64 "/stats", g.project);
    int64_t items_total = 0;
    while (rc == 0) {
        nap_ms(250);
        j = call(admin, "GET", path, NULL, 200);
        if (!j) {
            rc = -1;
            break;
        }
        json_t *items = json_object_get(j, "items");
        int64_t open = jcount(items, "new") + jcount(items, "labeling") + jcount(items, "labeled");
        items_total = bench_jint(j, "items_total");
        if (mono_s() - last_log > 5) {
            last_log = mono_s();
            logf_("%.0f s: %ld judgments, %" PRId64 " of %" PRId64 " items open (new %" PRId64 ", labeling %" PRId64
                  ")",
                  mono_s() - t0, atomic_load(&g.judgments), open, items_total, jcount(items, "new"),
                  jcount(items, "labeling"));
        }
        json_decref(j);
        if (open == 0)
            break;
        if (mono_s() - t0 > RUN_TIMEOUT_S) {
            logf_("error: items still open after %d s", RUN_TIMEOUT_S);
            rc = -1;
        }
    }
    double secs = mono_s() - t0;
    atomic_store(&g.stop, 1);
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].thread, NULL);
    free(ws);
    if (rc < 0)
        return -1;
    j = call(admin, "GET", path, NULL, 200);
    /* Every human judgment: counting ones plus any excluded later (rework, spam). */
    int64_t judgments = bench_jint(j, "judgments") + jcount(j, "excluded_judgments");
    json_decref(j);
    if (judgments != atomic_load(&g.judgments))
        logf_("note: tallyd counts %" PRId64 " judgments, the workers had %ld submissions acknowledged", judgments,
              atomic_load(&g.judgments));
    tally_t t = {0};
    if (score_results(admin, "done", &t) < 0 || score_results(admin, "review", &t) < 0)
        return -1;
    const char *mode = with_model ? "with" : "without";
    printf("figure: %s_model judgments %" PRId64 " (%.2f per item), items %" PRId64 ", accuracy %.4f, auto-accepted %" PRId64
           ", %.1f s, %ld request errors\n",
           mode, judgments, items_total ? (double)judgments / (double)items_total : 0, items_total,
           t.results ? (double)t.correct / (double)t.results : 0, t.by_model, secs, atomic_load(&g.errors));
    if (with_model) {
        int64_t rest = t.results - t.by_model - t.confirmed;
        printf("figure: with_model accuracy of the auto-accepted %.4f (%" PRId64 "), of the confirmed by one worker %.4f (%" PRId64
               "), of the rest %.4f (%" PRId64 ")\n",
               t.by_model ? (double)t.by_model_right / (double)t.by_model : 0, t.by_model,
               t.confirmed ? (double)t.confirmed_right / (double)t.confirmed : 0, t.confirmed,
               rest > 0 ? (double)(t.correct - t.by_model_right - t.confirmed_right) / (double)rest : 0, rest);
    }
    printf("figure: %s_model per-class accuracy", mode);
    for (int c = 0; c < CLASSES; c++)
        printf(" %s %.3f", class_names[c], t.per_class[c] ? (double)t.per_class_right[c] / (double)t.per_class[c] : 0);
    printf("\n");
    printf("result: judgments=%" PRId64 " items=%" PRId64 " results=%" PRId64 " correct=%" PRId64 " auto=%" PRId64
           " seconds=%.1f\n",
           judgments, items_total, t.results, t.correct, t.by_model, secs);
    return 0;
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr, "usage: bench_prelabel-images make-items DIR COUNT IMAGES_IDX LABELS_IDX\n"
                    "       bench_prelabel-images prepare --url URL --token TOKEN --items-dir DIR\n"
                    "       bench_prelabel-images run --url URL --token TOKEN --project P --labels FILE\n"
                    "                             --mode plain|model [--workers W] [--seed S] [--think-ms T]\n"
                    "                             [--verify-from V] [--uncertain-first 0|1]\n"
                    "                             [--min-calibration N]\n");
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "make-items") == 0) {
        if (argc != 6) {
            usage();
            return 1;
        }
        return make_items(argv[2], strtol(argv[3], NULL, 10), argv[4], argv[5]);
    }
    if (argc < 2 || (strcmp(argv[1], "prepare") != 0 && strcmp(argv[1], "run") != 0)) {
        usage();
        return 1;
    }
    const char *url = NULL, *token = NULL, *items_dir = NULL, *labels = NULL, *mode = NULL;
    g.nworkers = 32;
    g.seed = 2026;
    g.verify_from = 0.5;
    g.uncertain_first = 1;
    g.min_calibration = 100;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--url") == 0)
            url = v;
        else if (strcmp(k, "--token") == 0)
            token = v;
        else if (strcmp(k, "--items-dir") == 0)
            items_dir = v;
        else if (strcmp(k, "--labels") == 0)
            labels = v;
        else if (strcmp(k, "--mode") == 0)
            mode = v;
        else if (strcmp(k, "--project") == 0)
            g.project = strtoll(v, NULL, 10);
        else if (strcmp(k, "--think-ms") == 0)
            g.think_ms = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "--min-calibration") == 0)
            g.min_calibration = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "--uncertain-first") == 0)
            g.uncertain_first = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
        else if (strcmp(k, "--verify-from") == 0)
            g.verify_from = strtod(v, NULL);
        else if (strcmp(k, "--workers") == 0)
            g.nworkers = (int)strtol(v, NULL, 10);
        else if (strcmp(k, "--seed") == 0)
            g.seed = strtoull(v, NULL, 10);
        else {
            usage();
            return 1;
        }
    }
    int is_prepare = strcmp(argv[1], "prepare") == 0;
    if (!url || !token || (is_prepare ? !items_dir : (g.project < 1 || !labels || !mode)) || g.nworkers < 1 ||
        g.nworkers > MAX_WORKERS || (mode && strcmp(mode, "plain") != 0 && strcmp(mode, "model") != 0)) {
        usage();
        return 1;
    }
    g_base = url;
    curl_global_init(CURL_GLOBAL_ALL);
    bench_conn admin;
    int rc = 1;
    if (bench_conn_init(&admin, token, g_base) == 0)
        rc = (is_prepare ? prepare(&admin, items_dir) : run(&admin, labels, strcmp(mode, "model") == 0)) == 0 ? 0 : 1;
    bench_conn_free(&admin);
    free(g.truth);
    curl_global_cleanup();
    return rc;
}
