/* test_export_manifests.c -- the manifest-style writers (nemo, rttm, segments_csv,
 * jsonl, labelstudio) on hand-made items: two audio items with segments and
 * transcripts plus one with a transcript only, two image items with a choice, boxes,
 * a polygon and keypoints. Each writer runs through a real tly_export_out in a temp
 * directory; its files are parsed back (jansson, field splitting) and checked against
 * values worked out by hand, and a second run must give the same bytes. */
#include "export_raw_item.h"
#include "export/out.h"
#include "export/writer.h"

#include "unit_util.h"

#include <math.h>

/* ---- fixtures ------------------------------------------------------------------------- */

static const char *AUDIO_TEMPLATE =
    "{\"controls\":[{\"name\":\"events\",\"type\":\"audio_segments\",\"labels\":[\"speech\",\"noise\",\"music, loud\"]},"
    "{\"name\":\"transcript\",\"type\":\"transcription\"}]}";
static const char *IMAGE_TEMPLATE =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"]},"
    "{\"name\":\"objects\",\"type\":\"bbox\",\"labels\":[\"car\",\"person\"]},"
    "{\"name\":\"outline\",\"type\":\"polygon\",\"labels\":[\"car\"]},"
    "{\"name\":\"pose\",\"type\":\"keypoints\",\"points\":[\"nose\",\"tail\"]}]}";
static const char *CHOICE_TEMPLATE = "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"]}]}";
static const char *BBOX_TEMPLATE = "{\"controls\":[{\"name\":\"objects\",\"type\":\"bbox\",\"labels\":[\"car\",\"person\"]}]}";

enum { NAUDIO = 3, NIMAGE = 2 };

typedef struct {
    json_t *tmpl;
    tly_export_context ctx;
    tly_export_item items[3];
    size_t n;
} fixture;

static void item_free(tly_export_item *it)
{
    json_decref(it->media);
    json_decref(it->answer);
    json_decref(it->detail);
    json_decref(it->annotators);
}

static void fixture_free(fixture *f)
{
    for (size_t i = 0; i < f->n; i++)
        item_free(&f->items[i]);
    json_decref(f->tmpl);
}

static void audio_fixture(fixture *f, int split)
{
    memset(f, 0, sizeof *f);
    f->tmpl = J(AUDIO_TEMPLATE);
    f->ctx = (tly_export_context){.project_id = 7, .project_name = "voices", .media = "audio", .template_json = f->tmpl,
                                  .job_name = "tally-project-7", .has_split = split};
    f->n = NAUDIO;
    f->items[0] = (tly_export_item){
        .item_id = 41, .name = "a.wav", .stem = "00000041-a",
        .media_path = split ? "audio/train/00000041-a.wav" : "audio/00000041-a.wav", .sha256 = "aa",
        .media = J("{\"format\":\"wav\",\"duration\":3.08,\"sample_rate\":16000,\"channels\":1}"),
        .answer = J("{\"events\":[{\"label\":\"speech\",\"start\":0.5,\"end\":1.25},"
                    "{\"label\":\"noise\",\"start\":2,\"end\":2.75}],\"transcript\":\"hello world\"}"),
        .confidence = 0.9, .method = "dawid_skene", .judgments = 3,
        .detail = J("{\"events\":{\"method\":\"segment_vote\",\"confidence\":0.8}}"),
        .annotators = J("[\"w_aa\",\"w_bb\"]"), .split = split ? "train" : NULL, .updated_at = 1795321800123};
    f->items[1] = (tly_export_item){
        .item_id = 42, .name = "b.flac", .stem = "00000042-b",
        .media_path = split ? "audio/test/00000042-b.flac" : "audio/00000042-b.flac", .sha256 = "bb",
        .media = J("{\"format\":\"flac\",\"duration\":1.5,\"sample_rate\":44100,\"channels\":2}"),
        .answer = J("{\"events\":[{\"label\":\"music, loud\",\"start\":0.1,\"end\":1.4}]}"), .confidence = 0.75,
        .method = "review", .judgments = 1, .detail = NULL, .annotators = J("[\"w_cc\"]"),
        .split = split ? "test" : NULL, .updated_at = 1795321860000};
    f->items[2] = (tly_export_item){
        .item_id = 43, .name = "c.wav", .stem = "00000043-c",
        .media_path = split ? "audio/train/00000043-c.wav" : "audio/00000043-c.wav", .sha256 = "cc",
        .media = J("{\"format\":\"wav\",\"duration\":2,\"sample_rate\":16000,\"channels\":1}"),
        .answer = J("{\"transcript\":\"only words\"}"), .confidence = 1, .method = "majority", .judgments = 2,
        .detail = NULL, .annotators = J("[]"), .split = split ? "train" : NULL, .updated_at = 1795321860000};
    for (size_t i = 0; i < f->n; i++)
        f->items[i].index = (int64_t)i;
}

static void image_fixture(fixture *f, const char *tmpl)
{
    memset(f, 0, sizeof *f);
    f->tmpl = J(tmpl);
    f->ctx = (tly_export_context){.project_id = 7, .project_name = "pets", .media = "image", .template_json = f->tmpl,
                                  .job_name = "tally-project-7", .has_split = 0};
    f->n = NIMAGE;
    f->items[0] = (tly_export_item){
        .item_id = 7, .index = 0, .name = "p.jpg", .stem = "00000007-p", .media_path = "images/00000007-p.jpg",
        .sha256 = "dd", .media = J("{\"format\":\"jpeg\",\"width\":640,\"height\":480,\"channels\":3}"),
        .answer = J("{\"label\":\"cat\",\"objects\":[{\"label\":\"car\",\"x\":64,\"y\":48,\"w\":320,\"h\":240},"
                    "{\"label\":\"person\",\"x\":0,\"y\":0,\"w\":10,\"h\":20}],"
                    "\"outline\":[{\"label\":\"car\",\"points\":[[64,48],[320,48],[320,240]]}],"
                    "\"pose\":[{\"points\":[[320,240],null]}]}"),
        .confidence = 0.8, .method = "dawid_skene", .judgments = 3,
        .detail = J("{\"label\":{\"method\":\"dawid_skene\",\"confidence\":0.95},"
                    "\"objects\":{\"method\":\"box_cluster\",\"confidence\":0.6}}"),
        .annotators = J("[\"w_3f9a\"]"), .updated_at = 1795321800123};
    f->items[1] = (tly_export_item){
        .item_id = 8, .index = 1, .name = "q.png", .stem = "00000008-q", .media_path = "images/00000008-q.png",
        .sha256 = "ee", .media = J("{\"format\":\"png\",\"width\":1000,\"height\":500,\"channels\":1}"),
        .answer = J("{\"label\":\"dog\",\"objects\":[{\"label\":\"person\",\"x\":100,\"y\":50,\"w\":200,\"h\":100}]}"),
        .confidence = 0.5, .method = "majority", .judgments = 2, .detail = NULL,
        .annotators = J("[\"w_1\",\"w_2\"]"), .updated_at = 1795321860000};
}

/* ---- running a writer -------------------------------------------------------------------- */

typedef struct {
    char dir[64];
    char root[96];
    char sha[65];
    int64_t files;
} run_out;

/* Runs w over the fixture's items into a fresh temp dir: 0, or -1 with err set. */
static int run(const tly_export_writer *w, const fixture *f, run_out *r, tly_error *err)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(unit_tmpdir(r->dir, sizeof r->dir, "export-manifests"), 0);
    char manifest[128];
    snprintf(r->root, sizeof r->root, "%s/data", r->dir);
    snprintf(manifest, sizeof manifest, "%s/manifest.jsonl", r->dir);
    tly_export_out *out = tly_export_out_new(r->root, manifest, err);
    assert_non_null(out);
    void *state = NULL;
    int rc = 0;
    for (int pass = 0; rc == 0 && pass < w->passes; pass++) {
        rc = w->begin(&state, &f->ctx, out, pass, err);
        for (size_t i = 0; rc == 0 && i < f->n; i++)
            rc = export_item_call(w, state, &f->ctx, &f->items[i], out, pass, err);
        if (rc == 0)
            rc = w->end(state, &f->ctx, out, pass, err);
    }
    w->free_state(state);
    if (rc == 0)
        rc = tly_export_out_finish(out, r->sha, &r->files, NULL, err);
    tly_export_out_free(out);
    return rc;
}

static void run_ok(const tly_export_writer *w, const fixture *f, run_out *r)
{
    tly_error err;
    tly_error_clear(&err);
    if (run(w, f, r, &err) != 0)
        fail_msg("%s: %s (%s)", w->name, err.message, err.code);
}

/* A dataset file's bytes (NULL if missing); caller frees. */
static char *slurp(const run_out *r, const char *path)
{
    char full[256];
    snprintf(full, sizeof full, "%s/%s", r->root, path);
    size_t len = 0;
    return tly_read_file(full, 1 << 20, &len);
}

static int exists(const run_out *r, const char *path)
{
    char *text = slurp(r, path);
    free(text);
    return text != NULL;
}

static void cleanup(run_out *r)
{
    tly_remove_tree(r->dir);
}

/* The writer twice: the same manifest (so the same bytes in every file), and the same
 * bytes in `path`. */
static void assert_deterministic(const tly_export_writer *w, const fixture *f, const char *path)
{
    run_out a, b;
    run_ok(w, f, &a);
    run_ok(w, f, &b);
    assert_string_equal(a.sha, b.sha);
    assert_int_equal(a.files, b.files);
    char *x = slurp(&a, path), *y = slurp(&b, path);
    assert_non_null(x);
    assert_non_null(y);
    assert_string_equal(x, y);
    free(x);
    free(y);
    cleanup(&a);
    cleanup(&b);
}

/* Splits text into lines (in place); returns how many, up to max. */
static size_t lines_of(char *text, char **lines, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l && n < max; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    return n;
}

static json_t *parse_line(const char *line)
{
    json_error_t jerr;
    json_t *j = json_loads(line, 0, &jerr);
    if (!j)
        fail_msg("bad JSON line (%s): %s", jerr.text, line);
    return j;
}

static const char *str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s)
        fail_msg("no string \"%s\"", key);
    return s;
}

static double num(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        fail_msg("no number \"%s\"", key);
    return json_number_value(v);
}

static void assert_near(double got, double want)
{
    if (fabs(got - want) > 1e-9)
        fail_msg("got %.12g, want %.12g", got, want);
}

/* ---- nemo --------------------------------------------------------------------------------- */

static void test_nemo(void **state)
{
    (void)state;
    fixture f;
    audio_fixture(&f, 0);
    run_out r;
    run_ok(&tly_writer_nemo, &f, &r);
    assert_int_equal(r.files, 1);
    char *text = slurp(&r, "manifest.json");
    assert_non_null(text);
    /* The exact bytes: keys in order, numbers as printed, one line per item. */
    assert_string_equal(text, "{\"audio_filepath\":\"audio/00000041-a.wav\",\"duration\":3.08,\"text\":\"hello world\"}\n"
                              "{\"audio_filepath\":\"audio/00000042-b.flac\",\"duration\":1.5,\"text\":\"\"}\n"
                              "{\"audio_filepath\":\"audio/00000043-c.wav\",\"duration\":2,\"text\":\"only words\"}\n");
    char *lines[8];
    assert_int_equal(lines_of(text, lines, 8), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *line = parse_line(lines[i]);
        assert_string_equal(str(line, "audio_filepath"), f.items[i].media_path);
        assert_near(num(line, "duration"), json_number_value(json_object_get(f.items[i].media, "duration")));
        const char *want = json_string_value(json_object_get(f.items[i].answer, "transcript"));
        assert_string_equal(str(line, "text"), want ? want : "");
        json_decref(line);
    }
    free(text);
    cleanup(&r);
    assert_deterministic(&tly_writer_nemo, &f, "manifest.json");
    fixture_free(&f);

    /* With a split: one manifest per split that has items. */
    audio_fixture(&f, 1);
    run_ok(&tly_writer_nemo, &f, &r);
    assert_int_equal(r.files, 2);
    assert_false(exists(&r, "manifest.json"));
    assert_false(exists(&r, "manifest_val.json"));
    text = slurp(&r, "manifest_train.json");
    assert_non_null(text);
    assert_int_equal(lines_of(text, lines, 8), 2);
    json_t *line = parse_line(lines[1]);
    assert_string_equal(str(line, "audio_filepath"), "audio/train/00000043-c.wav");
    json_decref(line);
    free(text);
    text = slurp(&r, "manifest_test.json");
    assert_non_null(text);
    assert_int_equal(lines_of(text, lines, 8), 1);
    line = parse_line(lines[0]);
    assert_string_equal(str(line, "audio_filepath"), "audio/test/00000042-b.flac");
    json_decref(line);
    free(text);
    cleanup(&r);
    fixture_free(&f);

    /* No items, no split: still one (empty) manifest. */
    audio_fixture(&f, 0);
    size_t n = f.n;
    f.n = 0;
    run_ok(&tly_writer_nemo, &f, &r);
    f.n = n;
    assert_int_equal(r.files, 1);
    text = slurp(&r, "manifest.json");
    assert_string_equal(text, "");
    free(text);
    cleanup(&r);
    fixture_free(&f);
}

/* ---- rttm --------------------------------------------------------------------------------- */

static void test_rttm(void **state)
{
    (void)state;
    fixture f;
    audio_fixture(&f, 0);
    run_out r;
    run_ok(&tly_writer_rttm, &f, &r);
    assert_int_equal(r.files, 1);
    char *text = slurp(&r, "segments.rttm");
    assert_non_null(text);
    char *lines[8];
    assert_int_equal(lines_of(text, lines, 8), 3);   /* 2 + 1 + 0 segments */
    static const char *const want[3][10] = {
        {"SPEAKER", "00000041-a", "1", "0.500", "0.750", "<NA>", "<NA>", "speech", "<NA>", "<NA>"},
        {"SPEAKER", "00000041-a", "1", "2.000", "0.750", "<NA>", "<NA>", "noise", "<NA>", "<NA>"},
        {"SPEAKER", "00000042-b", "1", "0.100", "1.300", "<NA>", "<NA>", "music,_loud", "<NA>", "<NA>"},
    };
    for (size_t i = 0; i < 3; i++) {
        char *fields[12], *save = NULL;
        size_t nf = 0;
        for (char *t = strtok_r(lines[i], " ", &save); t && nf < 12; t = strtok_r(NULL, " ", &save))
            fields[nf++] = t;
        assert_int_equal(nf, 10);
        for (size_t k = 0; k < 10; k++)
            assert_string_equal(fields[k], want[i][k]);
        /* onset + duration = the answer's end, to the millisecond */
        json_t *seg = json_array_get(json_object_get(f.items[i < 2 ? 0 : 1].answer, "events"), i < 2 ? i : 0);
        assert_near(atof(fields[3]), json_number_value(json_object_get(seg, "start")));
        assert_true(fabs(atof(fields[3]) + atof(fields[4]) - json_number_value(json_object_get(seg, "end"))) < 1e-6);
    }
    free(text);
    cleanup(&r);
    assert_deterministic(&tly_writer_rttm, &f, "segments.rttm");
    fixture_free(&f);

    /* With a split: segments_<split>.rttm for the splits that have items. */
    audio_fixture(&f, 1);
    run_ok(&tly_writer_rttm, &f, &r);
    assert_int_equal(r.files, 2);
    text = slurp(&r, "segments_train.rttm");
    assert_int_equal(lines_of(text, lines, 8), 2);
    free(text);
    text = slurp(&r, "segments_test.rttm");
    assert_int_equal(lines_of(text, lines, 8), 1);
    free(text);
    assert_false(exists(&r, "segments.rttm"));
    cleanup(&r);
    fixture_free(&f);
}

/* ---- segments_csv -------------------------------------------------------------------------- */

static void test_segments_csv(void **state)
{
    (void)state;
    fixture f;
    audio_fixture(&f, 0);
    run_out r;
    run_ok(&tly_writer_segments_csv, &f, &r);
    assert_int_equal(r.files, 1);
    char *text = slurp(&r, "segments.csv");
    /* RFC 4180: CRLF, the label with a comma quoted; confidence from the detail for
     * item 41, the result's for 42; item 43 has no segments. */
    assert_string_equal(text, "item_id,file,start,end,duration,label,confidence\r\n"
                              "41,audio/00000041-a.wav,0.5,1.25,0.75,speech,0.8\r\n"
                              "41,audio/00000041-a.wav,2,2.75,0.75,noise,0.8\r\n"
                              "42,audio/00000042-b.flac,0.1,1.4,1.3,\"music, loud\",0.75\r\n");
    free(text);
    cleanup(&r);
    assert_deterministic(&tly_writer_segments_csv, &f, "segments.csv");
    fixture_free(&f);

    audio_fixture(&f, 1);
    run_ok(&tly_writer_segments_csv, &f, &r);
    text = slurp(&r, "segments.csv");
    char *lines[8];
    assert_int_equal(lines_of(text, lines, 8), 4);
    assert_string_equal(lines[0], "item_id,file,start,end,duration,label,confidence,split\r");
    assert_string_equal(lines[1], "41,audio/train/00000041-a.wav,0.5,1.25,0.75,speech,0.8,train\r");
    assert_string_equal(lines[3], "42,audio/test/00000042-b.flac,0.1,1.4,1.3,\"music, loud\",0.75,test\r");
    free(text);
    cleanup(&r);
    fixture_free(&f);
}

/* ---- jsonl (SageMaker augmented manifest) -------------------------------------------------- */

#define JSONL_FILE "output.manifest.jsonl"

/* The lines of a jsonl run, parsed. */
static size_t jsonl_lines(const fixture *f, json_t **out, size_t max)
{
    run_out r;
    run_ok(&tly_writer_jsonl, f, &r);
    assert_int_equal(r.files, 1);
    char *text = slurp(&r, JSONL_FILE);
    assert_non_null(text);
    char *lines[8];
    size_t n = lines_of(text, lines, 8);
    assert_true(n <= max);
    for (size_t i = 0; i < n; i++)
        out[i] = parse_line(lines[i]);
    free(text);
    cleanup(&r);
    return n;
}

static void assert_common_metadata(json_t *meta, const char *type, const tly_export_item *it, const char *date)
{
    assert_string_equal(str(meta, "type"), type);
    assert_string_equal(str(meta, "job-name"), "labeling-job/tally-project-7");
    assert_string_equal(str(meta, "human-annotated"), "yes");
    assert_string_equal(str(meta, "creation-date"), date);
    assert_int_equal((int64_t)num(meta, "tally-judgments"), it->judgments);
    assert_true(json_equal(json_object_get(meta, "tally-annotators"), it->annotators));
}

static void test_jsonl_classification(void **state)
{
    (void)state;
    fixture f;
    image_fixture(&f, CHOICE_TEMPLATE);
    json_t *lines[4];
    assert_int_equal(jsonl_lines(&f, lines, 4), 2);
    /* cat = option 0, confidence from the control's detail */
    assert_string_equal(str(lines[0], "source-ref"), "images/00000007-p.jpg");
    assert_int_equal(json_integer_value(json_object_get(lines[0], "tally-project-7")), 0);
    assert_true(json_is_integer(json_object_get(lines[0], "tally-project-7")));
    json_t *meta = json_object_get(lines[0], "tally-project-7-metadata");
    assert_string_equal(str(meta, "class-name"), "cat");
    assert_near(num(meta, "confidence"), 0.95);
    assert_common_metadata(meta, "groundtruth/image-classification", &f.items[0], "2026-11-22T04:30:00.123000");
    assert_null(json_object_get(lines[0], "tally-split"));
    assert_int_equal(json_integer_value(json_object_get(lines[0], "tally-item-id")), 7);
    /* dog = option 1, the result's confidence */
    assert_int_equal(json_integer_value(json_object_get(lines[1], "tally-project-7")), 1);
    meta = json_object_get(lines[1], "tally-project-7-metadata");
    assert_string_equal(str(meta, "class-name"), "dog");
    assert_near(num(meta, "confidence"), 0.5);
    assert_common_metadata(meta, "groundtruth/image-classification", &f.items[1], "2026-11-22T04:31:00.000000");
    json_decref(lines[0]);
    json_decref(lines[1]);
    assert_deterministic(&tly_writer_jsonl, &f, JSONL_FILE);

    /* An option the template does not know: an error, not a silent drop. */
    json_object_set_new(f.items[1].answer, "label", json_string("horse"));
    run_out r;
    tly_error err;
    tly_error_clear(&err);
    assert_int_equal(run(&tly_writer_jsonl, &f, &r, &err), -1);
    assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
    assert_string_equal(err.code, "unknown_label");
    cleanup(&r);
    fixture_free(&f);
}

static void test_jsonl_detection(void **state)
{
    (void)state;
    fixture f;
    image_fixture(&f, BBOX_TEMPLATE);
    json_t *lines[4];
    assert_int_equal(jsonl_lines(&f, lines, 4), 2);
    json_t *label = json_object_get(lines[0], "tally-project-7");
    json_t *size = json_array_get(json_object_get(label, "image_size"), 0);
    assert_int_equal((int)num(size, "width"), 640);
    assert_int_equal((int)num(size, "height"), 480);
    assert_int_equal((int)num(size, "depth"), 3);
    json_t *anns = json_object_get(label, "annotations");
    assert_int_equal(json_array_size(anns), 2);
    json_t *a = json_array_get(anns, 0);
    assert_int_equal((int)num(a, "class_id"), 0);
    assert_near(num(a, "left"), 64);
    assert_near(num(a, "top"), 48);
    assert_near(num(a, "width"), 320);
    assert_near(num(a, "height"), 240);
    assert_int_equal((int)num(json_array_get(anns, 1), "class_id"), 1);
    json_t *meta = json_object_get(lines[0], "tally-project-7-metadata");
    json_t *objects = json_object_get(meta, "objects");
    assert_int_equal(json_array_size(objects), 2);
    assert_near(num(json_array_get(objects, 0), "confidence"), 0.6);   /* the bbox control's detail */
    json_t *want = J("{\"0\":\"car\",\"1\":\"person\"}");
    assert_true(json_equal(json_object_get(meta, "class-map"), want));
    json_decref(want);
    assert_common_metadata(meta, "groundtruth/object-detection", &f.items[0], "2026-11-22T04:30:00.123000");

    /* The second image: one person, a grayscale image, the result's confidence. */
    label = json_object_get(lines[1], "tally-project-7");
    assert_int_equal((int)num(json_array_get(json_object_get(label, "image_size"), 0), "depth"), 1);
    assert_int_equal((int)num(json_array_get(json_object_get(label, "annotations"), 0), "class_id"), 1);
    meta = json_object_get(lines[1], "tally-project-7-metadata");
    want = J("{\"1\":\"person\"}");
    assert_true(json_equal(json_object_get(meta, "class-map"), want));
    json_decref(want);
    assert_near(num(json_array_get(json_object_get(meta, "objects"), 0), "confidence"), 0.5);
    json_decref(lines[0]);
    json_decref(lines[1]);
    assert_deterministic(&tly_writer_jsonl, &f, JSONL_FILE);
    fixture_free(&f);
}

static void test_jsonl_custom(void **state)
{
    (void)state;
    /* Several controls: the answer object as it is, type groundtruth/custom. */
    fixture f;
    image_fixture(&f, IMAGE_TEMPLATE);
    json_t *lines[4];
    assert_int_equal(jsonl_lines(&f, lines, 4), 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(str(lines[i], "source-ref"), f.items[i].media_path);
        assert_true(json_equal(json_object_get(lines[i], "tally-project-7"), f.items[i].answer));
        json_t *meta = json_object_get(lines[i], "tally-project-7-metadata");
        assert_near(num(meta, "confidence"), f.items[i].confidence);
        assert_common_metadata(meta, "groundtruth/custom", &f.items[i],
                               i == 0 ? "2026-11-22T04:30:00.123000" : "2026-11-22T04:31:00.000000");
        json_decref(lines[i]);
    }
    fixture_free(&f);

    /* Audio, with a split. */
    audio_fixture(&f, 1);
    json_t *al[4];
    assert_int_equal(jsonl_lines(&f, al, 4), 3);
    static const char *const splits[] = {"train", "test", "train"};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(str(al[i], "source-ref"), f.items[i].media_path);
        assert_string_equal(str(al[i], "tally-split"), splits[i]);
        assert_true(json_equal(json_object_get(al[i], "tally-project-7"), f.items[i].answer));
        assert_string_equal(str(json_object_get(al[i], "tally-project-7-metadata"), "type"), "groundtruth/custom");
        json_decref(al[i]);
    }
    assert_deterministic(&tly_writer_jsonl, &f, JSONL_FILE);
    fixture_free(&f);
}

/* ---- labelstudio --------------------------------------------------------------------------- */

/* The task array of a labelstudio run. */
static json_t *ls_tasks(const fixture *f)
{
    run_out r;
    run_ok(&tly_writer_labelstudio, f, &r);
    assert_int_equal(r.files, 1);
    char *text = slurp(&r, "tasks.json");
    assert_non_null(text);
    json_error_t jerr;
    json_t *tasks = json_loads(text, 0, &jerr);
    if (!tasks)
        fail_msg("tasks.json is not JSON (%s): %s", jerr.text, text);
    free(text);
    cleanup(&r);
    assert_true(json_is_array(tasks));
    return tasks;
}

/* The result region with the given id. */
static json_t *region(json_t *task, const char *id)
{
    size_t i;
    json_t *res;
    json_array_foreach(json_object_get(json_array_get(json_object_get(task, "annotations"), 0), "result"), i, res)
        if (strcmp(str(res, "id"), id) == 0)
            return res;
    fail_msg("no region %s", id);
    return NULL;
}

static void test_labelstudio_image(void **state)
{
    (void)state;
    fixture f;
    image_fixture(&f, IMAGE_TEMPLATE);
    json_t *tasks = ls_tasks(&f);
    assert_int_equal(json_array_size(tasks), 2);
    json_t *t = json_array_get(tasks, 0);
    assert_int_equal(json_integer_value(json_object_get(t, "id")), 7);
    json_t *data = json_object_get(t, "data");
    assert_string_equal(str(data, "image"), "images/00000007-p.jpg");
    assert_int_equal(json_integer_value(json_object_get(data, "tally_item_id")), 7);
    json_t *ann = json_array_get(json_object_get(t, "annotations"), 0);
    assert_int_equal(json_integer_value(json_object_get(ann, "id")), 7);
    assert_true(json_is_false(json_object_get(ann, "ground_truth")));
    assert_true(json_is_false(json_object_get(ann, "was_cancelled")));
    assert_string_equal(str(ann, "completed_by"), "w_3f9a");   /* one worker made it */
    /* choice + 2 boxes + 1 polygon + 1 placed keypoint (the other is null) */
    assert_int_equal(json_array_size(json_object_get(ann, "result")), 5);

    json_t *r = region(t, "7_1");
    assert_string_equal(str(r, "from_name"), "label");
    assert_string_equal(str(r, "to_name"), "image");
    assert_string_equal(str(r, "type"), "choices");
    json_t *want = J("{\"choices\":[\"cat\"]}");
    assert_true(json_equal(json_object_get(r, "value"), want));
    json_decref(want);

    /* Box x=64 y=48 w=320 h=240 on 640x480: 10%, 10%, 50%, 50%. */
    r = region(t, "7_2");
    assert_string_equal(str(r, "type"), "rectanglelabels");
    assert_string_equal(str(r, "from_name"), "objects");
    assert_int_equal((int)num(r, "original_width"), 640);
    assert_int_equal((int)num(r, "original_height"), 480);
    assert_int_equal((int)num(r, "image_rotation"), 0);
    json_t *v = json_object_get(r, "value");
    assert_near(num(v, "x"), 10.0);
    assert_near(num(v, "y"), 10.0);
    assert_near(num(v, "width"), 50.0);
    assert_near(num(v, "height"), 50.0);
    assert_near(num(v, "rotation"), 0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(v, "rectanglelabels"), 0)), "car");
    /* Box w=10 h=20: 1.5625% and 4.1666666667% (10 significant digits). */
    v = json_object_get(region(t, "7_3"), "value");
    assert_near(num(v, "x"), 0);
    assert_near(num(v, "width"), 1.5625);
    assert_true(fabs(num(v, "height") - 100.0 * 20 / 480) < 1e-8);
    assert_string_equal(json_string_value(json_array_get(json_object_get(v, "rectanglelabels"), 0)), "person");

    /* Polygon (64,48) (320,48) (320,240): (10,10) (50,10) (50,50). */
    r = region(t, "7_4");
    assert_string_equal(str(r, "type"), "polygonlabels");
    v = json_object_get(r, "value");
    want = J("[[10,10],[50,10],[50,50]]");
    json_t *pts = json_object_get(v, "points");
    assert_int_equal(json_array_size(pts), 3);
    for (size_t i = 0; i < 3; i++)
        for (size_t k = 0; k < 2; k++)
            assert_near(json_number_value(json_array_get(json_array_get(pts, i), k)),
                        json_number_value(json_array_get(json_array_get(want, i), k)));
    json_decref(want);
    assert_string_equal(json_string_value(json_array_get(json_object_get(v, "polygonlabels"), 0)), "car");

    /* Keypoint "nose" at (320,240): (50%, 50%). */
    r = region(t, "7_5");
    assert_string_equal(str(r, "type"), "keypointlabels");
    assert_string_equal(str(r, "from_name"), "pose");
    v = json_object_get(r, "value");
    assert_near(num(v, "x"), 50);
    assert_near(num(v, "y"), 50);
    assert_near(num(v, "width"), 0.5);
    assert_string_equal(json_string_value(json_array_get(json_object_get(v, "keypointlabels"), 0)), "nose");

    json_t *meta = json_object_get(t, "meta");
    assert_near(num(meta, "confidence"), 0.8);
    assert_string_equal(str(meta, "method"), "dawid_skene");
    assert_int_equal((int)num(meta, "judgments"), 3);
    assert_true(json_equal(json_object_get(meta, "annotators"), f.items[0].annotators));
    assert_null(json_object_get(meta, "split"));

    /* Second task: box 100,50 200x100 on 1000x500 -> 10%, 10%, 20%, 20%; two workers,
     * so no single completed_by. */
    t = json_array_get(tasks, 1);
    ann = json_array_get(json_object_get(t, "annotations"), 0);
    assert_true(json_is_null(json_object_get(ann, "completed_by")));
    assert_int_equal(json_array_size(json_object_get(ann, "result")), 2);
    v = json_object_get(region(t, "8_2"), "value");
    assert_near(num(v, "x"), 10.0);
    assert_near(num(v, "y"), 10.0);
    assert_near(num(v, "width"), 20.0);
    assert_near(num(v, "height"), 20.0);
    json_decref(tasks);
    assert_deterministic(&tly_writer_labelstudio, &f, "tasks.json");

    /* An image of unknown size cannot have percentages. */
    json_object_del(f.items[1].media, "width");
    run_out ro;
    tly_error err;
    tly_error_clear(&err);
    assert_int_equal(run(&tly_writer_labelstudio, &f, &ro, &err), -1);
    assert_string_equal(err.code, "media_size_unknown");
    cleanup(&ro);
    fixture_free(&f);
}

static void test_labelstudio_audio(void **state)
{
    (void)state;
    fixture f;
    audio_fixture(&f, 1);
    json_t *tasks = ls_tasks(&f);
    assert_int_equal(json_array_size(tasks), 3);
    json_t *t = json_array_get(tasks, 0);
    assert_string_equal(str(json_object_get(t, "data"), "audio"), "audio/train/00000041-a.wav");
    assert_true(json_is_null(json_object_get(json_array_get(json_object_get(t, "annotations"), 0), "completed_by")));
    json_t *r = region(t, "41_1");
    assert_string_equal(str(r, "type"), "labels");
    assert_string_equal(str(r, "to_name"), "audio");
    assert_null(json_object_get(r, "original_width"));
    json_t *want = J("{\"start\":0.5,\"end\":1.25,\"channel\":0,\"labels\":[\"speech\"]}");
    assert_true(json_equal(json_object_get(r, "value"), want));
    json_decref(want);
    assert_string_equal(str(region(t, "41_2"), "type"), "labels");
    r = region(t, "41_3");
    assert_string_equal(str(r, "type"), "textarea");
    assert_string_equal(str(r, "from_name"), "transcript");
    want = J("{\"text\":[\"hello world\"]}");
    assert_true(json_equal(json_object_get(r, "value"), want));
    json_decref(want);
    assert_string_equal(str(json_object_get(t, "meta"), "split"), "train");
    /* One worker: completed_by; only a transcript: one region. */
    t = json_array_get(tasks, 1);
    assert_string_equal(str(json_array_get(json_object_get(t, "annotations"), 0), "completed_by"), "w_cc");
    assert_string_equal(str(json_object_get(t, "meta"), "split"), "test");
    t = json_array_get(tasks, 2);
    assert_int_equal(json_array_size(json_object_get(json_array_get(json_object_get(t, "annotations"), 0), "result")), 1);
    assert_string_equal(str(region(t, "43_1"), "type"), "textarea");
    json_decref(tasks);
    assert_deterministic(&tly_writer_labelstudio, &f, "tasks.json");

    /* No items: an empty array, still valid JSON. */
    f.n = 0;
    tasks = ls_tasks(&f);
    assert_int_equal(json_array_size(tasks), 0);
    json_decref(tasks);
    f.n = NAUDIO;
    fixture_free(&f);
}

/* The writers' table entries: names and media as the API documents them. */
static void test_writer_entries(void **state)
{
    (void)state;
    static const struct {
        const tly_export_writer *w;
        const char *name, *media;
    } want[] = {
        {&tly_writer_nemo, "nemo", "audio"},           {&tly_writer_rttm, "rttm", "audio"},
        {&tly_writer_segments_csv, "segments_csv", "audio"}, {&tly_writer_jsonl, "jsonl", "any"},
        {&tly_writer_labelstudio, "labelstudio", "any"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_string_equal(want[i].w->name, want[i].name);
        assert_string_equal(want[i].w->media, want[i].media);
        assert_int_equal(want[i].w->passes, 1);
        want[i].w->free_state(NULL);   /* NULL-safe */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nemo),
        cmocka_unit_test(test_rttm),
        cmocka_unit_test(test_segments_csv),
        cmocka_unit_test(test_jsonl_classification),
        cmocka_unit_test(test_jsonl_detection),
        cmocka_unit_test(test_jsonl_custom),
        cmocka_unit_test(test_labelstudio_image),
        cmocka_unit_test(test_labelstudio_audio),
        cmocka_unit_test(test_writer_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
