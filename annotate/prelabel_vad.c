/* prelabel_vad.c -- the built-in model "vad": voice-activity detection, written as
 * `audio_segments` pre-labels (speech / non-speech spans).
 *
 * The detector (tly_vad_detect, audio_models.h) works offline on the whole item at
 * 16 kHz, 10 ms hops, 25 ms Hann windows:
 *   1. per frame: log energy (dBFS) and spectral flatness over 94 Hz - 4 kHz
 *      (geometric / arithmetic mean of the power spectrum; a 512-point FFT);
 *   2. the noise floor: a low percentile (10th) of frame energy in a sliding 3 s
 *      window, computed per 0.25 s block and interpolated, never below -65 dBFS
 *      (dither in digital silence is not speech): it follows noise that changes over
 *      time, and running speech has enough pauses and closures (well over 10% of its
 *      frames) to keep it out of the floor;
 *   3. a decision value per frame: the SNR over that floor in dB, plus up to +-8 dB
 *      for spectral shape: frames less flat than the noise (voiced, harmonic sound)
 *      gain, frames flatter than the noise lose -- so loud broadband noise bursts
 *      weigh less than quieter voiced speech; smoothed over 50 ms;
 *   4. hysteresis (speech starts at 7 dB, continues down to 4 dB) with 150 ms
 *      hangover and 50 ms pre-roll; then spans with under 150 ms over 4 dB (clicks,
 *      knocks) are dropped, gaps under 300 ms bridged and speech segments under
 *      250 ms dropped.
 * The item's score is the mean over frames of |2p - 1|, p a logistic of the decision
 * value around the thresholds: 1 when every frame is clearly speech or clearly not.
 * The constants were chosen on tools/bench/prelabel-audio (real speech in white, pink,
 * brown and level-modulated noise at 0 - 20 dB SNR; see tools/bench/README.md).
 *
 * The backend: setup() picks the template's audio_segments control with a speech-like
 * label ("speech", "voice", "talk(ing)", "speaking", case-insensitive) and, when it
 * has one, a non-speech label ("non-speech", "silence", "noise", "background", ...),
 * else fails with 422 "template_unsuitable". predict() decodes each item's blob
 * (audio_decode.c) and answers {control: [{"label","start","end"}...]}; an item that
 * cannot be decoded gets an item-level error.
 */
#include "annotate/audio_models.h"
#include "annotate/prelabel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOP (TLY_AUDIO_RATE * TLY_VAD_HOP_MS / 1000)   /* 160 samples */
#define WIN 400                                         /* 25 ms */
#define NFFT 512
#define BIN_LO 3                                        /* 94 Hz */
#define BIN_HI 128                                      /* 4 kHz */
#define BLOCK 25                                        /* noise floor per 0.25 s ... */
#define NOISE_WINDOW 300                                /* ... over 3 s */
#define NOISE_PCT 0.10
#define ABS_FLOOR_DB -65.0
#define FLAT_WEIGHT_DB 8.0
#define ON_DB 7.0
#define OFF_DB 4.0
#define SMOOTH 5                                        /* frames */
#define HANGOVER 15
#define PREROLL 5
#define MIN_GAP 30
#define MIN_SPEECH 25
#define MIN_ACTIVE 15                                   /* frames at or over OFF_DB */

/* ---- features ----------------------------------------------------------------------- */

/* The FFT's twiddle factors and the analysis window, computed once per detection. */
typedef struct {
    float cos_tw[NFFT / 2], sin_tw[NFFT / 2];
    float hann[WIN];
} tables;

static void tables_init(tables *tb)
{
    for (int k = 0; k < NFFT / 2; k++) {
        tb->cos_tw[k] = (float)cos(-2 * M_PI * k / NFFT);
        tb->sin_tw[k] = (float)sin(-2 * M_PI * k / NFFT);
    }
    for (int i = 0; i < WIN; i++)
        tb->hann[i] = (float)(0.5 - 0.5 * cos(2 * M_PI * i / (WIN - 1)));
}

/* In-place iterative radix-2 FFT of NFFT complex values. */
static void fft(const tables *tb, float *re, float *im)
{
    for (int i = 1, j = 0; i < NFFT; i++) {
        int bit = NFFT >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j) {
            float t = re[i];
            re[i] = re[j];
            re[j] = t;
            t = im[i];
            im[i] = im[j];
            im[j] = t;
        }
    }
    for (int len = 2; len <= NFFT; len <<= 1) {
        int step = NFFT / len;   /* twiddle k of this stage is entry k * step */
        for (int i = 0; i < NFFT; i += len) {
            for (int k = 0; k < len / 2; k++) {
                float wr = tb->cos_tw[k * step], wi = tb->sin_tw[k * step];
                float xr = re[i + k + len / 2] * wr - im[i + k + len / 2] * wi;
                float xi = re[i + k + len / 2] * wi + im[i + k + len / 2] * wr;
                re[i + k + len / 2] = re[i + k] - xr;
                im[i + k + len / 2] = im[i + k] - xi;
                re[i + k] += xr;
                im[i + k] += xi;
            }
        }
    }
}

/* Energy (dBFS) and spectral flatness of the window centred on frame t's hop. */
static void frame_features(const float *pcm, size_t n, size_t t, const tables *tb, float *energy_db, float *flatness)
{
    float re[NFFT], im[NFFT];
    memset(re, 0, sizeof re);
    memset(im, 0, sizeof im);
    long start = (long)(t * HOP) + HOP / 2 - WIN / 2;
    double sum = 0;
    for (int i = 0; i < WIN; i++) {
        long at = start + i;
        float x = at >= 0 && (size_t)at < n ? pcm[at] : 0.0f;
        sum += (double)x * x;
        re[i] = x * tb->hann[i];
    }
    *energy_db = (float)(10 * log10(sum / WIN + 1e-12));
    fft(tb, re, im);
    double log_sum = 0, lin_sum = 0;
    for (int k = BIN_LO; k <= BIN_HI; k++) {
        double p = (double)re[k] * re[k] + (double)im[k] * im[k] + 1e-12;
        log_sum += log(p);
        lin_sum += p;
    }
    int bins = BIN_HI - BIN_LO + 1;
    *flatness = (float)(exp(log_sum / bins) / (lin_sum / bins));
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile of v[0..n) using scratch (n floats). */
static float quantile(const float *v, size_t n, double q, float *scratch)
{
    memcpy(scratch, v, n * sizeof *v);
    qsort(scratch, n, sizeof *scratch, cmp_float);
    size_t k = (size_t)(q * (double)(n - 1));
    return scratch[k];
}

/* The noise floor per frame (see the file comment, step 2): one value per block,
 * at the block's centre, linear in between. block_floor has one float per block. */
static void noise_floor(const float *energy, size_t frames, float *noise, float *block_floor, float *scratch)
{
    size_t blocks = (frames + BLOCK - 1) / BLOCK;
    for (size_t b = 0; b < blocks; b++) {
        long centre = (long)(b * BLOCK + BLOCK / 2);
        long lo = centre - NOISE_WINDOW / 2, hi = centre + NOISE_WINDOW / 2;
        if (lo < 0)
            lo = 0;
        if (hi > (long)frames)
            hi = (long)frames;
        float f = quantile(energy + lo, (size_t)(hi - lo), NOISE_PCT, scratch);
        block_floor[b] = f < ABS_FLOOR_DB ? (float)ABS_FLOOR_DB : f;
    }
    for (size_t t = 0; t < frames; t++) {
        double pos = ((double)t - BLOCK / 2) / BLOCK;   /* in blocks, from block 0's centre */
        if (pos <= 0) {
            noise[t] = block_floor[0];
        } else if (pos >= (double)(blocks - 1)) {
            noise[t] = block_floor[blocks - 1];
        } else {
            size_t b = (size_t)pos;
            double w = pos - (double)b;
            noise[t] = (float)((1 - w) * block_floor[b] + w * block_floor[b + 1]);
        }
    }
}

/* ---- detection ----------------------------------------------------------------------- */

static int push_segment(tly_vad_result *r, size_t *cap, double start, double end, int speech)
{
    if (end <= start)
        return 0;
    if (r->n && r->segments[r->n - 1].speech == speech) {   /* extend the last one */
        r->segments[r->n - 1].end = end;
        return 0;
    }
    if (r->n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        tly_vad_segment *s = realloc(r->segments, c * sizeof *s);
        if (!s)
            return -1;
        r->segments = s;
        *cap = c;
    }
    r->segments[r->n++] = (tly_vad_segment){start, end, speech};
    return 0;
}

int tly_vad_detect(const float *pcm, size_t n, tly_vad_result *out, tly_error *err)
{
    memset(out, 0, sizeof *out);
    out->noise_db = ABS_FLOOR_DB;
    if (n == 0) {
        out->score = 1;
        return 0;
    }
    size_t frames = (n + HOP - 1) / HOP;
    float *energy = malloc(frames * sizeof *energy), *flat = malloc(frames * sizeof *flat);
    float *noise = malloc(frames * sizeof *noise), *decision = malloc(frames * sizeof *decision);
    float *scratch = malloc(frames * sizeof *scratch);
    float *block_floor = malloc((frames / BLOCK + 1) * sizeof *block_floor);
    unsigned char *speech = calloc(frames, 1);
    int rc = -1;
    if (!energy || !flat || !noise || !decision || !scratch || !block_floor || !speech) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    tables tb;
    tables_init(&tb);
    for (size_t t = 0; t < frames; t++)
        frame_features(pcm, n, t, &tb, &energy[t], &flat[t]);
    noise_floor(energy, frames, noise, block_floor, scratch);

    /* The noise's own flatness: the median over frames near the floor. */
    size_t quiet = 0;
    for (size_t t = 0; t < frames; t++)
        if (energy[t] < noise[t] + 3)
            scratch[quiet++] = flat[t];
    float noise_flat = 0.5f;
    if (quiet) {
        qsort(scratch, quiet, sizeof *scratch, cmp_float);
        noise_flat = scratch[quiet / 2];
    }
    if (noise_flat < 0.05f)
        noise_flat = 0.05f;

    /* Decision values, smoothed over SMOOTH frames (centred). */
    for (size_t t = 0; t < frames; t++) {
        float shape = (noise_flat - flat[t]) / noise_flat;
        shape = shape > 1 ? 1 : shape < -1 ? -1 : shape;
        scratch[t] = energy[t] - noise[t] + (float)FLAT_WEIGHT_DB * shape;
    }
    for (size_t t = 0; t < frames; t++) {
        double sum = 0;
        int k = 0;
        for (long u = (long)t - SMOOTH / 2; u <= (long)t + SMOOTH / 2; u++)
            if (u >= 0 && (size_t)u < frames) {
                sum += scratch[u];
                k++;
            }
        decision[t] = (float)(sum / k);
    }

    /* Hysteresis with hangover and pre-roll. */
    int in_speech = 0, hang = 0;
    for (size_t t = 0; t < frames; t++) {
        if (!in_speech && decision[t] >= ON_DB) {
            in_speech = 1;
            for (size_t u = t >= PREROLL ? t - PREROLL : 0; u < t; u++)
                speech[u] = 1;
        }
        if (in_speech) {
            if (decision[t] >= OFF_DB)
                hang = HANGOVER;
            else if (hang-- <= 0)
                in_speech = 0;
        }
        speech[t] = (unsigned char)(speech[t] | in_speech);
    }
    /* Drop blips (too few active frames: clicks, knocks), bridge short gaps between
     * speech, then drop short speech. */
    for (size_t t = 0; t < frames;) {
        size_t e = t, active = 0;
        while (e < frames && speech[e] == speech[t])
            active += decision[e++] >= OFF_DB;
        if (speech[t] && active < MIN_ACTIVE)
            memset(speech + t, 0, e - t);
        t = e;
    }
    for (size_t t = 0; t < frames;) {
        size_t e = t;
        while (e < frames && speech[e] == speech[t])
            e++;
        if (!speech[t] && t > 0 && e < frames && e - t < MIN_GAP)
            memset(speech + t, 1, e - t);
        t = e;
    }
    for (size_t t = 0; t < frames;) {
        size_t e = t;
        while (e < frames && speech[e] == speech[t])
            e++;
        if (speech[t] && e - t < MIN_SPEECH)
            memset(speech + t, 0, e - t);
        t = e;
    }

    /* Segments, score, summary. */
    double duration = (double)n / TLY_AUDIO_RATE, hop_s = (double)HOP / TLY_AUDIO_RATE, mid = (ON_DB + OFF_DB) / 2;
    double sure = 0;
    size_t cap = 0;
    for (size_t t = 0; t < frames; t++) {
        double p = 1 / (1 + exp(-(decision[t] - mid) / 1.5));
        sure += fabs(2 * p - 1);
        double end = (double)(t + 1) * hop_s;
        if (push_segment(out, &cap, (double)t * hop_s, end < duration ? end : duration, speech[t]) < 0) {
            tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
            goto out;
        }
        if (speech[t])
            out->speech_seconds += (end < duration ? end : duration) - (double)t * hop_s;
    }
    out->score = sure / (double)frames;
    memcpy(scratch, noise, frames * sizeof *noise);
    qsort(scratch, frames, sizeof *scratch, cmp_float);
    out->noise_db = scratch[frames / 2];
    rc = 0;
out:
    free(energy);
    free(flat);
    free(noise);
    free(decision);
    free(scratch);
    free(block_floor);
    free(speech);
    if (rc < 0)
        tly_vad_result_free(out);
    return rc;
}

void tly_vad_result_free(tly_vad_result *r)
{
    free(r->segments);
    memset(r, 0, sizeof *r);
}

/* ---- the backend ----------------------------------------------------------------------- */

static const char *const speech_words[] = {"speech", "voice", "talk", "talking", "speaking", "spoken", "human speech",
                                           NULL};
static const char *const other_words[] = {"non-speech", "nonspeech", "non_speech", "non speech", "no speech",
                                          "no_speech", "silence", "noise", "background", "other", NULL};

static int is_one_of(const char *s, const char *const *words)
{
    for (size_t i = 0; s && words[i]; i++)
        if (strcasecmp(s, words[i]) == 0)
            return 1;
    return 0;
}

typedef struct {
    const char *control;      /* borrowed from the template */
    const char *speech;
    const char *other;        /* NULL: non-speech spans are left unlabeled */
} vad_target;

/* The first audio_segments control with a speech label, or -1 and a clear error. */
static int find_target(const tly_project *p, vad_target *t, tly_error *err)
{
    memset(t, 0, sizeof *t);
    char seen[240] = "";
    size_t i, j;
    json_t *def, *label;
    json_array_foreach(json_object_get(p->template_json, "controls"), i, def) {
        const char *type = json_string_value(json_object_get(def, "type"));
        if (!type || strcmp(type, "audio_segments") != 0)
            continue;
        const char *speech = NULL, *other = NULL;
        json_array_foreach(json_object_get(def, "labels"), j, label) {
            const char *l = json_string_value(label);
            if (!speech && is_one_of(l, speech_words))
                speech = l;
            else if (!other && is_one_of(l, other_words))
                other = l;
            if (l && strlen(seen) + strlen(l) + 8 < sizeof seen)
                snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s'%s'", seen[0] ? ", " : "", l);
        }
        if (speech) {
            t->control = json_string_value(json_object_get(def, "name"));
            t->speech = speech;
            t->other = other;
            return 0;
        }
    }
    if (seen[0])
        return tly_fail(err, TLY_E_UNPROCESSABLE, "template_unsuitable",
                        "model 'vad' needs an audio_segments control with a speech label (\"speech\", \"voice\", "
                        "\"talking\", ...); the template's segment labels are %s",
                        seen);
    return tly_fail(err, TLY_E_UNPROCESSABLE, "template_unsuitable",
                    "model 'vad' needs an audio_segments control with a speech label (\"speech\", \"voice\", "
                    "\"talking\", ...); the template has no audio_segments control");
}

#define VAD_VERSION "tally-vad-1"

static int vad_setup(tly_model *m, const tly_project *p, const tly_prelabel_env *env, tly_error *err)
{
    (void)env;
    vad_target t;
    if (find_target(p, &t, err) < 0)
        return -1;
    snprintf(m->version, sizeof m->version, "%s", VAD_VERSION);
    return 0;
}

static double round_ms(double s)
{
    return floor(s * 1000 + 0.5) / 1000;
}

/* The answer for one VAD result; the segments end at most at the item's duration. */
static json_t *vad_answer(const vad_target *t, const tly_vad_result *v, json_t *media)
{
    json_t *duration = json_object_get(media, "duration");
    double limit = json_is_number(duration) ? json_number_value(duration) : INFINITY;
    json_t *segs = json_array();
    for (size_t i = 0; i < v->n; i++) {
        const char *label = v->segments[i].speech ? t->speech : t->other;
        double start = round_ms(v->segments[i].start), end = round_ms(v->segments[i].end);
        if (end > limit)
            end = floor(limit * 1000) / 1000;
        if (!label || end <= start)
            continue;
        json_array_append_new(segs, json_pack("{s:s,s:f,s:f}", "label", label, "start", start, "end", end));
    }
    return json_pack("{s:o}", t->control, segs);
}

static int vad_predict(const tly_model *m, const tly_project *p, const tly_item *items, size_t n,
                       const tly_prelabel_env *env, tly_prelabel_out *out, char *version, size_t versionsz,
                       tly_error *err)
{
    (void)m;
    vad_target t;
    if (find_target(p, &t, err) < 0)
        return -1;
    snprintf(version, versionsz, "%s", VAD_VERSION);
    for (size_t i = 0; i < n; i++) {
        out[i].score = -1;
        tly_audio a;
        tly_vad_result v;
        tly_error ierr;
        if (tly_audio_decode_blob(env->blobs, items[i].sha256, TLY_AUDIO_MAX_SECONDS, &a, &ierr) < 0) {
            snprintf(out[i].error, sizeof out[i].error, "vad: cannot decode the audio: %s", ierr.message);
            continue;
        }
        if (tly_vad_detect(a.samples, a.n, &v, &ierr) < 0) {
            snprintf(out[i].error, sizeof out[i].error, "vad: %s", ierr.message);
        } else {
            out[i].answer = vad_answer(&t, &v, items[i].media);
            out[i].score = v.score;
            tly_vad_result_free(&v);
        }
        tly_audio_free(&a);
    }
    return 0;
}

const tly_prelabel_backend tly_prelabel_vad = {
    .kind = "vad",
    .setup = vad_setup,
    .predict = vad_predict,
};
