/* audio_decode.c -- audio bytes to 16 kHz mono floats for the built-in audio models
 * (see audio_models.h).
 *
 * libsndfile reads the file through its virtual I/O interface from one of three
 * sources (a blob reader, a file, bytes in memory), so a blob is never copied whole
 * into memory. Frames are read in chunks, channels averaged, and the mono stream fed
 * to a libsamplerate converter (windowed sinc, "medium quality": flat to about 97% of
 * Nyquist, > 97 dB stop band) chunk by chunk; at 16 kHz already, samples are copied.
 * The output grows by doubling and is bounded by max_seconds, checked against the
 * header before decoding and again while decoding (a header may lie).
 */
#include "annotate/audio_models.h"

#include <samplerate.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_FRAMES 4096

/* ---- sources for libsndfile's virtual I/O ------------------------------------------ */

typedef struct {
    tly_blob_reader *blob;        /* one of blob / mem */
    const unsigned char *mem;
    sf_count_t size, pos;
} source;

static sf_count_t src_len(void *arg)
{
    return ((source *)arg)->size;
}

static sf_count_t src_seek(sf_count_t offset, int whence, void *arg)
{
    source *s = arg;
    sf_count_t to = whence == SEEK_SET ? offset : whence == SEEK_CUR ? s->pos + offset : s->size + offset;
    if (to < 0 || to > s->size)
        return -1;
    s->pos = to;
    return to;
}

static sf_count_t src_read(void *ptr, sf_count_t count, void *arg)
{
    source *s = arg;
    if (count <= 0 || s->pos >= s->size)
        return 0;
    if (count > s->size - s->pos)
        count = s->size - s->pos;
    sf_count_t got;
    if (s->mem) {
        memcpy(ptr, s->mem + s->pos, (size_t)count);
        got = count;
    } else {
        ssize_t r = tly_blob_read_at(s->blob, ptr, (size_t)count, (uint64_t)s->pos);
        if (r < 0)
            return 0;
        got = r;
    }
    s->pos += got;
    return got;
}

static sf_count_t src_write(const void *ptr, sf_count_t count, void *arg)
{
    (void)ptr;
    (void)count;
    (void)arg;
    return 0;   /* read only */
}

static sf_count_t src_tell(void *arg)
{
    return ((source *)arg)->pos;
}

/* ---- decoding ------------------------------------------------------------------------ */

typedef struct {
    float *data;
    size_t n, cap, max;
} growing;

static int grow_append(growing *g, const float *x, size_t n, tly_error *err)
{
    if (g->n + n > g->max)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "too_long", "the audio is longer than %.0f s",
                        (double)g->max / TLY_AUDIO_RATE);
    if (g->n + n > g->cap) {
        size_t cap = g->cap ? g->cap : 65536;
        while (cap < g->n + n)
            cap *= 2;
        float *d = realloc(g->data, cap * sizeof *d);
        if (!d)
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        g->data = d;
        g->cap = cap;
    }
    memcpy(g->data + g->n, x, n * sizeof *x);
    g->n += n;
    return 0;
}

/* Feeds n mono samples (or the end of input) through the converter into g. */
static int convert(SRC_STATE *src, double ratio, const float *in, size_t n, int end, growing *g, tly_error *err)
{
    float out[CHUNK_FRAMES];
    SRC_DATA d = {.data_in = in, .input_frames = (long)n, .end_of_input = end, .src_ratio = ratio};
    for (;;) {
        d.data_out = out;
        d.output_frames = CHUNK_FRAMES;
        int e = src_process(src, &d);
        if (e)
            return tly_fail(err, TLY_E_INTERNAL, "resample", "resampling failed: %s", src_strerror(e));
        if (d.output_frames_gen && grow_append(g, out, (size_t)d.output_frames_gen, err) < 0)
            return -1;
        d.data_in += d.input_frames_used;
        d.input_frames -= d.input_frames_used;
        /* Done when the input is used up and (at the end) nothing more comes out. */
        if (d.input_frames == 0 && (!end || d.output_frames_gen == 0))
            return 0;
    }
}

static int decode(source *s, double max_seconds, tly_audio *out, tly_error *err)
{
    memset(out, 0, sizeof *out);
    SF_VIRTUAL_IO vio = {src_len, src_seek, src_read, src_write, src_tell};
    SF_INFO info = {0};
    SNDFILE *sf = sf_open_virtual(&vio, SFM_READ, &info, s);
    if (!sf)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "unreadable_audio", "not an audio file libsndfile can read");
    float *frames = NULL, *mono = NULL;
    SRC_STATE *src = NULL;
    growing g = {.max = (size_t)(max_seconds * TLY_AUDIO_RATE) + 1};
    int rc = -1;
    if (info.channels < 1 || info.channels > 64 || info.samplerate < 1000 || info.samplerate > 768000) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "unreadable_audio", "unsupported audio header (%d channels, %d Hz)",
                 info.channels, info.samplerate);
        goto out;
    }
    if (info.frames > 0 && (double)info.frames / info.samplerate > max_seconds + 1) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "too_long", "the audio is %.0f s long; at most %.0f s",
                 (double)info.frames / info.samplerate, max_seconds);
        goto out;
    }
    double ratio = (double)TLY_AUDIO_RATE / info.samplerate;
    int e = 0;
    if (info.samplerate != TLY_AUDIO_RATE && !(src = src_new(SRC_SINC_MEDIUM_QUALITY, 1, &e))) {
        tly_fail(err, TLY_E_INTERNAL, "resample", "resampler: %s", src_strerror(e));
        goto out;
    }
    frames = malloc((size_t)CHUNK_FRAMES * (size_t)info.channels * sizeof *frames);
    mono = malloc(CHUNK_FRAMES * sizeof *mono);
    if (!frames || !mono) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    sf_count_t got;
    while ((got = sf_readf_float(sf, frames, CHUNK_FRAMES)) > 0) {
        for (sf_count_t i = 0; i < got; i++) {
            float sum = 0;
            for (int c = 0; c < info.channels; c++)
                sum += frames[i * info.channels + c];
            mono[i] = sum / (float)info.channels;
        }
        if (src ? convert(src, ratio, mono, (size_t)got, 0, &g, err) < 0 : grow_append(&g, mono, (size_t)got, err) < 0)
            goto out;
    }
    if (sf_error(sf) != SF_ERR_NO_ERROR && g.n == 0) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "unreadable_audio", "the audio data cannot be decoded: %s", sf_strerror(sf));
        goto out;
    }
    if (src && convert(src, ratio, mono, 0, 1, &g, err) < 0)
        goto out;
    out->samples = g.data;
    out->n = g.n;
    out->source_rate = info.samplerate;
    out->source_channels = info.channels;
    g.data = NULL;
    rc = 0;
out:
    free(g.data);
    free(frames);
    free(mono);
    if (src)
        src_delete(src);
    sf_close(sf);
    return rc;
}

int tly_audio_decode_blob(tly_blob_store *bs, const char *sha256, double max_seconds, tly_audio *out, tly_error *err)
{
    memset(out, 0, sizeof *out);
    tly_blob_reader *r = NULL;
    if (tly_blob_open_read(bs, sha256, &r, err) < 0)
        return -1;
    source s = {.blob = r, .size = (sf_count_t)tly_blob_reader_size(r)};
    int rc = decode(&s, max_seconds, out, err);
    tly_blob_reader_close(r);
    return rc;
}

int tly_audio_decode_mem(const void *data, size_t len, double max_seconds, tly_audio *out, tly_error *err)
{
    source s = {.mem = data, .size = (sf_count_t)len};
    return decode(&s, max_seconds, out, err);
}

int tly_audio_decode_file(const char *path, double max_seconds, tly_audio *out, tly_error *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return tly_fail(err, TLY_E_NOT_FOUND, "not_found", "cannot open %s", path);
    unsigned char *data = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc(len > 0 ? (size_t)len : 1)) && fread(data, 1, (size_t)len, f) == (size_t)len) {
        fclose(f);
        int rc = tly_audio_decode_mem(data, (size_t)len, max_seconds, out, err);
        free(data);
        return rc;
    }
    fclose(f);
    free(data);
    return tly_fail(err, TLY_E_IO, "io", "cannot read %s", path);
}

void tly_audio_free(tly_audio *a)
{
    free(a->samples);
    memset(a, 0, sizeof *a);
}

int tly_audio_resample(const float *in, size_t n, int rate_in, int rate_out, float **out, size_t *n_out,
                       tly_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (rate_in < 1 || rate_out < 1)
        return tly_fail(err, TLY_E_INVALID, "resample", "bad sample rates %d -> %d", rate_in, rate_out);
    double ratio = (double)rate_out / rate_in;
    growing g = {.max = (size_t)((double)n * ratio) + 1024};
    int e = 0;
    SRC_STATE *src = src_new(SRC_SINC_MEDIUM_QUALITY, 1, &e);
    if (!src)
        return tly_fail(err, TLY_E_INTERNAL, "resample", "resampler: %s", src_strerror(e));
    int rc = -1;
    for (size_t at = 0; at < n; at += CHUNK_FRAMES)
        if (convert(src, ratio, in + at, n - at < CHUNK_FRAMES ? n - at : CHUNK_FRAMES, 0, &g, err) < 0)
            goto out;
    if (convert(src, ratio, in, 0, 1, &g, err) < 0)
        goto out;
    *out = g.data;
    *n_out = g.n;
    g.data = NULL;
    rc = 0;
out:
    free(g.data);
    src_delete(src);
    return rc;
}
