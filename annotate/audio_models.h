/* audio_models.h -- the built-in audio models' internal API: decoding, voice-activity
 * detection and speech recognition, for prelabel_vad.c / prelabel_asr.c, their unit
 * tests and the benchmark (tools/bench/prelabel-audio.c). Not part of the HTTP API.
 *
 * Everything works on 16 kHz mono float samples in [-1, 1]: audio_decode.c turns any
 * file libsndfile reads (a blob, a path, or bytes in memory) into that -- channels
 * averaged, then resampled with libsamplerate's windowed-sinc converter -- so the VAD
 * and PocketSphinx (whose en-us model is trained on 16 kHz speech) see one format.
 *
 *   tly_audio a;        tly_audio_decode_file("x.flac", TLY_AUDIO_MAX_SECONDS, &a, &err);
 *   tly_vad_result v;   tly_vad_detect(a.samples, a.n, &v, &err);
 *   tly_asr_result r;   tly_asr_transcribe(a.samples, a.n, &v, &r, &err);
 *   ... r.text, r.confidence ...
 *   tly_asr_result_free(&r); tly_vad_result_free(&v); tly_audio_free(&a);
 *
 * All functions are safe to call from many threads at once (the recognisers are a
 * small pool: see tly_asr_transcribe).
 */
#ifndef TALLY_ANNOTATE_AUDIO_MODELS_H
#define TALLY_ANNOTATE_AUDIO_MODELS_H

#include "core/error.h"
#include "storage/blob.h"

#include <stddef.h>

#define TLY_AUDIO_RATE 16000          /* what every model here consumes */
#define TLY_AUDIO_MAX_SECONDS 1800.0  /* longer items get an item-level error */

/* ---- decoding (audio_decode.c) ---------------------------------------------------- */

typedef struct {
    float *samples;       /* n samples, 16 kHz mono, owned */
    size_t n;
    int source_rate;      /* what the file had */
    int source_channels;
} tly_audio;

/* Decodes a blob / a file / bytes in memory. TLY_E_UNPROCESSABLE "unreadable_audio"
 * when libsndfile cannot read it, "too_long" past max_seconds. */
int tly_audio_decode_blob(tly_blob_store *bs, const char *sha256, double max_seconds, tly_audio *out,
                          tly_error *err);
int tly_audio_decode_file(const char *path, double max_seconds, tly_audio *out, tly_error *err);
int tly_audio_decode_mem(const void *data, size_t len, double max_seconds, tly_audio *out, tly_error *err);
void tly_audio_free(tly_audio *a);

/* Resamples mono samples from rate_in to rate_out (libsamplerate, SRC_SINC_MEDIUM_QUALITY);
 * *out (malloc'd) gets about n * rate_out / rate_in samples. */
int tly_audio_resample(const float *in, size_t n, int rate_in, int rate_out, float **out, size_t *n_out,
                       tly_error *err);

/* ---- voice-activity detection (prelabel_vad.c) -------------------------------------- */

#define TLY_VAD_HOP_MS 10             /* one decision per 10 ms frame */

typedef struct {
    double start, end;    /* seconds */
    int speech;           /* 1 speech, 0 not */
} tly_vad_segment;

typedef struct {
    tly_vad_segment *segments;   /* alternating speech / non-speech, covering the whole item */
    size_t n;
    double score;                /* [0,1]: how clearly the frames fell on one side */
    double speech_seconds;
    double noise_db;             /* the estimated noise floor (median), dBFS */
} tly_vad_result;

/* Speech / non-speech segments of pcm (16 kHz mono). An empty or all-silent input
 * gives one non-speech segment (or none when n is 0). */
int tly_vad_detect(const float *pcm, size_t n, tly_vad_result *out, tly_error *err);
void tly_vad_result_free(tly_vad_result *r);

/* ---- speech recognition (prelabel_asr.c) -------------------------------------------- */

typedef struct {
    char *text;           /* lowercase words separated by single spaces; "" when none (owned) */
    double confidence;    /* [0,1]: mean word posterior; for no words, how sure there is no speech */
    size_t words;
} tly_asr_result;

/* 1 if PocketSphinx's en-us model files are installed, else 0 with err filled. */
int tly_asr_available(tly_error *err);
/* The model version written to predictions. */
const char *tly_asr_version(void);
/* Transcribes pcm (16 kHz mono). speech (optional) limits decoding to its speech
 * segments (padded; one utterance each), which keeps utterances short and skips
 * silence; NULL decodes the whole input as one utterance. Takes a recogniser from the
 * pool (created on first use, at most TLY_ASR_POOL of them; callers beyond that wait). */
#define TLY_ASR_POOL 2
int tly_asr_transcribe(const float *pcm, size_t n, const tly_vad_result *speech, tly_asr_result *out,
                       tly_error *err);
void tly_asr_result_free(tly_asr_result *r);
/* Frees the idle recognisers (also done at exit). */
void tly_asr_shutdown(void);

#endif
