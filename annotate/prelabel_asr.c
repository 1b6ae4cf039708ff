/* prelabel_asr.c -- the built-in model "asr": speech recognition with CMU PocketSphinx
 * (Debian's 0.8+5prealpha and its US English model), written as `transcription`
 * pre-labels with a confidence.
 *
 * Recognisers: ps_init loads a 27 MB language model and a 1.3 MB-word dictionary
 * (about 2 s), so decoders are kept in a small pool (TLY_ASR_POOL), created on first
 * use and reused; a caller takes one, decodes, and gives it back; callers beyond the
 * pool's size wait. A decoder is only ever used by one thread at a time. Creation is
 * serialised, and PocketSphinx's logging (process-global in sphinxbase) is switched
 * off once with err_set_logfp(NULL) -- the same effect as `-logfn /dev/null` without
 * each ps_init reopening the global log file under a decoder running on another
 * thread. The idle decoders are freed at exit (or by tly_asr_shutdown).
 *
 * Decoding (tly_asr_transcribe): the speech segments found by the VAD
 * (prelabel_vad.c), padded by 300 ms and merged where they touch, are decoded as one
 * utterance each (at most 40 s; longer ones are cut), which skips silence and keeps
 * the cepstral mean normalisation local (the model's feat.params asks for batch CMN,
 * computed over each utterance). Samples are converted to
 * 16-bit (the decoder's input format) with clipping. Words come from the best path
 * through the lattice (ps_seg_iter after the utterance: -bestpath is on by default)
 * with their posterior probabilities (ps_seg_prob, logmath_exp); fillers (<s>, </s>,
 * <sil>, [NOISE]...) are dropped and alternate pronunciations ("read(2)") folded.
 * The confidence is the mean word posterior; with no words it is the VAD's certainty
 * that there is no speech (0 if it heard speech that yielded no words).
 *
 * The backend: setup() needs a transcription control (and, if it names a language,
 * English) and the model files; predict() decodes each item's blob, runs the VAD and
 * the recogniser, and answers {control: "text"} (cut at a word boundary to the
 * control's max_length).
 */
#include "annotate/audio_models.h"
#include "annotate/prelabel.h"

#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MODEL_DIR "/usr/share/pocketsphinx/model/en-us"
#define ASR_VERSION "pocketsphinx-0.8+5prealpha/en-us"
#define PAD_S 0.3
#define MAX_UTTERANCE_S 40.0

/* ---- the decoder pool ------------------------------------------------------------------ */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t freed;
    ps_decoder_t *idle[TLY_ASR_POOL];
    int n_idle;
    int alive;                /* created and not freed: idle + in use */
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0};
static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

static void quiet_sphinx(void)
{
    err_set_logfp(NULL);
    atexit(tly_asr_shutdown);
}

int tly_asr_available(tly_error *err)
{
    static const char *const files[] = {MODEL_DIR "/en-us/mdef", MODEL_DIR "/en-us/means", MODEL_DIR "/en-us.lm.bin",
                                        MODEL_DIR "/cmudict-en-us.dict", NULL};
    for (size_t i = 0; files[i]; i++)
        if (access(files[i], R_OK) != 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, "model_unavailable",
                            "model 'asr' needs PocketSphinx's US English model (Debian package pocketsphinx-en-us): "
                            "%s is missing",
                            files[i]);
    return 0;
}

const char *tly_asr_version(void)
{
    return ASR_VERSION;
}

static ps_decoder_t *create_decoder(tly_error *err)
{
    if (tly_asr_available(err) < 0)
        return NULL;
    pthread_once(&quiet_once, quiet_sphinx);
    pthread_mutex_lock(&create_mu);
    cmd_ln_t *config = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", MODEL_DIR "/en-us", "-lm", MODEL_DIR "/en-us.lm.bin",
                                   "-dict", MODEL_DIR "/cmudict-en-us.dict", NULL);
    ps_decoder_t *ps = config ? ps_init(config) : NULL;
    if (config)
        cmd_ln_free_r(config);   /* the decoder holds its own reference */
    pthread_mutex_unlock(&create_mu);
    if (!ps)
        tly_fail(err, TLY_E_INTERNAL, "asr_init", "PocketSphinx could not load its model from %s", MODEL_DIR);
    return ps;
}

static ps_decoder_t *take_decoder(tly_error *err)
{
    pthread_mutex_lock(&pool.mu);
    while (pool.n_idle == 0 && pool.alive >= TLY_ASR_POOL)
        pthread_cond_wait(&pool.freed, &pool.mu);
    if (pool.n_idle) {
        ps_decoder_t *ps = pool.idle[--pool.n_idle];
        pthread_mutex_unlock(&pool.mu);
        return ps;
    }
    pool.alive++;   /* our slot, while we create outside the lock */
    pthread_mutex_unlock(&pool.mu);
    ps_decoder_t *ps = create_decoder(err);
    if (!ps) {
        pthread_mutex_lock(&pool.mu);
        pool.alive--;
        pthread_cond_signal(&pool.freed);
        pthread_mutex_unlock(&pool.mu);
    }
    return ps;
}

static void give_back(ps_decoder_t *ps)
{
    pthread_mutex_lock(&pool.mu);
    pool.idle[pool.n_idle++] = ps;
    pthread_cond_signal(&pool.freed);
    pthread_mutex_unlock(&pool.mu);
}

void tly_asr_shutdown(void)
{
    pthread_mutex_lock(&pool.mu);
    for (int i = 0; i < pool.n_idle; i++)
        ps_free(pool.idle[i]);
    pool.alive -= pool.n_idle;
    pool.n_idle = 0;
    pthread_mutex_unlock(&pool.mu);
}

/* ---- decoding ----------------------------------------------------------------------- */

typedef struct {
    char *text;
    size_t len, cap;
    double posterior_sum;
    size_t words;
} transcript;

/* Appends a dictionary word: fillers skipped, "word(2)" folded to "word". */
static int add_word(transcript *t, const char *word, double posterior)
{
    if (!word || !*word || word[0] == '<' || word[0] == '[' || word[0] == '+')
        return 0;
    size_t n = strcspn(word, "(");
    if (n == 0)
        return 0;
    if (t->len + n + 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        while (cap < t->len + n + 2)
            cap *= 2;
        char *s = realloc(t->text, cap);
        if (!s)
            return -1;
        t->text = s;
        t->cap = cap;
    }
    if (t->len)
        t->text[t->len++] = ' ';
    for (size_t i = 0; i < n; i++)
        t->text[t->len++] = (char)(word[i] >= 'A' && word[i] <= 'Z' ? word[i] - 'A' + 'a' : word[i]);
    t->text[t->len] = 0;
    t->posterior_sum += posterior < 0 ? 0 : posterior > 1 ? 1 : posterior;
    t->words++;
    return 0;
}

/* One utterance: pcm[from, to). */
static int decode_utterance(ps_decoder_t *ps, const float *pcm, size_t from, size_t to, int16_t *buf, transcript *t,
                            tly_error *err)
{
    for (size_t i = from; i < to; i++) {
        float x = pcm[i] * 32768.0f;
        buf[i - from] = (int16_t)(x > 32767.0f ? 32767 : x < -32768.0f ? -32768 : x);
    }
    if (ps_start_utt(ps) < 0 || ps_process_raw(ps, buf, to - from, FALSE, TRUE) < 0 || ps_end_utt(ps) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "asr_decode", "PocketSphinx failed to decode an utterance");
    logmath_t *lmath = ps_get_logmath(ps);
    for (ps_seg_t *seg = ps_seg_iter(ps); seg; seg = ps_seg_next(seg)) {
        int32 ascr, lscr, lback;
        int32 post = ps_seg_prob(seg, &ascr, &lscr, &lback);
        if (add_word(t, ps_seg_word(seg), logmath_exp(lmath, post)) < 0) {
            ps_seg_free(seg);
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        }
    }
    return 0;
}

int tly_asr_transcribe(const float *pcm, size_t n, const tly_vad_result *speech, tly_asr_result *out, tly_error *err)
{
    memset(out, 0, sizeof *out);
    /* The utterances: padded, merged speech segments (or everything). */
    size_t cap = speech ? speech->n + 1 : 1, count = 0;
    size_t *from = malloc(cap * sizeof *from), *to = malloc(cap * sizeof *to);
    int16_t *buf = NULL;
    transcript t = {0};
    ps_decoder_t *ps = NULL;
    int rc = -1;
    if (!from || !to) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    if (!speech) {
        from[0] = 0;
        to[0] = n;
        count = n > 0;
    } else {
        for (size_t i = 0; i < speech->n; i++) {
            if (!speech->segments[i].speech)
                continue;
            double s = speech->segments[i].start - PAD_S, e = speech->segments[i].end + PAD_S;
            size_t a = s <= 0 ? 0 : (size_t)(s * TLY_AUDIO_RATE), b = (size_t)(e * TLY_AUDIO_RATE);
            b = b > n ? n : b;
            if (count && a <= to[count - 1])
                to[count - 1] = b;
            else if (a < b) {
                from[count] = a;
                to[count++] = b;
            }
        }
    }
    size_t max_len = (size_t)(MAX_UTTERANCE_S * TLY_AUDIO_RATE);
    if (count && !(buf = malloc(max_len * sizeof *buf))) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    if (count && !(ps = take_decoder(err)))
        goto out;
    for (size_t u = 0; u < count; u++)
        for (size_t at = from[u]; at < to[u]; at += max_len)
            if (decode_utterance(ps, pcm, at, to[u] - at > max_len ? at + max_len : to[u], buf, &t, err) < 0)
                goto out;
    out->words = t.words;
    if (t.words)
        out->confidence = t.posterior_sum / (double)t.words;
    else
        out->confidence = speech && speech->speech_seconds == 0 ? speech->score : 0;
    out->text = t.text ? t.text : strdup("");
    if (!out->text) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    t.text = NULL;
    rc = 0;
out:
    if (ps)
        give_back(ps);
    free(t.text);
    free(buf);
    free(from);
    free(to);
    return rc;
}

void tly_asr_result_free(tly_asr_result *r)
{
    free(r->text);
    memset(r, 0, sizeof *r);
}

/* ---- the backend ----------------------------------------------------------------------- */

/* The first transcription control (borrowed), or NULL and a clear error. */
static json_t *find_control(const tly_project *p, tly_error *err)
{
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(p->template_json, "controls"), i, def) {
        const char *type = json_string_value(json_object_get(def, "type"));
        if (!type || strcmp(type, "transcription") != 0)
            continue;
        const char *lang = json_string_value(json_object_get(def, "language"));
        if (lang && strncasecmp(lang, "en", 2) != 0) {
            tly_fail(err, TLY_E_UNPROCESSABLE, "template_unsuitable",
                     "model 'asr' recognises English only; control '%s' asks for language '%s'",
                     json_string_value(json_object_get(def, "name")), lang);
            return NULL;
        }
        return def;
    }
    tly_fail(err, TLY_E_UNPROCESSABLE, "template_unsuitable",
             "model 'asr' needs a transcription control; the template has none");
    return NULL;
}

static int asr_setup(tly_model *m, const tly_project *p, const tly_prelabel_env *env, tly_error *err)
{
    (void)env;
    if (!find_control(p, err) || tly_asr_available(err) < 0)
        return -1;
    snprintf(m->version, sizeof m->version, "%s", ASR_VERSION);
    return 0;
}

/* text cut at a word boundary to at most max bytes (0: no limit), in place. */
static void cut_to(char *text, json_int_t max)
{
    if (max <= 0 || (json_int_t)strlen(text) <= max)
        return;
    size_t at = (size_t)max;
    while (at > 0 && text[at] != ' ')
        at--;
    text[at] = 0;
}

static int asr_predict(const tly_model *m, const tly_project *p, const tly_item *items, size_t n,
                       const tly_prelabel_env *env, tly_prelabel_out *out, char *version, size_t versionsz,
                       tly_error *err)
{
    (void)m;
    json_t *def = find_control(p, err);
    if (!def)
        return -1;
    const char *control = json_string_value(json_object_get(def, "name"));
    json_int_t max_len = json_integer_value(json_object_get(def, "max_length"));
    snprintf(version, versionsz, "%s", ASR_VERSION);
    for (size_t i = 0; i < n; i++) {
        out[i].score = -1;
        tly_audio a;
        tly_vad_result v;
        tly_asr_result r;
        tly_error ierr;
        if (tly_audio_decode_blob(env->blobs, items[i].sha256, TLY_AUDIO_MAX_SECONDS, &a, &ierr) < 0) {
            snprintf(out[i].error, sizeof out[i].error, "asr: cannot decode the audio: %s", ierr.message);
            continue;
        }
        if (tly_vad_detect(a.samples, a.n, &v, &ierr) < 0) {
            snprintf(out[i].error, sizeof out[i].error, "asr: %s", ierr.message);
        } else {
            if (tly_asr_transcribe(a.samples, a.n, &v, &r, &ierr) < 0) {
                snprintf(out[i].error, sizeof out[i].error, "asr: %s", ierr.message);
            } else {
                cut_to(r.text, max_len);
                out[i].answer = json_pack("{s:s}", control, r.text);
                out[i].score = r.confidence;
                tly_asr_result_free(&r);
            }
            tly_vad_result_free(&v);
        }
        tly_audio_free(&a);
    }
    return 0;
}

const tly_prelabel_backend tly_prelabel_asr = {
    .kind = "asr",
    .setup = asr_setup,
    .predict = asr_predict,
};
