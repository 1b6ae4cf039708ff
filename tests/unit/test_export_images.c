/* test_export_images.c -- the image dataset writers (COCO, Pascal VOC, YOLO, the
 * Appen-style CSV, ImageNet folders) on a few hand-made items: three images (two
 * 640x480, one 800x600 greyscale), boxes (one touching the image border, one with
 * fractional coordinates), a polygon, keypoints with a missing point, an image without
 * shapes, with and without a split. Each writer runs through a real tly_export_out
 * in a temp directory the way export.c drives it (begin / items / end per pass, then
 * tly_export_out_finish), and its files are parsed back and checked against values
 * worked out by hand; a second run must give the same bytes (the same manifest). */
#include "export_raw_item.h"
#include "export/out.h"
#include "export/write_imagenet.h"
#include "export/writer.h"

#include "unit_util.h"

#include <math.h>

static const char *const TEMPLATE =
    "{\"controls\":["
    "{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"car\",\"person\"]},"
    "{\"name\":\"outline\",\"type\":\"polygon\",\"labels\":[\"car\",\"road & lane\"]},"
    "{\"name\":\"pose\",\"type\":\"keypoints\",\"labels\":[\"person\"],"
    "\"points\":[\"head\",\"left_hand\",\"right_hand\"]},"
    "{\"name\":\"scene\",\"type\":\"choice\",\"options\":[\"day\",\"night\"]},"
    "{\"name\":\"tags\",\"type\":\"multi_choice\",\"options\":[\"blurry\",\"dark\",\"ok\"]},"
    "{\"name\":\"note\",\"type\":\"text\"}]}";

enum { NITEMS = 3 };

static const struct {
    int64_t id;
    const char *name, *stem, *split, *media, *answer, *detail;
    double confidence;
} ITEMS[NITEMS] = {
    {42, "street.jpg", "00000042-street", "train", "{\"format\":\"jpeg\",\"width\":640,\"height\":480,\"channels\":3}",
     "{\"boxes\":[{\"label\":\"car\",\"x\":10,\"y\":20,\"w\":30,\"h\":40},"
     "{\"label\":\"person\",\"x\":600,\"y\":400,\"w\":40,\"h\":80}],"   /* touches the right and bottom border */
     "\"outline\":[{\"label\":\"road & lane\",\"points\":[[10,10],[110,10],[10,60]]}],"
     "\"pose\":[{\"label\":\"person\",\"points\":[[100,100],null,[150,200]]}],"
     "\"scene\":\"day\",\"tags\":[\"blurry\",\"dark\"],\"note\":\"hello, \\\"world\\\"\"}",
     "{\"scene\":{\"method\":\"dawid_skene\",\"confidence\":0.75}}", 0.9},
    {43, "empty.jpg", "00000043-empty", "val", "{\"format\":\"jpeg\",\"width\":640,\"height\":480,\"channels\":3}",
     "{\"boxes\":[],\"scene\":\"night\"}", NULL, 1},
    {44, "gray.jpg", "00000044-gray", "train", "{\"format\":\"jpeg\",\"width\":800,\"height\":600,\"channels\":1}",
     "{\"boxes\":[{\"label\":\"car\",\"x\":10.4,\"y\":20.6,\"w\":100.2,\"h\":50.5}]}", NULL, 0.5},
};

typedef struct {
    json_t *tmpl;
    tly_export_context ctx;
    tly_export_item items[NITEMS];
    size_t n;
    char paths[NITEMS][128];
} fixture;

/* The items as the core would give them to writer w (with or without a split). */
static void fixture_init(fixture *fx, const tly_export_writer *w, int split)
{
    memset(fx, 0, sizeof *fx);
    fx->tmpl = J(TEMPLATE);
    fx->ctx = (tly_export_context){.project_id = 7, .project_name = "Street \"scenes\"", .media = "image",
                                   .template_json = fx->tmpl, .job_name = "tally-project-7", .has_split = split,
                                   .with_media = 1};
    for (size_t i = 0; i < NITEMS; i++) {
        tly_export_item *it = &fx->items[fx->n];
        *it = (tly_export_item){.item_id = ITEMS[i].id, .index = (int64_t)fx->n, .name = ITEMS[i].name,
                                .stem = ITEMS[i].stem, .media_path = fx->paths[fx->n], .sha256 = "00",
                                .media = J(ITEMS[i].media), .answer = J(ITEMS[i].answer),
                                .confidence = ITEMS[i].confidence, .method = "dawid_skene", .judgments = 3,
                                .detail = ITEMS[i].detail ? J(ITEMS[i].detail) : NULL, .annotators = J("[]"),
                                .split = split ? ITEMS[i].split : NULL, .updated_at = 1700000000000};
        if (w == &tly_writer_imagenet) {   /* the core's media layout for this format */
            const char *cls = tly_imagenet_class_of(&fx->ctx, it);
            if (!cls) {
                json_decref(it->media);
                json_decref(it->answer);
                json_decref(it->detail);
                json_decref(it->annotators);
                continue;
            }
            snprintf(fx->paths[fx->n], sizeof fx->paths[0], "%s/%s/%s.jpg", split ? it->split : "all", cls, it->stem);
        } else if (split) {
            snprintf(fx->paths[fx->n], sizeof fx->paths[0], "images/%s/%s.jpg", it->split, it->stem);
        } else {
            snprintf(fx->paths[fx->n], sizeof fx->paths[0], "images/%s.jpg", it->stem);
        }
        fx->n++;
    }
}

static void fixture_free(fixture *fx)
{
    for (size_t i = 0; i < fx->n; i++) {
        json_decref(fx->items[i].media);
        json_decref(fx->items[i].answer);
        json_decref(fx->items[i].detail);
        json_decref(fx->items[i].annotators);
    }
    json_decref(fx->tmpl);
}

/* Runs w over the fixture into DIR/data (manifest DIR/manifest.jsonl). 0, or -1 with
 * err set (everything freed either way). */
static int run_writer(const tly_export_writer *w, fixture *fx, const char *dir, char *manifest_sha,
                      int64_t *files, tly_error *err)
{
    char root[512], manifest[512];
    snprintf(root, sizeof root, "%s/data", dir);
    snprintf(manifest, sizeof manifest, "%s/manifest.jsonl", dir);
    tly_export_out *out = tly_export_out_new(root, manifest, err);
    if (!out)
        return -1;
    void *state = NULL;
    int rc = 0;
    for (int pass = 0; rc == 0 && pass < w->passes; pass++) {
        rc = w->begin(&state, &fx->ctx, out, pass, err);
        for (size_t i = 0; rc == 0 && i < fx->n; i++)
            rc = export_item_call(w, state, &fx->ctx, &fx->items[i], out, pass, err);
        if (rc == 0)
            rc = w->end(state, &fx->ctx, out, pass, err);
    }
    w->free_state(state);
    if (rc == 0)
        rc = tly_export_out_finish(out, manifest_sha, files, NULL, err);
    tly_export_out_free(out);
    return rc;
}

/* A fresh temp dir with w's output in DIR/data; fails the test on error. */
static void run_ok(const tly_export_writer *w, fixture *fx, char *dir, size_t dirsz, char *manifest_sha)
{
    tly_error err;
    tly_error_clear(&err);
    assert_int_equal(unit_tmpdir(dir, dirsz, "exp"), 0);
    if (run_writer(w, fx, dir, manifest_sha, NULL, &err) < 0)
        fail_msg("%s: %s (%s)", w->name, err.message, err.code);
}

static char *slurp(const char *dir, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/data/%s", dir, rel);
    return tly_read_file(path, 1 << 20, NULL);
}

static void assert_file(const char *dir, const char *rel, const char *expected)
{
    char *text = slurp(dir, rel);
    if (!text)
        fail_msg("missing %s", rel);
    if (strcmp(text, expected) != 0)
        fail_msg("%s:\n%s\nexpected:\n%s", rel, text, expected);
    free(text);
}

static void assert_no_file(const char *dir, const char *rel)
{
    char *text = slurp(dir, rel);
    if (text)
        fail_msg("%s should not exist", rel);
}

static int contains(const char *text, const char *frag)
{
    return strstr(text, frag) != NULL;
}

static int count(const char *text, const char *frag)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, frag)); p += strlen(frag))
        n++;
    return n;
}

static json_t *load_json(const char *dir, const char *rel)
{
    char *text = slurp(dir, rel);
    if (!text)
        fail_msg("missing %s", rel);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        fail_msg("%s is not JSON (%s, line %d)", rel, jerr.text, jerr.line);
    free(text);
    return j;
}

/* A number of a JSON array at i. */
static double num_at(json_t *a, size_t i)
{
    json_t *v = json_array_get(a, i);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void assert_numbers(json_t *a, const double *expected, size_t n)
{
    assert_int_equal(json_array_size(a), n);
    for (size_t i = 0; i < n; i++)
        if (fabs(num_at(a, i) - expected[i]) > 1e-9)
            fail_msg("element %zu: %g, expected %g", i, num_at(a, i), expected[i]);
}

/* ---- COCO ------------------------------------------------------------------------------ */

/* The structural checks of one COCO file: ids 1.. sequential, references valid. */
static void check_coco_structure(json_t *coco, size_t nimages, size_t nann)
{
    json_t *images = json_object_get(coco, "images"), *anns = json_object_get(coco, "annotations");
    json_t *cats = json_object_get(coco, "categories");
    assert_true(json_is_object(json_object_get(coco, "info")));
    assert_true(json_is_array(json_object_get(coco, "licenses")));
    assert_int_equal(json_array_size(images), nimages);
    assert_int_equal(json_array_size(anns), nann);
    assert_int_equal(json_array_size(cats), 3);
    size_t i, k;
    json_t *a, *img;
    json_array_foreach(anns, i, a) {
        assert_int_equal(json_integer_value(json_object_get(a, "id")), (json_int_t)i + 1);
        json_int_t image_id = json_integer_value(json_object_get(a, "image_id"));
        int found = 0;
        json_array_foreach(images, k, img)
            found |= json_integer_value(json_object_get(img, "id")) == image_id;
        assert_true(found);
        json_int_t cat = json_integer_value(json_object_get(a, "category_id"));
        assert_true(cat >= 1 && cat <= 3);
        assert_int_equal(json_integer_value(json_object_get(a, "iscrowd")), 0);
        assert_int_equal(json_array_size(json_object_get(a, "bbox")), 4);
        assert_true(json_is_array(json_object_get(a, "segmentation")));
    }
}

static void test_coco(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, &tly_writer_coco, 0);
    char dir[256], dir2[256], sha[65], sha2[65];
    run_ok(&tly_writer_coco, &fx, dir, sizeof dir, sha);
    json_t *coco = load_json(dir, "annotations/instances.json");
    check_coco_structure(coco, 3, 5);

    json_t *cats = json_object_get(coco, "categories");
    const char *names[] = {"car", "person", "road & lane"};
    for (size_t i = 0; i < 3; i++) {
        json_t *c = json_array_get(cats, i);
        assert_int_equal(json_integer_value(json_object_get(c, "id")), (json_int_t)i + 1);
        assert_string_equal(json_string_value(json_object_get(c, "name")), names[i]);
        assert_string_equal(json_string_value(json_object_get(c, "supercategory")), "none");
        /* person is a keypoints category: its point names and an empty skeleton */
        assert_int_equal(json_array_size(json_object_get(c, "keypoints")), i == 1 ? 3 : 0);
        assert_int_equal(json_object_get(c, "skeleton") != NULL, i == 1);
    }
    assert_string_equal(json_string_value(json_array_get(json_object_get(json_array_get(cats, 1), "keypoints"), 2)),
                        "right_hand");
    json_t *img = json_array_get(json_object_get(coco, "images"), 2);
    assert_int_equal(json_integer_value(json_object_get(img, "id")), 3);
    assert_string_equal(json_string_value(json_object_get(img, "file_name")), "images/00000044-gray.jpg");
    assert_int_equal(json_integer_value(json_object_get(img, "width")), 800);
    assert_int_equal(json_integer_value(json_object_get(img, "height")), 600);
    assert_string_equal(json_string_value(json_object_get(json_object_get(coco, "info"), "description")),
                        "Street \"scenes\"");

    json_t *anns = json_object_get(coco, "annotations");
    /* 1: the car box of image 1 */
    json_t *a = json_array_get(anns, 0);
    assert_int_equal(json_integer_value(json_object_get(a, "image_id")), 1);
    assert_int_equal(json_integer_value(json_object_get(a, "category_id")), 1);
    assert_numbers(json_object_get(a, "bbox"), (double[]){10, 20, 30, 40}, 4);
    assert_true(json_number_value(json_object_get(a, "area")) == 1200);
    assert_int_equal(json_array_size(json_object_get(a, "segmentation")), 0);
    assert_true(fabs(json_number_value(json_object_get(a, "score")) - 0.9) < 1e-12);
    /* 2: the person box */
    a = json_array_get(anns, 1);
    assert_int_equal(json_integer_value(json_object_get(a, "category_id")), 2);
    assert_true(json_number_value(json_object_get(a, "area")) == 3200);
    /* 3: the triangle (10,10) (110,10) (10,60): area 100 * 50 / 2, flattened segmentation */
    a = json_array_get(anns, 2);
    assert_int_equal(json_integer_value(json_object_get(a, "category_id")), 3);
    assert_true(json_number_value(json_object_get(a, "area")) == 2500);
    assert_numbers(json_object_get(a, "bbox"), (double[]){10, 10, 100, 50}, 4);
    json_t *seg = json_object_get(a, "segmentation");
    assert_int_equal(json_array_size(seg), 1);
    assert_numbers(json_array_get(seg, 0), (double[]){10, 10, 110, 10, 10, 60}, 6);
    /* 4: keypoints, the middle one missing; bbox and area from the two placed points */
    a = json_array_get(anns, 3);
    assert_int_equal(json_integer_value(json_object_get(a, "category_id")), 2);
    assert_numbers(json_object_get(a, "keypoints"), (double[]){100, 100, 2, 0, 0, 0, 150, 200, 2}, 9);
    assert_int_equal(json_integer_value(json_object_get(a, "num_keypoints")), 2);
    assert_numbers(json_object_get(a, "bbox"), (double[]){100, 100, 50, 100}, 4);
    assert_true(json_number_value(json_object_get(a, "area")) == 5000);
    /* 5: the fractional box of image 3 */
    a = json_array_get(anns, 4);
    assert_int_equal(json_integer_value(json_object_get(a, "image_id")), 3);
    assert_numbers(json_object_get(a, "bbox"), (double[]){10.4, 20.6, 100.2, 50.5}, 4);
    assert_true(fabs(json_number_value(json_object_get(a, "area")) - 100.2 * 50.5) < 1e-6);
    assert_true(fabs(json_number_value(json_object_get(a, "score")) - 0.5) < 1e-12);
    json_decref(coco);

    /* Integral numbers are printed without a fraction. */
    char *text = slurp(dir, "annotations/instances.json");
    assert_non_null(text);
    assert_true(contains(text, "\"bbox\":[10,20,30,40],\"area\":1200,\"iscrowd\":0"));
    free(text);

    /* Determinism: the same items give the same bytes (the manifest hashes every file). */
    run_ok(&tly_writer_coco, &fx, dir2, sizeof dir2, sha2);
    assert_string_equal(sha, sha2);
    tly_remove_tree(dir);
    tly_remove_tree(dir2);
    fixture_free(&fx);
}

static void test_coco_split(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, &tly_writer_coco, 1);
    char dir[256], sha[65];
    run_ok(&tly_writer_coco, &fx, dir, sizeof dir, sha);
    json_t *train = load_json(dir, "annotations/instances_train.json");
    check_coco_structure(train, 2, 5);
    json_t *imgs = json_object_get(train, "images");
    /* image ids are the export index + 1: unique across the split files */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(imgs, 0), "id")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(imgs, 1), "id")), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(imgs, 1), "file_name")),
                        "images/train/00000044-gray.jpg");
    json_decref(train);
    json_t *val = load_json(dir, "annotations/instances_val.json");   /* an image, no annotations */
    check_coco_structure(val, 1, 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(val, "images"), 0), "id")), 2);
    json_decref(val);
    assert_no_file(dir, "annotations/instances_test.json");
    assert_no_file(dir, "annotations/instances.json");
    tly_remove_tree(dir);
    fixture_free(&fx);
}

/* No items: still one valid (empty) COCO file; a label outside the template fails. */
static void test_coco_empty_and_unknown_label(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, &tly_writer_coco, 0);
    size_t n = fx.n;
    fx.n = 0;
    char dir[256], sha[65];
    run_ok(&tly_writer_coco, &fx, dir, sizeof dir, sha);
    json_t *coco = load_json(dir, "annotations/instances.json");
    check_coco_structure(coco, 0, 0);
    json_decref(coco);
    tly_remove_tree(dir);
    fx.n = n;

    json_array_append_new(json_object_get(fx.items[2].answer, "boxes"),
                          J("{\"label\":\"truck\",\"x\":1,\"y\":1,\"w\":2,\"h\":2}"));
    tly_error err;
    tly_error_clear(&err);
    assert_int_equal(unit_tmpdir(dir, sizeof dir, "exp"), 0);
    assert_int_equal(run_writer(&tly_writer_coco, &fx, dir, sha, NULL, &err), -1);
    assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
    assert_string_equal(err.code, "unknown_label");
    assert_true(contains(err.message, "truck"));
    tly_remove_tree(dir);
    fixture_free(&fx);
}

/* ---- Pascal VOC ---------------------------------------------------------------------------- */

/* Well-formedness, roughly: every start tag closed in order, one root element. */
static void assert_tags_balanced(const char *xml)
{
    char stack[32][64];
    int depth = 0, roots = 0;
    for (const char *p = xml; (p = strchr(p, '<'));) {
        const char *end = strchr(p, '>');
        assert_non_null(end);
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t len = strcspn(name, " />");
        assert_true(len > 0 && len < 64);
        if (closing) {
            assert_true(depth > 0);
            depth--;
            if (strlen(stack[depth]) != len || strncmp(stack[depth], name, len) != 0)
                fail_msg("</%.*s> closes <%s>", (int)len, name, stack[depth]);
        } else if (end[-1] != '/') {
            assert_true(depth < 32);
            roots += depth == 0;
            snprintf(stack[depth++], sizeof stack[0], "%.*s", (int)len, name);
        }
        for (const char *q = p + 1; q < end; q++)
            assert_true(*q != '<');
        p = end + 1;
    }
    assert_int_equal(depth, 0);
    assert_int_equal(roots, 1);
    /* no raw '&' outside an entity */
    for (const char *p = xml; (p = strchr(p, '&')); p++)
        assert_true(strncmp(p, "&amp;", 5) == 0 || strncmp(p, "&lt;", 4) == 0 || strncmp(p, "&gt;", 4) == 0 ||
                    strncmp(p, "&quot;", 6) == 0 || strncmp(p, "&apos;", 6) == 0);
}

static void test_voc(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, &tly_writer_voc, 0);
    char dir[256], dir2[256], sha[65], sha2[65];
    run_ok(&tly_writer_voc, &fx, dir, sizeof dir, sha);

    char *xml = slurp(dir, "Annotations/00000042-street.xml");
    assert_non_null(xml);
    assert_tags_balanced(xml);
    const char *expect[] = {
        "<annotation>\n", "<folder>images</folder>", "<filename>00000042-street.jpg</filename>",
        "<path>images/00000042-street.jpg</path>", "<database>Tally</database>", "<width>640</width>",
        "<height>480</height>", "<depth>3</depth>", "<segmented>0</segmented>", "<pose>Unspecified</pose>",
        "<difficult>0</difficult>",
        /* car (10,20) 30x40: 1-based inclusive */
        "<name>car</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n"
        "\t\t<bndbox>\n\t\t\t<xmin>11</xmin>\n\t\t\t<ymin>21</ymin>\n\t\t\t<xmax>40</xmax>\n\t\t\t<ymax>60</ymax>\n",
        /* person (600,400) 40x80 reaches the corner: truncated, clamped to the image */
        "<name>person</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>1</truncated>\n"
        "\t\t<difficult>0</difficult>\n"
        "\t\t<bndbox>\n\t\t\t<xmin>601</xmin>\n\t\t\t<ymin>401</ymin>\n\t\t\t<xmax>640</xmax>\n\t\t\t<ymax>480</ymax>\n",
        /* the polygon as its enclosing box, the label escaped */
        "<name>road &amp; lane</name>",
        "<xmin>11</xmin>\n\t\t\t<ymin>11</ymin>\n\t\t\t<xmax>110</xmax>\n\t\t\t<ymax>60</ymax>",
    };
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        if (!contains(xml, expect[i]))
            fail_msg("VOC lacks %s:\n%s", expect[i], xml);
    assert_int_equal(count(xml, "<object>"), 3);   /* keypoints are not VOC objects */
    assert_int_equal(count(xml, "<truncated>1</truncated>"), 1);
    free(xml);

    xml = slurp(dir, "Annotations/00000043-empty.xml");   /* an image without objects still has its file */
    assert_non_null(xml);
    assert_tags_balanced(xml);
    assert_int_equal(count(xml, "<object>"), 0);
    free(xml);

    xml = slurp(dir, "Annotations/00000044-gray.xml");
    assert_non_null(xml);
    assert_tags_balanced(xml);
    /* (10.4, 20.6) 100.2 x 50.5: round(10.4)+1, round(20.6)+1, round(110.6), round(71.1) */
    assert_true(contains(xml, "<xmin>11</xmin>\n\t\t\t<ymin>22</ymin>\n\t\t\t<xmax>111</xmax>\n\t\t\t<ymax>71</ymax>"));
    assert_true(contains(xml, "<depth>1</depth>"));
    free(xml);

    assert_file(dir, "ImageSets/Main/default.txt", "00000042-street\n00000043-empty\n00000044-gray\n");
    run_ok(&tly_writer_voc, &fx, dir2, sizeof dir2, sha2);
    assert_string_equal(sha, sha2);
    tly_remove_tree(dir);
    tly_remove_tree(dir2);
    fixture_free(&fx);

    fixture_init(&fx, &tly_writer_voc, 1);
    run_ok(&tly_writer_voc, &fx, dir, sizeof dir, sha);
    assert_file(dir, "ImageSets/Main/train.txt", "00000042-street\n00000044-gray\n");
    assert_file(dir, "ImageSets/Main/val.txt", "00000043-empty\n");
    assert_no_file(dir, "ImageSets/Main/test.txt");
    assert_no_file(dir, "ImageSets/Main/default.txt");
    xml = slurp(dir, "Annotations/00000043-empty.xml");
    assert_non_null(xml);
    assert_true(contains(xml, "<folder>images/val</folder>"));
    assert_true(contains(xml, "<path>images/val/00000043-empty.jpg</path>"));
    free(xml);
    tly_remove_tree(dir);
    fixture_free(&fx);
}

/* ---- YOLO ------------------------------------------------------------------------------------- */

/* Every line "class cx cy w h" with a known class and coordinates in [0, 1]; returns
 * the number of lines. */
static int check_yolo_lines(const char *text, int nc)
{
    int lines = 0;
    for (const char *p = text; *p; lines++) {
        int cls, used = 0;
        double v[4];
        assert_int_equal(sscanf(p, "%d %lf %lf %lf %lf%n", &cls, &v[0], &v[1], &v[2], &v[3], &used), 5);
        assert_true(cls >= 0 && cls < nc);
        for (int i = 0; i < 4; i++)
            assert_true(v[i] >= 0 && v[i] <= 1);
        assert_true(v[2] > 0 && v[3] > 0);
        assert_int_equal(p[used], '\n');
        p += used + 1;
    }
    return lines;
}

static void test_yolo(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, &tly_writer_yolo, 0);
    char dir[256], dir2[256], sha[65], sha2[65];
    run_ok(&tly_writer_yolo, &fx, dir, sizeof dir, sha);

    char *text = slurp(dir, "labels/00000042-street.txt");
    assert_non_null(text);
    assert_int_equal(check_yolo_lines(text, 3), 3);   /* car, person, the polygon's box; no keypoints */
    /* person (600,400) 40x80 in 640x480: centre (620/640, 440/480), size (40/640, 80/480) */
    assert_true(contains(text, "1 0.968750 0.916667 0.062500 0.166667\n"));
    /* the polygon (class 2): extent (10,10)-(110,60) */
    assert_true(contains(text, "2 0.093750 0.072917 0.156250 0.104167\n"));
    free(text);
    assert_file(dir, "labels/00000043-empty.txt", "");   /* a background image */
    /* (10.4, 20.6) 100.2 x 50.5 in 800x600: cx = 60.5/800, cy = 45.85/600, w = 100.2/800, h = 50.5/600 */
    assert_file(dir, "labels/00000044-gray.txt", "0 0.075625 0.076417 0.125250 0.084167\n");
    assert_file(dir, "data.yaml",
                "# YOLO dataset exported by Tally (tally-project-7)\n"
                "train: images\nval: images\nnc: 3\nnames: [\"car\", \"person\", \"road & lane\"]\n");
    run_ok(&tly_writer_yolo, &fx, dir2, sizeof dir2, sha2);
    assert_string_equal(sha, sha2);
    tly_remove_tree(dir);
    tly_remove_tree(dir2);
    fixture_free(&fx);

    /* With a split; a box sticking out of the image is clamped first. */
    fixture_init(&fx, &tly_writer_yolo, 1);
    json_t *box = json_array_get(json_object_get(fx.items[2].answer, "boxes"), 0);
    json_object_set_new(box, "x", json_integer(700));
    json_object_set_new(box, "w", json_integer(200));   /* 700..900 in an 800 wide image: 700..800 */
    run_ok(&tly_writer_yolo, &fx, dir, sizeof dir, sha);
    text = slurp(dir, "labels/train/00000044-gray.txt");
    assert_non_null(text);
    assert_int_equal(check_yolo_lines(text, 3), 1);
    assert_true(contains(text, "0 0.937500 "));
    assert_true(contains(text, " 0.125000 0.084167\n"));
    free(text);
    text = slurp(dir, "labels/train/00000042-street.txt");
    assert_non_null(text);
    assert_int_equal(check_yolo_lines(text, 3), 3);
    free(text);
    assert_file(dir, "labels/val/00000043-empty.txt", "");
    assert_file(dir, "data.yaml",
                "# YOLO dataset exported by Tally (tally-project-7)\n"
                "train: images/train\nval: images/val\nnc: 3\nnames: [\"car\", \"person\", \"road & lane\"]\n");
    tly_remove_tree(dir);
    fixture_free(&fx);
}

/* ---- CSV ------------------------------------------------------------------------------------------ */

static void test_csv(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, &tly_writer_csv, 0);
    char dir[256], dir2[256], sha[65], sha2[65];
    run_ok(&tly_writer_csv, &fx, dir, sizeof dir, sha);
    char *text = slurp(dir, "results.csv");
    assert_non_null(text);
    const char *header = "_unit_id,_file,_trusted_judgments,_confidence,_method,boxes,boxes:confidence,outline,"
                         "outline:confidence,pose,pose:confidence,scene,scene:confidence,tags,tags:confidence,note,"
                         "note:confidence\r\n";
    assert_true(strncmp(text, header, strlen(header)) == 0);
    /* item 42: boxes as quoted JSON, scene with its own confidence, tags joined by a
     * newline inside quotes, the note's comma and quotes quoted per RFC 4180 */
    assert_true(contains(text, "\r\n42,images/00000042-street.jpg,3,0.9,dawid_skene,"
                               "\"[{\"\"label\"\":\"\"car\"\",\"\"x\"\":10,"));
    assert_true(contains(text, ",day,0.75,\"blurry\ndark\",0.9,\"hello, \"\"world\"\"\",0.9\r\n"));
    /* item 43: unanswered controls are empty fields */
    assert_true(contains(text, "\r\n43,images/00000043-empty.jpg,3,1,dawid_skene,[],1,,1,,1,night,1,,1,,1\r\n"));
    assert_true(contains(text, "\r\n44,images/00000044-gray.jpg,3,0.5,dawid_skene,"));
    assert_int_equal(count(text, "\r\n"), 4);
    free(text);
    run_ok(&tly_writer_csv, &fx, dir2, sizeof dir2, sha2);
    assert_string_equal(sha, sha2);
    tly_remove_tree(dir);
    tly_remove_tree(dir2);
    fixture_free(&fx);

    fixture_init(&fx, &tly_writer_csv, 1);
    run_ok(&tly_writer_csv, &fx, dir, sizeof dir, sha);
    text = slurp(dir, "results.csv");
    assert_non_null(text);
    const char *split_head = "_unit_id,_file,_trusted_judgments,_confidence,_method,_split,boxes,";
    assert_true(strncmp(text, split_head, strlen(split_head)) == 0);
    assert_true(contains(text, "\r\n43,images/val/00000043-empty.jpg,3,1,dawid_skene,val,[],1,"));
    free(text);
    tly_remove_tree(dir);
    fixture_free(&fx);
}

/* ---- ImageNet --------------------------------------------------------------------------------------- */

static void test_imagenet(void **state)
{
    (void)state;
    fixture fx;
    fixture_init(&fx, &tly_writer_imagenet, 0);
    assert_int_equal(fx.n, 2);   /* item 44 has no scene: not in any class folder */
    assert_string_equal(fx.items[0].media_path, "all/day/00000042-street.jpg");
    char dir[256], dir2[256], sha[65], sha2[65];
    run_ok(&tly_writer_imagenet, &fx, dir, sizeof dir, sha);
    assert_file(dir, "classes.txt", "day\nnight\n");
    assert_file(dir, "all.txt", "day/00000042-street.jpg 0\nnight/00000043-empty.jpg 1\n");
    run_ok(&tly_writer_imagenet, &fx, dir2, sizeof dir2, sha2);
    assert_string_equal(sha, sha2);
    tly_remove_tree(dir);
    tly_remove_tree(dir2);

    /* The hook: not an option -> no class. */
    tly_export_item it = fx.items[0];
    json_t *answer = J("{\"scene\":\"dusk\"}");
    it.answer = answer;
    assert_null(tly_imagenet_class_of(&fx.ctx, &it));
    json_decref(answer);
    fixture_free(&fx);

    fixture_init(&fx, &tly_writer_imagenet, 1);
    assert_string_equal(fx.items[1].media_path, "val/night/00000043-empty.jpg");
    run_ok(&tly_writer_imagenet, &fx, dir, sizeof dir, sha);
    assert_file(dir, "classes.txt", "day\nnight\n");
    assert_file(dir, "train.txt", "day/00000042-street.jpg 0\n");
    assert_file(dir, "val.txt", "night/00000043-empty.jpg 1\n");
    assert_no_file(dir, "test.txt");
    assert_no_file(dir, "all.txt");
    tly_remove_tree(dir);
    fixture_free(&fx);
}

/* A template the format cannot serve fails at the start, cleanly. */
static void test_imagenet_refusals(void **state)
{
    (void)state;
    const char *templates[] = {
        "{\"controls\":[{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"car\"]}]}",
        "{\"controls\":[{\"name\":\"kind\",\"type\":\"choice\",\"options\":[\"ok\",\"a/b\"]}]}",
    };
    const char *codes[] = {"format_mismatch", "invalid_class_name"};
    for (int i = 0; i < 2; i++) {
        fixture fx;
        fixture_init(&fx, &tly_writer_csv, 0);
        json_decref(fx.tmpl);
        fx.ctx.template_json = fx.tmpl = J(templates[i]);
        char dir[256], sha[65];
        tly_error err;
        tly_error_clear(&err);
        assert_int_equal(unit_tmpdir(dir, sizeof dir, "exp"), 0);
        assert_int_equal(run_writer(&tly_writer_imagenet, &fx, dir, sha, NULL, &err), -1);
        assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
        assert_string_equal(err.code, codes[i]);
        tly_remove_tree(dir);
        fixture_free(&fx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coco),
        cmocka_unit_test(test_coco_split),
        cmocka_unit_test(test_coco_empty_and_unknown_label),
        cmocka_unit_test(test_voc),
        cmocka_unit_test(test_yolo),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_imagenet),
        cmocka_unit_test(test_imagenet_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
