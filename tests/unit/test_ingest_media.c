/* test_ingest_media.c -- the media probe (ingest/media.h) against the real files in
 * tests/data (see tests/data/README.md for how each was made and what it tests).
 *
 * Good files: exact format / size / duration values, thumbnails decoded back with
 * libjpeg and checked for size and content, waveform JSON checked for shape and
 * values. Bad files: the exact error code. Plus the limits, the lookup tables, and
 * several threads probing at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>

#include "ingest/media.h"

#define DATA(name) TALLY_TEST_DATA "/" name

/* ---- helpers ------------------------------------------------------------------------ */

typedef struct {
    int w, h, comps;
    double mean[3];        /* per component over the whole image */
    double bottom_mean;    /* mean of all components over the last row */
} decoded;

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
} test_jerr;

static void test_jerr_exit(j_common_ptr c)
{
    longjmp(((test_jerr *)c->err)->jb, 1);
}

static void test_jerr_silent(j_common_ptr c)
{
    (void)c;
}

/* What decode_jpeg's cleanup needs, kept out of the setjmp caller's locals. */
typedef struct {
    struct jpeg_decompress_struct d;
    test_jerr jerr;
    JSAMPLE *row;
} test_dec;

static int decode_run(test_dec *t, const unsigned char *data, size_t len, decoded *out)
{
    if (setjmp(t->jerr.jb))
        return -1;
    jpeg_create_decompress(&t->d);
    jpeg_mem_src(&t->d, data, (unsigned long)len);
    jpeg_read_header(&t->d, TRUE);
    jpeg_start_decompress(&t->d);
    out->w = (int)t->d.output_width;
    out->h = (int)t->d.output_height;
    out->comps = t->d.output_components;
    t->row = malloc((size_t)out->w * (size_t)out->comps);
    if (!t->row)
        return -1;
    double sum[3] = {0, 0, 0};
    while (t->d.output_scanline < t->d.output_height) {
        JSAMPROW rp = t->row;
        jpeg_read_scanlines(&t->d, &rp, 1);
        double rowsum = 0;
        for (int x = 0; x < out->w; x++)
            for (int c = 0; c < out->comps && c < 3; c++) {
                sum[c] += t->row[x * out->comps + c];
                rowsum += t->row[x * out->comps + c];
            }
        if (t->d.output_scanline == t->d.output_height)
            out->bottom_mean = rowsum / ((double)out->w * out->comps);
    }
    for (int c = 0; c < out->comps && c < 3; c++)
        out->mean[c] = sum[c] / ((double)out->w * out->h);
    jpeg_finish_decompress(&t->d);
    return 0;
}

/* Decode a JPEG from memory; 0 or -1. Used to check the thumbnails for real. */
static int decode_jpeg(const unsigned char *data, size_t len, decoded *out)
{
    test_dec t;
    memset(&t, 0, sizeof t);
    memset(out, 0, sizeof *out);
    t.d.err = jpeg_std_error(&t.jerr.pub);
    t.jerr.pub.error_exit = test_jerr_exit;
    t.jerr.pub.output_message = test_jerr_silent;
    int rc = decode_run(&t, data, len, out);
    jpeg_destroy_decompress(&t.d);
    free(t.row);
    return rc;
}

static int probe(const char *path, const char *name, tly_media_kind kind, const tly_probe_opts *o,
                 tly_media_info *info, tly_buf *thumb, json_t **wf, tly_error *err)
{
    tly_probe_opts defaults;
    if (!o) {
        tly_probe_opts_default(&defaults);
        o = &defaults;
    }
    tly_error_clear(err);
    return tly_media_probe_file(path, name, kind, o, info, thumb, wf, err);
}

static const char *base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

/* ---- tables --------------------------------------------------------------------------- */

static void test_kind_names(void **state)
{
    (void)state;
    tly_media_kind k = 0;
    assert_string_equal(tly_media_kind_name(TLY_MEDIA_IMAGE), "image");
    assert_string_equal(tly_media_kind_name(TLY_MEDIA_AUDIO), "audio");
    assert_int_equal(tly_media_kind_parse("image", &k), 0);
    assert_int_equal(k, TLY_MEDIA_IMAGE);
    assert_int_equal(tly_media_kind_parse("audio", &k), 0);
    assert_int_equal(k, TLY_MEDIA_AUDIO);
    assert_int_equal(tly_media_kind_parse("video", &k), -1);
    assert_int_equal(tly_media_kind_parse("Image", &k), -1);
    assert_int_equal(tly_media_kind_parse("", &k), -1);
}

static void test_opts_default(void **state)
{
    (void)state;
    tly_probe_opts o;
    memset(&o, 0xab, sizeof o);
    tly_probe_opts_default(&o);
    assert_true(o.max_bytes == 512ull * 1024 * 1024);
    assert_true(o.max_pixels == 100000000ull);
    assert_int_equal(o.thumb_max, 256);
    assert_int_equal(o.thumb_quality, 85);
    assert_int_equal(o.waveform_buckets, 800);
}

static void test_sniff(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t n;
        const char *format; /* NULL: not ours */
    } cases[] = {
        {"\xff\xd8\xff\xe0\0\x10JFIF", 10, "jpeg"},
        {"\xff\xd8\xff", 3, "jpeg"},
        {"\xff\xd8", 2, NULL},
        {"\xff\xd8\x00\xe0", 4, NULL},
        {"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, "png"},
        {"\x89PNG\r\n\x1a", 7, NULL},
        {"\x89PNG\n\n\x1a\n", 8, NULL},
        {"RIFF\x24\x08\0\0WAVEfmt ", 16, "wav"},
        {"RIFF\x24\x08\0\0AVI LIST", 16, NULL},
        {"RIFF\x24\x08\0\0WAV", 11, NULL},
        {"fLaC\0\0\0\x22", 8, "flac"},
        {"OggS\0\x02", 6, "ogg"},
        {"ID3\x04\0\0", 6, NULL},
        {"GIF89a", 6, NULL},
        {"These are my notes", 18, NULL},
        {"", 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = tly_media_sniff((const unsigned char *)cases[i].bytes, cases[i].n);
        if (cases[i].format) {
            assert_non_null(got);
            assert_string_equal(got, cases[i].format);
        } else {
            assert_null(got);
        }
    }
    assert_null(tly_media_sniff(NULL, 0));
}

static void test_format_for_name(void **state)
{
    (void)state;
    static const struct {
        const char *name, *format;
    } cases[] = {
        {"a.jpg", "jpeg"},      {"a.JPG", "jpeg"},    {"a.jpeg", "jpeg"},   {"a.Jpe", "jpeg"},
        {"x/y/b.png", "png"},   {"B.PNG", "png"},     {"c.wav", "wav"},     {"c.WAVE", "wav"},
        {"d.flac", "flac"},     {"e.ogg", "ogg"},     {"e.oga", "ogg"},     {"e.OPUS", "ogg"},
        {"photo.jpg.png", "png"}, {"a.gif", NULL},    {"a.mp3", NULL},      {"noext", NULL},
        {".jpg", NULL},         {"a.", NULL},         {"dir.jpg/file", NULL}, {"a.tar.gz", NULL},
        {"a.jpgx", NULL},       {"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = tly_media_format_for_name(cases[i].name);
        if (cases[i].format) {
            assert_non_null(got);
            assert_string_equal(got, cases[i].format);
        } else if (got) {
            fail_msg("'%s' should have no format, got %s", cases[i].name, got);
        }
    }
    assert_null(tly_media_format_for_name(NULL));
}

static void test_kind_of_format(void **state)
{
    (void)state;
    assert_int_equal(tly_media_kind_of_format("jpeg"), TLY_MEDIA_IMAGE);
    assert_int_equal(tly_media_kind_of_format("png"), TLY_MEDIA_IMAGE);
    assert_int_equal(tly_media_kind_of_format("wav"), TLY_MEDIA_AUDIO);
    assert_int_equal(tly_media_kind_of_format("flac"), TLY_MEDIA_AUDIO);
    assert_int_equal(tly_media_kind_of_format("ogg"), TLY_MEDIA_AUDIO);
    assert_int_equal(tly_media_kind_of_format("gif"), 0);
    assert_int_equal(tly_media_kind_of_format(NULL), 0);
}

/* ---- good images ------------------------------------------------------------------------ */

static const struct {
    const char *file, *format;
    int w, h, channels;       /* as probed */
    int tw, th, tcomps;       /* thumbnail */
} good_images[] = {
    /* JPEG thumbnails come straight from the largest DCT scale M/8 that fits 256:
     * 640x480 at 3/8, 320x240 at 6/8, 400x300 at 5/8 (libjpeg rounds up). */
    {"photo.jpg", "jpeg", 640, 480, 3, 240, 180, 3},
    {"photo_copy.jpg", "jpeg", 640, 480, 3, 240, 180, 3},
    {"photo2.jpg", "jpeg", 480, 640, 3, 180, 240, 3},
    {"gray.jpg", "jpeg", 320, 240, 1, 240, 180, 1},
    {"progressive.jpg", "jpeg", 400, 300, 3, 250, 188, 3},
    {"cmyk.jpg", "jpeg", 320, 240, 4, 240, 180, 3},
    {"photo.png", "png", 320, 240, 3, 256, 192, 3},
    {"interlaced.png", "png", 320, 240, 3, 256, 192, 3},
    {"alpha.png", "png", 200, 150, 4, 200, 150, 3},
    {"palette.png", "png", 160, 120, 3, 160, 120, 3},
    {"deep.png", "png", 64, 48, 3, 64, 48, 3},
};

static void test_good_images(void **state)
{
    (void)state;
    char path[512];
    for (size_t i = 0; i < sizeof good_images / sizeof good_images[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", TALLY_TEST_DATA, good_images[i].file);
        tly_media_info info;
        tly_error err;
        tly_buf thumb;
        tly_buf_init(&thumb, 1 << 20);
        json_t *wf = json_true(); /* a sentinel: must be reset to NULL for images */
        if (probe(path, good_images[i].file, TLY_MEDIA_IMAGE, NULL, &info, &thumb, &wf, &err) != 0)
            fail_msg("%s: %s: %s", good_images[i].file, err.code, err.message);
        assert_null(wf);
        assert_int_equal(info.kind, TLY_MEDIA_IMAGE);
        assert_string_equal(info.format, good_images[i].format);
        assert_int_equal(info.width, good_images[i].w);
        assert_int_equal(info.height, good_images[i].h);
        assert_int_equal(info.channels, good_images[i].channels);

        /* The thumbnail is a JPEG that decodes, of the right size and aspect. */
        assert_true(thumb.len > 100);
        assert_memory_equal(thumb.data, "\xff\xd8\xff", 3);
        assert_memory_equal(thumb.data + thumb.len - 2, "\xff\xd9", 2);
        decoded d;
        assert_int_equal(decode_jpeg((unsigned char *)thumb.data, thumb.len, &d), 0);
        assert_int_equal(d.w, good_images[i].tw);
        assert_int_equal(d.h, good_images[i].th);
        assert_int_equal(d.comps, good_images[i].tcomps);
        assert_true(d.w <= 256 && d.h <= 256);
        /* A real picture, not a black or flat frame. */
        assert_true(d.mean[0] > 20 && d.mean[0] < 235);
        tly_buf_free(&thumb);
    }
}

static void probe_thumb(const char *file, const tly_probe_opts *o, tly_buf *thumb, decoded *d)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TALLY_TEST_DATA, file);
    tly_media_info info;
    tly_error err;
    if (probe(path, file, TLY_MEDIA_IMAGE, o, &info, thumb, NULL, &err) != 0)
        fail_msg("%s: %s: %s", file, err.code, err.message);
    if (d)
        assert_int_equal(decode_jpeg((unsigned char *)thumb->data, thumb->len, d), 0);
}

static void test_thumbnail_content(void **state)
{
    (void)state;
    tly_buf a, b;
    tly_buf_init(&a, 1 << 20);
    tly_buf_init(&b, 1 << 20);
    decoded da, db;

    /* Same pixels in Adam7 order give exactly the same thumbnail. */
    probe_thumb("photo.png", NULL, &a, &da);
    probe_thumb("interlaced.png", NULL, &b, &db);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    tly_buf_free(&a);
    tly_buf_free(&b);

    /* The CMYK JPEG is photo.jpg's picture: its colours must come out alike. */
    probe_thumb("photo.jpg", NULL, &a, &da);
    probe_thumb("cmyk.jpg", NULL, &b, &db);
    for (int c = 0; c < 3; c++)
        if (fabs(da.mean[c] - db.mean[c]) > 8)
            fail_msg("cmyk channel %d mean %.1f vs photo %.1f", c, db.mean[c], da.mean[c]);
    tly_buf_free(&a);
    tly_buf_free(&b);

    /* alpha.png is transparent at the bottom: composited on white there. */
    probe_thumb("alpha.png", NULL, &a, &da);
    assert_true(da.bottom_mean > 240);
    tly_buf_free(&a);

    /* A smaller thumb_max: DCT scaling at 1/8 (80x60), then boxes down to 64x48. */
    tly_probe_opts o;
    tly_probe_opts_default(&o);
    o.thumb_max = 64;
    probe_thumb("photo.jpg", &o, &a, &da);
    assert_int_equal(da.w, 64);
    assert_int_equal(da.h, 48);
    tly_buf_free(&a);
    probe_thumb("photo2.jpg", &o, &a, &da);
    assert_int_equal(da.w, 48);
    assert_int_equal(da.h, 64);
    tly_buf_free(&a);
    o.thumb_max = 100; /* 640x480 -> 1/8 (80x60) fits: no box filter needed */
    probe_thumb("photo.jpg", &o, &a, &da);
    assert_int_equal(da.w, 80);
    assert_int_equal(da.h, 60);
    tly_buf_free(&a);

    /* The thumbnail is appended to what the buffer holds. */
    assert_int_equal(tly_buf_append(&a, "abc", 3), 0);
    probe_thumb("photo.jpg", NULL, &a, NULL);
    assert_memory_equal(a.data, "abc\xff\xd8\xff", 6);
    assert_int_equal(decode_jpeg((unsigned char *)a.data + 3, a.len - 3, &da), 0);
    assert_int_equal(da.w, 240);
    tly_buf_free(&a);

    /* A thumbnail that does not fit the buffer's cap fails cleanly. */
    tly_buf_init(&a, 512);
    tly_media_info info;
    tly_error err;
    assert_int_equal(probe(DATA("photo.jpg"), "photo.jpg", TLY_MEDIA_IMAGE, NULL, &info, &a, NULL,
                           &err),
                     -1);
    assert_int_equal(a.len, 0);
    tly_buf_free(&a);
}

static void test_image_without_thumbnail(void **state)
{
    (void)state;
    tly_media_info info;
    tly_error err;
    assert_int_equal(probe(DATA("photo.jpg"), "photo.jpg", TLY_MEDIA_IMAGE, NULL, &info, NULL,
                           NULL, &err),
                     0);
    assert_int_equal(info.width, 640);
    assert_int_equal(probe(DATA("alpha.png"), "alpha.png", TLY_MEDIA_IMAGE, NULL, &info, NULL,
                           NULL, &err),
                     0);
    assert_int_equal(info.height, 150);
    /* Validation still reads everything without a thumbnail. */
    assert_int_equal(probe(DATA("truncated.jpg"), "t.jpg", TLY_MEDIA_IMAGE, NULL, &info, NULL,
                           NULL, &err),
                     -1);
    assert_string_equal(err.code, "truncated");
    assert_int_equal(probe(DATA("corrupt.png"), "c.png", TLY_MEDIA_IMAGE, NULL, &info, NULL,
                           NULL, &err),
                     -1);
    assert_string_equal(err.code, "corrupt");
}

/* ---- good audio ----------------------------------------------------------------------------- */

static const struct {
    const char *file, *format;
    int sample_rate, channels;
    int64_t frames;
} good_audio[] = {
    {"speech.wav", "wav", 16000, 1, 49326},
    {"speech.flac", "flac", 16000, 1, 49326},
    {"speech.ogg", "ogg", 16000, 1, 49326},
    {"stereo.wav", "wav", 44100, 2, 88200},
};

/* Check the waveform's shape; returns the largest |peak|. */
static int check_waveform(const json_t *wf, int sample_rate, int64_t frames, int buckets)
{
    assert_non_null(wf);
    assert_int_equal(json_integer_value(json_object_get(wf, "version")), 2);
    assert_int_equal(json_integer_value(json_object_get(wf, "channels")), 1);
    assert_int_equal(json_integer_value(json_object_get(wf, "bits")), 8);
    assert_int_equal(json_integer_value(json_object_get(wf, "sample_rate")), sample_rate);
    json_int_t spp = json_integer_value(json_object_get(wf, "samples_per_pixel"));
    json_int_t length = json_integer_value(json_object_get(wf, "length"));
    assert_int_equal(spp, (frames + buckets - 1) / buckets);
    assert_int_equal(length, (frames + spp - 1) / spp);
    assert_true(length <= buckets && length > buckets * 9 / 10);
    double duration = json_real_value(json_object_get(wf, "duration"));
    assert_true(fabs(duration - (double)frames / sample_rate) < 1e-9);
    const json_t *data = json_object_get(wf, "data");
    assert_true(json_is_array(data));
    assert_int_equal(json_array_size(data), 2 * (size_t)length);
    int biggest = 0;
    for (size_t i = 0; i < json_array_size(data); i += 2) {
        const json_t *lo = json_array_get(data, i), *hi = json_array_get(data, i + 1);
        assert_true(json_is_integer(lo) && json_is_integer(hi));
        json_int_t l = json_integer_value(lo), h = json_integer_value(hi);
        assert_true(l >= -128 && l <= 127 && h >= -128 && h <= 127);
        assert_true(l <= h);
        if (abs((int)l) > biggest)
            biggest = abs((int)l);
        if (abs((int)h) > biggest)
            biggest = abs((int)h);
    }
    return biggest;
}

static void test_good_audio(void **state)
{
    (void)state;
    char path[512];
    json_t *wav_peaks = NULL;
    for (size_t i = 0; i < sizeof good_audio / sizeof good_audio[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", TALLY_TEST_DATA, good_audio[i].file);
        tly_media_info info;
        tly_error err;
        json_t *wf = NULL;
        tly_buf thumb;
        tly_buf_init(&thumb, 1 << 20);
        if (probe(path, good_audio[i].file, TLY_MEDIA_AUDIO, NULL, &info, &thumb, &wf, &err) != 0)
            fail_msg("%s: %s: %s", good_audio[i].file, err.code, err.message);
        assert_int_equal(thumb.len, 0); /* no thumbnail for audio */
        assert_int_equal(info.kind, TLY_MEDIA_AUDIO);
        assert_string_equal(info.format, good_audio[i].format);
        assert_int_equal(info.sample_rate, good_audio[i].sample_rate);
        assert_int_equal(info.channels, good_audio[i].channels);
        assert_int_equal(info.frames, good_audio[i].frames);
        assert_true(fabs(info.duration - (double)good_audio[i].frames / good_audio[i].sample_rate) <
                    1e-9);
        int biggest = check_waveform(wf, good_audio[i].sample_rate, good_audio[i].frames, 800);
        if (strcmp(good_audio[i].file, "stereo.wav") == 0) {
            /* Two sines at -6 dBFS: peaks at about +-0.5 full scale = +-64. */
            assert_in_range(biggest, 60, 66);
            const json_t *data = json_object_get(wf, "data");
            assert_in_range(json_integer_value(json_array_get(data, 100)), -66, -60);
            assert_in_range(json_integer_value(json_array_get(data, 101)), 60, 66);
        } else {
            assert_true(biggest > 20); /* speech, not silence */
        }
        if (strcmp(good_audio[i].file, "speech.wav") == 0)
            wav_peaks = json_incref(wf);
        else if (strcmp(good_audio[i].file, "speech.flac") == 0)
            assert_true(json_equal(wav_peaks, wf)); /* lossless: the same samples */
        json_decref(wf);
        tly_buf_free(&thumb);
    }
    json_decref(wav_peaks);
}

static void test_waveform_buckets(void **state)
{
    (void)state;
    tly_probe_opts o;
    tly_probe_opts_default(&o);
    tly_media_info info;
    tly_error err;
    json_t *wf = NULL;
    o.waveform_buckets = 100;
    assert_int_equal(probe(DATA("speech.wav"), "speech.wav", TLY_MEDIA_AUDIO, &o, &info, NULL, &wf,
                           &err),
                     0);
    check_waveform(wf, 16000, 49326, 100);
    assert_int_equal(json_integer_value(json_object_get(wf, "samples_per_pixel")), 494);
    assert_int_equal(json_integer_value(json_object_get(wf, "length")), 100);
    json_decref(wf);
    /* More buckets than frames: one frame per pixel. */
    o.waveform_buckets = 100000;
    assert_int_equal(probe(DATA("speech.flac"), "speech.flac", TLY_MEDIA_AUDIO, &o, &info, NULL,
                           &wf, &err),
                     0);
    assert_int_equal(json_integer_value(json_object_get(wf, "samples_per_pixel")), 1);
    assert_int_equal(json_integer_value(json_object_get(wf, "length")), 49326);
    json_decref(wf);
    /* No waveform wanted: still validated. */
    assert_int_equal(probe(DATA("truncated.flac"), "t.flac", TLY_MEDIA_AUDIO, NULL, &info, NULL,
                           NULL, &err),
                     -1);
    assert_string_equal(err.code, "truncated");
}

/* ---- bad files ------------------------------------------------------------------------------- */

static void test_bad_files(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        tly_media_kind kind;
        const char *code;
        const char *in_message; /* NULL: not checked */
    } cases[] = {
        {"truncated.jpg", TLY_MEDIA_IMAGE, "truncated", "Premature end"},
        {"corrupt.jpg", TLY_MEDIA_IMAGE, "corrupt", "Corrupt JPEG data"},
        {"truncated.png", TLY_MEDIA_IMAGE, "truncated", NULL},
        {"corrupt.png", TLY_MEDIA_IMAGE, "corrupt", "CRC"},
        {"empty.jpg", TLY_MEDIA_IMAGE, "empty_file", "empty.jpg"},
        {"text.wav", TLY_MEDIA_AUDIO, "unsupported_format", "'text.wav' is not a JPEG, PNG"},
        {"png_named.jpg", TLY_MEDIA_IMAGE, "extension_mismatch", "named .jpg but contains PNG"},
        {"truncated.wav", TLY_MEDIA_AUDIO, "truncated", "98652"},
        {"truncated.flac", TLY_MEDIA_AUDIO, "truncated", "49326"},
    };
    char path[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", TALLY_TEST_DATA, cases[i].file);
        tly_media_info info;
        tly_error err;
        tly_buf thumb;
        tly_buf_init(&thumb, 1 << 20);
        json_t *wf = NULL;
        int rc = probe(path, cases[i].file, cases[i].kind, NULL, &info, &thumb, &wf, &err);
        if (rc != -1 || strcmp(err.code, cases[i].code) != 0)
            fail_msg("%s: expected %s, got rc %d code '%s' (%s)", cases[i].file, cases[i].code, rc,
                     err.code, err.message);
        assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
        if (cases[i].in_message && !strstr(err.message, cases[i].in_message))
            fail_msg("%s: message '%s' lacks '%s'", cases[i].file, err.message,
                     cases[i].in_message);
        assert_int_equal(thumb.len, 0); /* nothing left behind */
        assert_null(wf);
        assert_int_equal(info.width, 0);
        assert_int_equal(info.frames, 0);
        tly_buf_free(&thumb);
    }
}

static void test_wrong_media(void **state)
{
    (void)state;
    tly_media_info info;
    tly_error err;
    tly_buf thumb;
    tly_buf_init(&thumb, 1 << 20);
    json_t *wf = NULL;
    assert_int_equal(probe(DATA("photo.jpg"), "photo.jpg", TLY_MEDIA_AUDIO, NULL, &info, &thumb,
                           &wf, &err),
                     -1);
    assert_string_equal(err.code, "wrong_media");
    assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
    assert_non_null(strstr(err.message, "image"));
    assert_int_equal(probe(DATA("speech.wav"), "speech.wav", TLY_MEDIA_IMAGE, NULL, &info, &thumb,
                           &wf, &err),
                     -1);
    assert_string_equal(err.code, "wrong_media");
    assert_non_null(strstr(err.message, "audio"));
    assert_int_equal(probe(DATA("palette.png"), "palette.png", TLY_MEDIA_AUDIO, NULL, &info,
                           &thumb, &wf, &err),
                     -1);
    assert_string_equal(err.code, "wrong_media");
    assert_int_equal(thumb.len, 0);
    assert_null(wf);
    tly_buf_free(&thumb);
}

static void test_names(void **state)
{
    (void)state;
    tly_media_info info;
    tly_error err;
    /* Content decides: no or an unknown extension is fine. */
    assert_int_equal(probe(DATA("photo.png"), "upload", TLY_MEDIA_IMAGE, NULL, &info, NULL, NULL,
                           &err),
                     0);
    assert_string_equal(info.format, "png");
    assert_int_equal(probe(DATA("speech.ogg"), "clip.bin", TLY_MEDIA_AUDIO, NULL, &info, NULL,
                           NULL, &err),
                     0);
    assert_string_equal(info.format, "ogg");
    /* Synonymous extensions and any case. */
    assert_int_equal(probe(DATA("photo.jpg"), "PHOTO.JPEG", TLY_MEDIA_IMAGE, NULL, &info, NULL,
                           NULL, &err),
                     0);
    assert_int_equal(probe(DATA("speech.ogg"), "clip.opus", TLY_MEDIA_AUDIO, NULL, &info, NULL,
                           NULL, &err),
                     0);
    /* No name: the path's own. */
    assert_int_equal(probe(DATA("speech.flac"), NULL, TLY_MEDIA_AUDIO, NULL, &info, NULL, NULL,
                           &err),
                     0);
    assert_int_equal(probe(DATA("png_named.jpg"), NULL, TLY_MEDIA_IMAGE, NULL, &info, NULL, NULL,
                           &err),
                     -1);
    assert_string_equal(err.code, "extension_mismatch");
    /* Lying audio extensions. */
    assert_int_equal(probe(DATA("speech.flac"), "speech.wav", TLY_MEDIA_AUDIO, NULL, &info, NULL,
                           NULL, &err),
                     -1);
    assert_string_equal(err.code, "extension_mismatch");
    assert_non_null(strstr(err.message, "named .wav but contains FLAC data"));
    /* The extension mismatch is reported before the media kind. */
    assert_int_equal(probe(DATA("photo.jpg"), "photo.wav", TLY_MEDIA_AUDIO, NULL, &info, NULL,
                           NULL, &err),
                     -1);
    assert_string_equal(err.code, "extension_mismatch");
    /* Missing file: an I/O error, not a verdict on the content. */
    assert_int_equal(probe(DATA("no-such-file.jpg"), "x.jpg", TLY_MEDIA_IMAGE, NULL, &info, NULL,
                           NULL, &err),
                     -1);
    assert_int_equal(err.status, TLY_E_IO);
}

static void test_limits(void **state)
{
    (void)state;
    tly_probe_opts o;
    tly_media_info info;
    tly_error err;
    static const struct {
        const char *file;
        tly_media_kind kind;
        uint64_t pixels; /* 0: audio */
    } cases[] = {
        {"photo.jpg", TLY_MEDIA_IMAGE, 640 * 480},
        {"progressive.jpg", TLY_MEDIA_IMAGE, 400 * 300},
        {"photo.png", TLY_MEDIA_IMAGE, 320 * 240},
        {"interlaced.png", TLY_MEDIA_IMAGE, 320 * 240},
        {"speech.wav", TLY_MEDIA_AUDIO, 0},
        {"speech.flac", TLY_MEDIA_AUDIO, 0},
    };
    char path[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", TALLY_TEST_DATA, cases[i].file);
        uint64_t size = (uint64_t)file_size(path);

        tly_probe_opts_default(&o);
        o.max_bytes = size - 1;
        assert_int_equal(probe(path, base(path), cases[i].kind, &o, &info, NULL, NULL, &err), -1);
        assert_string_equal(err.code, "too_large");
        assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
        o.max_bytes = size; /* the limit itself is allowed */
        assert_int_equal(probe(path, base(path), cases[i].kind, &o, &info, NULL, NULL, &err), 0);
        o.max_bytes = 0; /* no limit */
        assert_int_equal(probe(path, base(path), cases[i].kind, &o, &info, NULL, NULL, &err), 0);

        if (!cases[i].pixels)
            continue;
        tly_probe_opts_default(&o);
        o.max_pixels = cases[i].pixels - 1;
        tly_buf thumb;
        tly_buf_init(&thumb, 1 << 20);
        assert_int_equal(probe(path, base(path), cases[i].kind, &o, &info, &thumb, NULL, &err), -1);
        assert_string_equal(err.code, "too_large");
        assert_non_null(strstr(err.message, "pixels"));
        assert_int_equal(thumb.len, 0);
        o.max_pixels = cases[i].pixels;
        assert_int_equal(probe(path, base(path), cases[i].kind, &o, &info, &thumb, NULL, &err), 0);
        assert_true(thumb.len > 0);
        tly_buf_free(&thumb);
    }
}

static void test_info_json(void **state)
{
    (void)state;
    tly_media_info info;
    tly_error err;
    assert_int_equal(probe(DATA("photo2.jpg"), "photo2.jpg", TLY_MEDIA_IMAGE, NULL, &info, NULL,
                           NULL, &err),
                     0);
    json_t *j = tly_media_info_json(&info);
    json_t *want = json_pack("{s:s, s:i, s:i, s:i}", "format", "jpeg", "width", 480, "height", 640,
                             "channels", 3);
    assert_true(json_equal(j, want));
    json_decref(j);
    json_decref(want);

    assert_int_equal(probe(DATA("stereo.wav"), "stereo.wav", TLY_MEDIA_AUDIO, NULL, &info, NULL,
                           NULL, &err),
                     0);
    j = tly_media_info_json(&info);
    want = json_pack("{s:s, s:f, s:i, s:i, s:I}", "format", "wav", "duration", 2.0, "sample_rate",
                     44100, "channels", 2, "frames", (json_int_t)88200);
    assert_true(json_equal(j, want));
    json_decref(j);
    json_decref(want);
}

/* ---- threads ------------------------------------------------------------------------------------ */

typedef struct {
    const char *file;
    tly_media_kind kind;
    const char *code; /* NULL: must succeed */
    int failures;
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *job = arg;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TALLY_TEST_DATA, job->file);
    for (int i = 0; i < 8; i++) {
        tly_media_info info;
        tly_error err;
        tly_buf thumb;
        tly_buf_init(&thumb, 1 << 20);
        json_t *wf = NULL;
        tly_error_clear(&err);
        int rc = tly_media_probe_file(path, job->file, job->kind, NULL, &info, &thumb, &wf, &err);
        if (job->code ? rc != -1 || strcmp(err.code, job->code) != 0 : rc != 0)
            job->failures++;
        json_decref(wf);
        tly_buf_free(&thumb);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    thread_job jobs[] = {
        {"photo.jpg", TLY_MEDIA_IMAGE, NULL, 0},      {"corrupt.jpg", TLY_MEDIA_IMAGE, "corrupt", 0},
        {"interlaced.png", TLY_MEDIA_IMAGE, NULL, 0}, {"truncated.png", TLY_MEDIA_IMAGE, "truncated", 0},
        {"speech.ogg", TLY_MEDIA_AUDIO, NULL, 0},     {"truncated.flac", TLY_MEDIA_AUDIO, "truncated", 0},
        {"text.wav", TLY_MEDIA_AUDIO, "unsupported_format", 0},
    };
    enum { N = sizeof jobs / sizeof jobs[0] };
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, &jobs[i]), 0);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++)
        if (jobs[i].failures)
            fail_msg("%s failed %d times in threads", jobs[i].file, jobs[i].failures);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_opts_default),
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_format_for_name),
        cmocka_unit_test(test_kind_of_format),
        cmocka_unit_test(test_good_images),
        cmocka_unit_test(test_thumbnail_content),
        cmocka_unit_test(test_image_without_thumbnail),
        cmocka_unit_test(test_good_audio),
        cmocka_unit_test(test_waveform_buckets),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_wrong_media),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_info_json),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
