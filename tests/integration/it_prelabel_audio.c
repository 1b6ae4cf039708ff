/* it_prelabel_audio.c -- the built-in audio models "vad" and "asr" in a real tallyd.
 *
 * The test recording is made here from real speech: two LibriVox utterances from
 * Debian's pocketsphinx-testdata (16 kHz 16-bit mono WAVs with reference transcripts)
 * joined with 1.5 - 2 s gaps, over a faint deterministic noise (-60 dBFS), written as
 * a WAV. An audio project with an audio_segments control (labels Speech / Noise) and
 * a transcription control gets both models attached; the uploaded recording must get
 * a VAD prediction whose speech segments match the two utterances and an ASR
 * prediction whose transcript is close to the references (word error rate), each with
 * a score in [0,1]. Bad input: templates without a fitting control -> 422 with a clear
 * message; an item whose blob was corrupted on disk after ingest -> an item-level
 * error on an explicit run.
 */
#include "harness.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define TESTDATA "/usr/share/pocketsphinx/test/data/librivox/"
#define CLIP_A "sense_and_sensibility_01_austen_64kb-0920"
#define CLIP_B "sense_and_sensibility_01_austen_64kb-0930"
#define REF_A "had he married a more a amiable woman he might have been made still more respectable than he was"
#define REF_B "he might even have been made amiable himself"
#define RATE 16000
/* How long a prediction may take: the recogniser loads its model on first use, and
 * sanitizer builds are slow. */
#define PREDICTION_MS 120000

static struct {
    it_server srv;
    char *mgr;
    int seq;
} g;

/* ---- the recording ---------------------------------------------------------------- */

typedef struct {
    int16_t *pcm;
    size_t n;
} clip;

/* The samples of a 16 kHz mono 16-bit PCM WAV (its "data" chunk). */
static void load_clip(const char *path, clip *c)
{
    size_t len = 0;
    unsigned char *b = it_load_file(path, &len);
    if (!b)
        fail_msg("%s is missing: install pocketsphinx-testdata (scripts/deps.sh test)", path);
    assert_true(len > 44 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WAVE", 4) == 0);
    size_t at = 12;
    while (at + 8 <= len) {
        uint32_t sz = (uint32_t)b[at + 4] | (uint32_t)b[at + 5] << 8 | (uint32_t)b[at + 6] << 16 | (uint32_t)b[at + 7] << 24;
        if (memcmp(b + at, "fmt ", 4) == 0) {
            assert_int_equal(b[at + 8] | b[at + 9] << 8, 1);                                   /* PCM */
            assert_int_equal(b[at + 10] | b[at + 11] << 8, 1);                                 /* mono */
            assert_int_equal(b[at + 12] | b[at + 13] << 8 | b[at + 14] << 16, RATE);           /* 16 kHz */
            assert_int_equal(b[at + 22] | b[at + 23] << 8, 16);                                /* 16-bit */
        }
        if (memcmp(b + at, "data", 4) == 0) {
            size_t bytes = sz < len - at - 8 ? sz : len - at - 8;
            c->n = bytes / 2;
            c->pcm = malloc(c->n * sizeof *c->pcm);
            assert_non_null(c->pcm);
            for (size_t i = 0; i < c->n; i++)
                c->pcm[i] = (int16_t)(b[at + 8 + 2 * i] | b[at + 9 + 2 * i] << 8);
            free(b);
            return;
        }
        at += 8 + sz + (sz & 1);
    }
    free(b);
    fail_msg("%s has no data chunk", path);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* gap_a s, clip a, gap_b s, clip b, gap_c s as a WAV (malloc'd); the clips' spans
 * in seconds into spans[4]. */
static unsigned char *make_recording(const clip *a, const clip *b, double gap_a, double gap_b, double gap_c,
                                     double spans[4], size_t *out_len)
{
    size_t ga = (size_t)(gap_a * RATE), gb = (size_t)(gap_b * RATE), gc = (size_t)(gap_c * RATE);
    size_t n = ga + a->n + gb + b->n + gc;
    unsigned char *w = calloc(44 + 2 * n, 1);
    assert_non_null(w);
    memcpy(w, "RIFF", 4);
    put32(w + 4, (uint32_t)(36 + 2 * n));
    memcpy(w + 8, "WAVEfmt ", 8);
    put32(w + 16, 16);
    w[20] = 1;   /* PCM */
    w[22] = 1;   /* mono */
    put32(w + 24, RATE);
    put32(w + 28, RATE * 2);
    w[32] = 2;
    w[34] = 16;
    memcpy(w + 36, "data", 4);
    put32(w + 40, (uint32_t)(2 * n));
    uint32_t rng = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        int v = (int)(rng % 65) - 32;   /* about -60 dBFS */
        if (i >= ga && i < ga + a->n)
            v += a->pcm[i - ga];
        else if (i >= ga + a->n + gb && i < ga + a->n + gb + b->n)
            v += b->pcm[i - ga - a->n - gb];
        v = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
        w[44 + 2 * i] = (unsigned char)(v & 0xff);
        w[45 + 2 * i] = (unsigned char)((v >> 8) & 0xff);
    }
    spans[0] = gap_a;
    spans[1] = gap_a + (double)a->n / RATE;
    spans[2] = spans[1] + gap_b;
    spans[3] = spans[2] + (double)b->n / RATE;
    *out_len = 44 + 2 * n;
    return w;
}

/* Word error rate of hyp against ref (Levenshtein over space-separated words). */
static double wer(const char *ref, const char *hyp)
{
    char r[1024], h[1024], *rw[128], *hw[128];
    size_t nr = 0, nh = 0;
    snprintf(r, sizeof r, "%s", ref);
    snprintf(h, sizeof h, "%s", hyp);
    for (char *t = strtok(r, " "); t && nr < 128; t = strtok(NULL, " "))
        rw[nr++] = t;
    for (char *t = strtok(h, " "); t && nh < 128; t = strtok(NULL, " "))
        hw[nh++] = t;
    static size_t d[129][129];
    for (size_t i = 0; i <= nr; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= nh; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= nr; i++)
        for (size_t j = 1; j <= nh; j++) {
            size_t best = d[i - 1][j - 1] + (strcmp(rw[i - 1], hw[j - 1]) != 0);
            best = d[i - 1][j] + 1 < best ? d[i - 1][j] + 1 : best;
            d[i][j] = d[i][j - 1] + 1 < best ? d[i][j - 1] + 1 : best;
        }
    return nr ? (double)d[nr][nh] / (double)nr : 1;
}

/* ---- helpers -------------------------------------------------------------------------- */

static const char *const TEMPLATE =
    "{\"controls\":[{\"name\":\"activity\",\"type\":\"audio_segments\",\"labels\":[\"Speech\",\"Noise\"]},"
    "{\"name\":\"words\",\"type\":\"transcription\",\"language\":\"en-US\"}]}";

static int64_t audio_project(const char *template_json)
{
    return it_prelabel_project(&g.srv, g.mgr, &g.seq, "audio", "audio", template_json);
}

static json_t *add_model(int64_t project, const char *name, long status)
{
    char body[256];
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"kind\":\"builtin\",\"model\":\"%s\"}", name, name);
    return it_json_requestf(&g.srv, "POST", g.mgr, body, status, "/v1/projects/%lld/models", (long long)project);
}

/* Uploads bytes as one item; its JSON (new reference). */
static json_t *upload_item(int64_t project, const char *name, const void *data, size_t len)
{
    int64_t batch = it_create_batch(&g.srv, g.mgr, project, name, NULL);
    assert_true(batch > 0);
    it_response r;
    assert_int_equal(it_upload_bytes(&g.srv, g.mgr, batch, name, data, len, &r), 0);
    IT_ASSERT_STATUS(r, 201);
    it_response_free(&r);
    it_finish_batch(&g.srv, g.mgr, batch, 1);
    json_t *items = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/items", (long long)project);
    json_t *it = it_json_find(json_object_get(items, "items"), "name", name);
    assert_non_null(it);
    json_incref(it);
    json_decref(items);
    return it;
}

static int group_setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    return it_group_start(&g.srv, &g.mgr);
}

static int group_teardown(void **state)
{
    (void)state;
    return it_group_finish(&g.srv, &g.mgr);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_vad_and_asr(void **state)
{
    (void)state;
    clip a, b;
    load_clip(TESTDATA CLIP_A ".wav", &a);
    load_clip(TESTDATA CLIP_B ".wav", &b);
    double spans[4];
    size_t len;
    unsigned char *wav = make_recording(&a, &b, 1.5, 2.0, 1.5, spans, &len);
    free(a.pcm);
    free(b.pcm);

    int64_t project = audio_project(TEMPLATE);
    json_t *m = add_model(project, "vad", 201);
    assert_string_equal(it_json_str(m, "model"), "vad");
    assert_string_equal(it_json_str(m, "model_version"), "tally-vad-1");
    json_decref(m);
    m = add_model(project, "asr", 201);
    assert_non_null(strstr(it_json_str(m, "model_version"), "pocketsphinx"));
    json_decref(m);

    json_t *item = upload_item(project, "two-sentences.wav", wav, len);
    free(wav);
    int64_t id = it_json_int(item, "id");
    json_decref(item);

    /* VAD: two speech segments, on the two utterances (a LibriVox clip may start or
     * end with a little silence of its own, hence the tolerances). */
    json_t *p = it_wait_prediction(&g.srv, g.mgr, id, "vad", PREDICTION_MS);
    assert_null(json_object_get(p, "error"));
    double score = json_number_value(json_object_get(p, "score"));
    assert_true(score >= 0 && score <= 1);
    json_t *segs = json_object_get(json_object_get(p, "answer"), "activity");
    assert_true(json_is_array(segs));
    double found[2][2];
    int speech = 0;
    size_t i;
    json_t *s;
    json_array_foreach(segs, i, s) {
        const char *label = it_json_str(s, "label");
        double start = json_number_value(json_object_get(s, "start")), end = json_number_value(json_object_get(s, "end"));
        fprintf(stderr, "vad: %s %.2f - %.2f\n", label, start, end);
        assert_true(strcmp(label, "Speech") == 0 || strcmp(label, "Noise") == 0);
        if (strcmp(label, "Speech") == 0) {
            assert_true(speech < 2);
            found[speech][0] = start;
            found[speech++][1] = end;
        }
    }
    assert_int_equal(speech, 2);
    for (int k = 0; k < 2; k++) {
        double want_start = spans[2 * k], want_end = spans[2 * k + 1];
        assert_true(found[k][0] >= want_start - 0.3 && found[k][0] <= want_start + 0.5);
        assert_true(found[k][1] >= want_end - 0.5 && found[k][1] <= want_end + 0.4);
    }
    json_decref(p);

    /* ASR: close to the reference transcript. */
    p = it_wait_prediction(&g.srv, g.mgr, id, "asr", PREDICTION_MS);
    assert_null(json_object_get(p, "error"));
    const char *text = it_json_str(json_object_get(p, "answer"), "words");
    double w = wer(REF_A " " REF_B, text);
    score = json_number_value(json_object_get(p, "score"));
    fprintf(stderr, "asr: \"%s\" (WER %.2f, score %.2f)\n", text, w, score);
    assert_true(w <= 0.35);
    assert_true(score > 0 && score <= 1);
    json_decref(p);
}

static void test_unsuitable_templates(void **state)
{
    (void)state;
    /* A model refused for the template (422 template_unsuitable), the message saying why. */
    static const struct {
        const char *template_json; /* NULL: the previous case's project */
        const char *model;
        const char *message;       /* part of the error message; NULL: any */
    } cases[] = {
        /* No audio_segments control at all. */
        {"{\"controls\":[{\"name\":\"words\",\"type\":\"transcription\"}]}", "vad", "audio_segments"},
        /* Segments, but no speech label: the message lists the labels it has. */
        {"{\"controls\":[{\"name\":\"events\",\"type\":\"audio_segments\",\"labels\":[\"music\",\"applause\"]}]}",
         "vad", "'applause'"},
        /* ... and no transcription control for asr. */
        {NULL, "asr", "transcription"},
        /* A transcription in another language. */
        {"{\"controls\":[{\"name\":\"w\",\"type\":\"transcription\",\"language\":\"de\"}]}", "asr", NULL},
    };
    int64_t project = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (cases[i].template_json)
            project = audio_project(cases[i].template_json);
        char body[128];
        snprintf(body, sizeof body, "{\"name\":\"%c\",\"kind\":\"builtin\",\"model\":\"%s\"}", cases[i].model[0],
                 cases[i].model);
        it_response r;
        assert_int_equal(it_requestf(&g.srv, "POST", g.mgr, body, &r, "/v1/projects/%lld/models", (long long)project),
                         0);
        IT_ASSERT_ERROR(r, 422, "template_unsuitable");
        if (cases[i].message && !strstr(it_err_msg(&r), cases[i].message))
            fail_msg("%s: the message lacks \"%s\": %s", cases[i].model, cases[i].message, it_err_msg(&r));
        it_response_free(&r);
    }
}

static void test_corrupt_blob(void **state)
{
    (void)state;
    int64_t project = audio_project(TEMPLATE);
    size_t len = 0;
    unsigned char *bytes = it_load_test_data("speech.wav", &len);
    assert_non_null(bytes);
    json_t *item = upload_item(project, "speech.wav", bytes, len);
    free(bytes);
    int64_t id = it_json_int(item, "id");
    char path[8192];
    const char *sha = it_json_str(item, "sha256");
    if (it_blob_file(&g.srv, sha, path, sizeof path) < 0 || !it_file_exists(path)) {
        json_decref(item);
        skip();   /* another blob backend: the file cannot be reached from here */
    }
    json_decref(item);
    /* The bytes rot on disk after ingest. */
    static const char garbage[] = "this is not audio any more; the disk ate it";
    char tmp[8300];
    assert_int_equal(it_write_temp(&g.srv, "garbage.bin", garbage, sizeof garbage, tmp, sizeof tmp), 0);
    assert_int_equal(it_copy_file(tmp, path), 0);
    /* Models attached now pre-label old items on an explicit run. */
    json_t *m = add_model(project, "vad", 201);
    int64_t model = it_json_int(m, "id");
    json_decref(m);
    json_decref(it_json_requestf(&g.srv, "POST", g.mgr, NULL, 202, "/v1/projects/%lld/models/%lld/run",
                                 (long long)project, (long long)model));
    json_t *p = it_wait_prediction(&g.srv, g.mgr, id, "vad", PREDICTION_MS);
    assert_true(json_is_null(json_object_get(p, "answer")));
    const char *error = it_json_str(p, "error");
    fprintf(stderr, "corrupt blob: %s\n", error);
    assert_non_null(strstr(error, "cannot decode the audio"));
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsuitable_templates),
        cmocka_unit_test(test_vad_and_asr),
        cmocka_unit_test(test_corrupt_blob),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
