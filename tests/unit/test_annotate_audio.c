/* test_annotate_audio.c -- the built-in audio models' signal code on synthetic
 * signals (annotate/audio_models.h): the VAD (silence, stationary noise, speech-like
 * harmonic bursts in noise at known times, short clicks dropped, short gaps bridged,
 * slowly rising noise), the resampler (length, a tone kept, a tone above the new
 * Nyquist removed) and the decoder (a 22.05 kHz stereo WAV made in memory, garbage).
 * Signals come from a fixed-seed generator, so runs are repeatable.
 */
#include "annotate/audio_models.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define RATE TLY_AUDIO_RATE

static uint32_t rng_state;

/* Uniform in [-1, 1): xorshift32. */
static float noise_sample(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (float)((double)rng_state / 2147483648.0 - 1.0);
}

/* seconds of white noise at level (RMS, linear). */
static float *noise_signal(double seconds, double level, size_t *n)
{
    rng_state = 12345;
    *n = (size_t)(seconds * RATE);
    float *x = malloc(*n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < *n; i++)
        x[i] = (float)(level * sqrt(3.0)) * noise_sample();   /* uniform: RMS = amplitude / sqrt(3) */
    return x;
}

/* Adds a voiced, speech-like burst over [from, to) s: a 120 Hz glottal-like harmonic
 * series (12 harmonics, falling 6 dB/octave) with a 4 Hz syllable envelope, at RMS
 * about `level`. */
static void add_voice(float *x, size_t n, double from, double to, double level)
{
    for (size_t i = (size_t)(from * RATE); i < (size_t)(to * RATE) && i < n; i++) {
        double t = (double)i / RATE, v = 0;
        double f0 = 120 + 15 * sin(2 * M_PI * 1.3 * t);
        for (int h = 1; h <= 12; h++)
            v += sin(2 * M_PI * f0 * h * t) / h;
        double env = 0.55 + 0.45 * sin(2 * M_PI * 4 * (t - from) - M_PI / 2);
        x[i] += (float)(level * 1.3 * env * v);
    }
}

static void speech_spans(const tly_vad_result *v, double *starts, double *ends, size_t *n, size_t max)
{
    *n = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (i)
            assert_true(v->segments[i].start == v->segments[i - 1].end);   /* contiguous */
        assert_true(v->segments[i].end > v->segments[i].start);
        if (v->segments[i].speech && *n < max) {
            starts[*n] = v->segments[i].start;
            ends[(*n)++] = v->segments[i].end;
        }
    }
}

static void test_vad_silence(void **state)
{
    (void)state;
    size_t n = 3 * RATE;
    float *x = calloc(n, sizeof *x);
    tly_vad_result v;
    tly_error err;
    assert_int_equal(tly_vad_detect(x, n, &v, &err), 0);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.segments[0].speech, 0);
    assert_true(fabs(v.segments[0].end - 3.0) < 1e-9);
    assert_true(v.speech_seconds == 0);
    assert_true(v.score > 0.9);
    tly_vad_result_free(&v);
    /* Nothing at all. */
    assert_int_equal(tly_vad_detect(x, 0, &v, &err), 0);
    assert_int_equal(v.n, 0);
    tly_vad_result_free(&v);
    free(x);
}

static void test_vad_stationary_noise(void **state)
{
    (void)state;
    size_t n;
    float *x = noise_signal(6, 0.1, &n);   /* -20 dBFS: loud, but only noise */
    tly_vad_result v;
    tly_error err;
    assert_int_equal(tly_vad_detect(x, n, &v, &err), 0);
    assert_true(v.speech_seconds < 0.3);
    assert_true(v.noise_db > -23 && v.noise_db < -19);
    tly_vad_result_free(&v);
    free(x);
}

/* A VAD case: white noise, voiced bursts over it, and the speech spans the VAD must
 * find (each edge within a tolerance). */
typedef struct {
    double seconds, noise;   /* the noise: length, RMS */
    double rise_db;          /* the noise rises this much over the signal (0: steady) */
    struct {
        double from, to;
        double level;        /* RMS; with rise_db, times the noise's RMS at `from` */
    } voice[4];
    size_t nvoice;
    double spans[2][2];      /* the speech spans expected: [start, end) s */
    size_t nspans;
    double tol_start, tol_end;
    double min_score;        /* 0: not checked */
} vad_case;

static void check_vad(const vad_case *c)
{
    size_t n;
    float *x = noise_signal(c->seconds, c->rise_db ? 1 : c->noise, &n);
    for (size_t i = 0; c->rise_db && i < n; i++)
        x[i] *= (float)(c->noise * pow(10, c->rise_db / 20 * (double)i / (double)n));
    for (size_t k = 0; k < c->nvoice; k++) {
        double level = c->voice[k].level;
        if (c->rise_db)
            level *= c->noise * pow(10, c->rise_db / 20 * c->voice[k].from / c->seconds);
        add_voice(x, n, c->voice[k].from, c->voice[k].to, level);
    }
    tly_vad_result v;
    tly_error err;
    assert_int_equal(tly_vad_detect(x, n, &v, &err), 0);
    double s[8], e[8];
    size_t k;
    speech_spans(&v, s, e, &k, 8);
    assert_int_equal(k, c->nspans);
    for (k = 0; k < c->nspans; k++)
        assert_true(fabs(s[k] - c->spans[k][0]) < c->tol_start && fabs(e[k] - c->spans[k][1]) < c->tol_end);
    assert_true(fabs(v.segments[v.n - 1].end - c->seconds) < 1e-9);   /* the segments cover it all */
    if (c->min_score)
        assert_true(v.score > c->min_score && v.score <= 1);
    tly_vad_result_free(&v);
    free(x);
}

static void test_vad_bursts_in_noise(void **state)
{
    (void)state;
    static const vad_case c = {
        .seconds = 8, .noise = 0.003,   /* -50 dBFS background */
        .voice = {{1.0, 2.5, 0.05},     /* about 24 dB over it */
                  {4.0, 5.2, 0.02}},    /* a quieter talker, 16 dB */
        .nvoice = 2, .spans = {{1.0, 2.5}, {4.0, 5.2}}, .nspans = 2,
        .tol_start = 0.15, .tol_end = 0.25, .min_score = 0.7,
    };
    check_vad(&c);
}

static void test_vad_clicks_and_gaps(void **state)
{
    (void)state;
    static const vad_case c = {
        .seconds = 6, .noise = 0.003,
        .voice = {{1.0, 1.06, 0.05},    /* 60 ms click: not speech */
                  {3.0, 3.6, 0.05},     /* two words ... */
                  {3.75, 4.4, 0.05}},   /* ... 150 ms apart: one span */
        .nvoice = 3, .spans = {{3.0, 4.4}}, .nspans = 1,
        .tol_start = 0.15, .tol_end = 0.25,
    };
    check_vad(&c);
}

static void test_vad_rising_noise(void **state)
{
    (void)state;
    /* The noise rises 20 dB over 20 s; speech 15 dB over the local noise at 3 s and 17 s.
     * A fixed threshold cannot serve both; the adaptive floor must. */
    static const vad_case c = {
        .seconds = 20, .noise = 0.002, .rise_db = 20,   /* -54 .. -34 dBFS */
        .voice = {{3.0, 4.0, 5.6}, {17.0, 18.0, 5.6}},
        .nvoice = 2, .spans = {{3.0, 4.0}, {17.0, 18.0}}, .nspans = 2,
        .tol_start = 0.2, .tol_end = 0.3,
    };
    check_vad(&c);
}

/* Zero crossings per second of x, and its RMS. */
static void tone_stats(const float *x, size_t n, int rate, double *hz, double *rms)
{
    size_t crossings = 0;
    double sum = 0;
    for (size_t i = 1; i < n; i++) {
        crossings += (x[i - 1] < 0) != (x[i] < 0);
        sum += (double)x[i] * x[i];
    }
    *hz = (double)crossings / 2 / ((double)n / rate);
    *rms = sqrt(sum / (double)n);
}

static void test_resample(void **state)
{
    (void)state;
    size_t n = 44100 * 2;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.5 * sin(2 * M_PI * 1000 * (double)i / 44100));
    float *y;
    size_t m;
    tly_error err;
    assert_int_equal(tly_audio_resample(x, n, 44100, RATE, &y, &m, &err), 0);
    assert_true(labs((long)m - 32000) <= 2);
    double hz, rms;
    tone_stats(y + 1000, m - 2000, RATE, &hz, &rms);   /* away from the edges */
    assert_true(fabs(hz - 1000) < 2);
    assert_true(fabs(rms - 0.5 / sqrt(2)) < 0.01);
    free(y);
    /* 11 kHz is above the new Nyquist (8 kHz): it must go, not alias to 5 kHz. */
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.5 * sin(2 * M_PI * 11000 * (double)i / 44100));
    assert_int_equal(tly_audio_resample(x, n, 44100, RATE, &y, &m, &err), 0);
    tone_stats(y + 1000, m - 2000, RATE, &hz, &rms);
    assert_true(rms < 0.005);
    free(y);
    free(x);
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

static void test_decode(void **state)
{
    (void)state;
    /* 1 s of 22.05 kHz stereo 16-bit PCM: 500 Hz left, silence right. */
    uint32_t frames = 22050, data_len = frames * 4;
    unsigned char *wav = calloc(44 + data_len, 1);
    memcpy(wav, "RIFF", 4);
    put32(wav + 4, 36 + data_len);
    memcpy(wav + 8, "WAVEfmt ", 8);
    put32(wav + 16, 16);
    put16(wav + 20, 1);
    put16(wav + 22, 2);
    put32(wav + 24, 22050);
    put32(wav + 28, 22050 * 4);
    put16(wav + 32, 4);
    put16(wav + 34, 16);
    memcpy(wav + 36, "data", 4);
    put32(wav + 40, data_len);
    for (uint32_t i = 0; i < frames; i++)
        put16(wav + 44 + i * 4, (unsigned)(int16_t)(16000 * sin(2 * M_PI * 500 * i / 22050.0)) & 0xffff);
    tly_audio a;
    tly_error err;
    assert_int_equal(tly_audio_decode_mem(wav, 44 + data_len, 60, &a, &err), 0);
    assert_int_equal(a.source_rate, 22050);
    assert_int_equal(a.source_channels, 2);
    assert_true(labs((long)a.n - RATE) <= 2);
    double hz, rms;
    tone_stats(a.samples + 500, a.n - 1000, RATE, &hz, &rms);
    assert_true(fabs(hz - 500) < 2);
    assert_true(fabs(rms - 16000.0 / 32768 / 2 / sqrt(2)) < 0.01);   /* averaged with the silent channel */
    tly_audio_free(&a);
    /* Too long for the limit. */
    assert_int_equal(tly_audio_decode_mem(wav, 44 + data_len, 0.5, &a, &err), -1);
    assert_string_equal(err.code, "too_long");
    /* Not audio. */
    memset(wav, 'x', 400);
    assert_int_equal(tly_audio_decode_mem(wav, 400, 60, &a, &err), -1);
    assert_string_equal(err.code, "unreadable_audio");
    assert_null(a.samples);
    free(wav);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vad_silence),
        cmocka_unit_test(test_vad_stationary_noise),
        cmocka_unit_test(test_vad_bursts_in_noise),
        cmocka_unit_test(test_vad_clicks_and_gaps),
        cmocka_unit_test(test_vad_rising_noise),
        cmocka_unit_test(test_resample),
        cmocka_unit_test(test_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
