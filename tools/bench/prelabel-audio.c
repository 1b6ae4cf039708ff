/* prelabel-audio.c -- bench_prelabel-audio: accuracy and speed of the built-in audio
 * models (annotate/audio_models.h), called directly (no tallyd). Driven by
 * tools/bench/prelabel-audio, which makes the inputs with sox; see
 * tools/bench/README.md for what every line means.
 *
 *   bench_prelabel-audio vad LAYOUT CLEAN NOISE...
 *       CLEAN: real speech clips joined with digital silence (sox); LAYOUT: one line
 *       "START END" (seconds) per clip as placed in CLEAN. The truth, per 10 ms frame:
 *       inside a clip, the frame's clean energy is within 30 dB of the clip's loud
 *       frames (its 95th percentile), with pauses under 300 ms inside a clip bridged
 *       (a labeler marks "he was not an ill disposed young man" as one span); outside
 *       clips, no speech. Truth segments: each clip from its first to its last speech
 *       frame. Each NOISE file (sox synth) is mixed into CLEAN at 20, 10, 5 and 0 dB
 *       SNR (speech power over the truth frames vs noise power), and the clean file is
 *       run too; on each, two detectors:
 *         tally     tly_vad_detect (adaptive noise floor + spectral flatness, ...);
 *         baseline  a fixed-threshold energy VAD: frame energy (the same 25 ms frames)
 *                   above T dBFS, with the same 150 ms hangover, 300 ms gap bridging
 *                   and 250 ms minimum segment as tally; T is the best threshold for
 *                   frame F1 on CLEAN (a grid from -70 to -10 dBFS, 1 dB steps), so
 *                   the baseline is tuned on clean speech the way a fixed threshold
 *                   would be set in practice.
 *         energyfloor  (an ablation of tally's) energy 7 dB over the mix's own
 *                   10th-percentile frame energy, the same smoothing: a global
 *                   noise floor, no local tracking, no spectral shape.
 *       Frame level: precision, recall, F1 of speech frames. Segment level: detected
 *       speech segments matched one-to-one to truth segments at IoU >= 0.5 (greedy,
 *       best IoU first): precision = matched / detected, recall = matched / truth;
 *       plus the mean onset / offset error of matched pairs.
 *
 *   bench_prelabel-audio asr TRANSCRIPTION LABEL FILE...
 *       Transcribes each FILE (decode -> 16 kHz -> VAD -> PocketSphinx, exactly as the
 *       "asr" model does; the recogniser is created once, its load time reported
 *       apart) and scores it against TRANSCRIPTION (CMU format: "<s> words </s> (ID)",
 *       ID = the file's base name without extension). Word error rate = (substitutions
 *       + deletions + insertions) / reference words over all files (Levenshtein on
 *       lowercase words).
 *
 *   bench_prelabel-audio wer TRANSCRIPTION LABEL HYPS
 *       The same scoring for hypotheses made elsewhere (the pocketsphinx_continuous
 *       baseline): HYPS has lines "ID words...".
 *
 * Results on stdout as `figure: NAME VALUE UNIT`, progress on stderr. Exit 0 when the
 * figures were measured, 1 when something broke.
 */
#include "annotate/audio_models.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOP 160
#define WIN 400
#define MAX_CLIPS 256
#define MAX_WORDS 512
#define LINE 8192

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int load(const char *path, tly_audio *a)
{
    tly_error err;
    if (tly_audio_decode_file(path, TLY_AUDIO_MAX_SECONDS, a, &err) < 0) {
        fprintf(stderr, "prelabel-audio-bench: %s: %s\n", path, err.message);
        return -1;
    }
    return 0;
}

/* ---- VAD ------------------------------------------------------------------------------- */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Frame energies (dBFS): over the 10 ms hop (hop = 1) or the 25 ms window centred on it. */
static float *frame_energy(const float *x, size_t n, size_t frames, int window)
{
    float *e = malloc(frames * sizeof *e);
    if (!e)
        return NULL;
    for (size_t t = 0; t < frames; t++) {
        long start = window ? (long)(t * HOP) + HOP / 2 - WIN / 2 : (long)(t * HOP);
        int len = window ? WIN : HOP;
        double sum = 0;
        for (int i = 0; i < len; i++) {
            long at = start + i;
            float v = at >= 0 && (size_t)at < n ? x[at] : 0.0f;
            sum += (double)v * v;
        }
        e[t] = (float)(10 * log10(sum / len + 1e-12));
    }
    return e;
}

/* Runs of 0s shorter than gap between 1s become 1s; runs of 1s shorter than min become 0s. */
static void smooth_runs(unsigned char *s, size_t frames, size_t gap, size_t min)
{
    for (size_t t = 0; t < frames;) {
        size_t e = t;
        while (e < frames && s[e] == s[t])
            e++;
        if (!s[t] && t > 0 && e < frames && e - t < gap)
            memset(s + t, 1, e - t);
        t = e;
    }
    for (size_t t = 0; t < frames;) {
        size_t e = t;
        while (e < frames && s[e] == s[t])
            e++;
        if (s[t] && e - t < min)
            memset(s + t, 0, e - t);
        t = e;
    }
}

/* The baseline: energy above threshold, 150 ms hangover, then the same bridging and
 * minimum length as tally's VAD. */
static void baseline_vad(const float *energy, size_t frames, float threshold, unsigned char *out)
{
    int hang = 0;
    for (size_t t = 0; t < frames; t++) {
        if (energy[t] >= threshold)
            hang = 16;
        out[t] = hang > 0;
        if (hang > 0)
            hang--;
    }
    smooth_runs(out, frames, 30, 25);
}

typedef struct {
    double start, end;
} span;

typedef struct {
    double precision, recall, f1;
    double seg_precision, seg_recall;
    double onset_ms, offset_ms;
} vad_score;

static size_t spans_of(const unsigned char *s, size_t frames, span *out, size_t max)
{
    size_t n = 0;
    for (size_t t = 0; t < frames;) {
        size_t e = t;
        while (e < frames && s[e] == s[t])
            e++;
        if (s[t] && n < max)
            out[n++] = (span){t * 0.01, e * 0.01};
        t = e;
    }
    return n;
}

static void score_vad(const unsigned char *truth, const span *truth_segs, size_t n_truth, const unsigned char *hyp,
                      size_t frames, vad_score *sc)
{
    size_t tp = 0, fp = 0, fn = 0;
    for (size_t t = 0; t < frames; t++) {
        tp += truth[t] && hyp[t];
        fp += !truth[t] && hyp[t];
        fn += truth[t] && !hyp[t];
    }
    sc->precision = tp + fp ? (double)tp / (double)(tp + fp) : 1;
    sc->recall = tp + fn ? (double)tp / (double)(tp + fn) : 1;
    sc->f1 = sc->precision + sc->recall > 0 ? 2 * sc->precision * sc->recall / (sc->precision + sc->recall) : 0;
    static span det[4096];
    size_t n_det = spans_of(hyp, frames, det, 4096);
    unsigned char used_t[MAX_CLIPS] = {0};
    static unsigned char used_d[4096];
    memset(used_d, 0, sizeof used_d);
    size_t matched = 0;
    double onset = 0, offset = 0;
    for (;;) {   /* greedy: the best remaining pair first */
        double best = 0.5;
        size_t bi = 0, bj = 0;
        int found = 0;
        for (size_t i = 0; i < n_truth; i++) {
            if (used_t[i])
                continue;
            for (size_t j = 0; j < n_det; j++) {
                if (used_d[j])
                    continue;
                double inter = fmin(truth_segs[i].end, det[j].end) - fmax(truth_segs[i].start, det[j].start);
                double uni = fmax(truth_segs[i].end, det[j].end) - fmin(truth_segs[i].start, det[j].start);
                double iou = inter > 0 ? inter / uni : 0;
                if (iou >= best) {
                    best = iou;
                    bi = i;
                    bj = j;
                    found = 1;
                }
            }
        }
        if (!found)
            break;
        used_t[bi] = used_d[bj] = 1;
        matched++;
        onset += fabs(truth_segs[bi].start - det[bj].start);
        offset += fabs(truth_segs[bi].end - det[bj].end);
    }
    sc->seg_precision = n_det ? (double)matched / (double)n_det : 1;
    sc->seg_recall = n_truth ? (double)matched / (double)n_truth : 1;
    sc->onset_ms = matched ? 1000 * onset / (double)matched : 0;
    sc->offset_ms = matched ? 1000 * offset / (double)matched : 0;
}

static void print_vad(const char *name, const char *who, const vad_score *s)
{
    printf("figure: vad_%s_%s_frame_precision %.3f ratio\n", name, who, s->precision);
    printf("figure: vad_%s_%s_frame_recall %.3f ratio\n", name, who, s->recall);
    printf("figure: vad_%s_%s_frame_f1 %.3f ratio\n", name, who, s->f1);
    printf("figure: vad_%s_%s_segment_precision %.3f ratio\n", name, who, s->seg_precision);
    printf("figure: vad_%s_%s_segment_recall %.3f ratio\n", name, who, s->seg_recall);
    printf("figure: vad_%s_%s_onset_error %.0f ms\n", name, who, s->onset_ms);
    printf("figure: vad_%s_%s_offset_error %.0f ms\n", name, who, s->offset_ms);
}

/* The tally VAD's decisions as frames. */
static int tally_frames(const float *x, size_t n, size_t frames, unsigned char *out, double *cpu)
{
    tly_vad_result v;
    tly_error err;
    double c0 = cpu_s();
    if (tly_vad_detect(x, n, &v, &err) < 0) {
        fprintf(stderr, "prelabel-audio-bench: vad: %s\n", err.message);
        return -1;
    }
    *cpu += cpu_s() - c0;
    memset(out, 0, frames);
    for (size_t i = 0; i < v.n; i++) {
        if (!v.segments[i].speech)
            continue;
        for (size_t t = (size_t)llround(v.segments[i].start * 100); t < (size_t)llround(v.segments[i].end * 100) && t < frames; t++)
            out[t] = 1;
    }
    tly_vad_result_free(&v);
    return 0;
}

static int bench_vad(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_prelabel-audio vad LAYOUT CLEAN NOISE...\n");
        return 1;
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    span clips[MAX_CLIPS];
    size_t n_clips = 0;
    while (n_clips < MAX_CLIPS && fscanf(f, "%lf %lf", &clips[n_clips].start, &clips[n_clips].end) == 2)
        n_clips++;
    fclose(f);
    tly_audio clean;
    if (load(argv[3], &clean) < 0)
        return 1;
    int rc = 1;
    size_t n = clean.n, frames = (n + HOP - 1) / HOP;
    float *hop_energy = frame_energy(clean.samples, n, frames, 0), *mix = malloc(n * sizeof *mix);
    float *scratch = malloc(frames * sizeof *scratch);
    unsigned char *truth = calloc(frames, 1), *hyp = malloc(frames);
    span truth_segs[MAX_CLIPS];
    size_t n_truth = 0;
    double tally_cpu = 0, audio_s = 0;
    if (!hop_energy || !mix || !scratch || !truth || !hyp)
        goto out;
    /* The truth: energy within 30 dB of the clip's loud frames, short pauses bridged;
     * its segments are the runs of speech frames. */
    for (size_t c = 0; c < n_clips; c++) {
        size_t a = (size_t)llround(clips[c].start * 100), b = (size_t)llround(clips[c].end * 100);
        b = b > frames ? frames : b;
        if (a >= b)
            continue;
        memcpy(scratch, hop_energy + a, (b - a) * sizeof *scratch);
        qsort(scratch, b - a, sizeof *scratch, cmp_float);
        float loud = scratch[(size_t)(0.95 * (double)(b - a - 1))];
        for (size_t t = a; t < b; t++)
            truth[t] = hop_energy[t] >= loud - 30;
    }
    smooth_runs(truth, frames, 30, 1);
    n_truth = spans_of(truth, frames, truth_segs, MAX_CLIPS);
    size_t speech_frames = 0;
    for (size_t t = 0; t < frames; t++)
        speech_frames += truth[t];
    printf("figure: vad_audio_seconds %.1f s\n", (double)n / TLY_AUDIO_RATE);
    printf("figure: vad_truth_speech_fraction %.3f ratio\n", (double)speech_frames / (double)frames);
    printf("figure: vad_truth_segments %zu segments\n", n_truth);

    /* The baseline's threshold: best frame F1 on the clean recording. */
    float *win_energy = frame_energy(clean.samples, n, frames, 1);
    if (!win_energy)
        goto out;
    float best_t = -40;
    double best_f1 = -1;
    for (int t = -70; t <= -10; t++) {
        vad_score s;
        baseline_vad(win_energy, frames, (float)t, hyp);
        score_vad(truth, truth_segs, n_truth, hyp, frames, &s);
        if (s.f1 > best_f1) {
            best_f1 = s.f1;
            best_t = (float)t;
        }
    }
    free(win_energy);
    printf("figure: vad_baseline_threshold %.0f dBFS\n", best_t);

    double speech_power = 0;
    for (size_t t = 0; t < frames; t++)
        if (truth[t])
            for (size_t i = t * HOP; i < (t + 1) * HOP && i < n; i++)
                speech_power += (double)clean.samples[i] * clean.samples[i];
    speech_power /= (double)(speech_frames * HOP);

    static const int snrs[] = {20, 10, 5, 0};
    for (int k = 4; k <= argc; k++) {   /* each NOISE, then (k == argc) the clean recording */
        tly_audio noise = {0};
        const char *name = "clean";
        char label[128];
        if (k < argc) {
            if (load(argv[k], &noise) < 0 || noise.n == 0) {
                tly_audio_free(&noise);
                goto out;
            }
            const char *base = strrchr(argv[k], '/') ? strrchr(argv[k], '/') + 1 : argv[k];
            snprintf(label, sizeof label, "%.*s", (int)strcspn(base, "."), base);
            name = label;
        }
        double noise_power = 0;
        for (size_t i = 0; i < noise.n; i++)
            noise_power += (double)noise.samples[i] * noise.samples[i];
        noise_power = noise.n ? noise_power / (double)noise.n : 0;
        for (int s = 0; s < (k < argc ? 4 : 1); s++) {
            char full[200];
            double gain = 0;
            if (k < argc) {
                gain = sqrt(speech_power / noise_power / pow(10, snrs[s] / 10.0));
                snprintf(full, sizeof full, "%s%d", name, snrs[s]);
            } else {
                snprintf(full, sizeof full, "clean");
            }
            for (size_t i = 0; i < n; i++)
                mix[i] = clean.samples[i] + (noise.n ? (float)gain * noise.samples[i % noise.n] : 0.0f);
            vad_score st, sb, sa;
            if (tally_frames(mix, n, frames, hyp, &tally_cpu) < 0) {
                tly_audio_free(&noise);
                goto out;
            }
            audio_s += (double)n / TLY_AUDIO_RATE;
            score_vad(truth, truth_segs, n_truth, hyp, frames, &st);
            float *e = frame_energy(mix, n, frames, 1);
            if (!e) {
                tly_audio_free(&noise);
                goto out;
            }
            baseline_vad(e, frames, best_t, hyp);
            score_vad(truth, truth_segs, n_truth, hyp, frames, &sb);
            /* The ablation: threshold 7 dB over the recording's own 10th percentile. */
            memcpy(scratch, e, frames * sizeof *e);
            qsort(scratch, frames, sizeof *scratch, cmp_float);
            baseline_vad(e, frames, scratch[frames / 10] + 7, hyp);
            free(e);
            score_vad(truth, truth_segs, n_truth, hyp, frames, &sa);
            print_vad(full, "tally", &st);
            print_vad(full, "baseline", &sb);
            print_vad(full, "energyfloor", &sa);
            fprintf(stderr, "prelabel-audio-bench: vad %-10s frame F1 tally %.3f baseline %.3f energyfloor %.3f; segments "
                            "P/R tally %.2f/%.2f baseline %.2f/%.2f energyfloor %.2f/%.2f\n",
                    full, st.f1, sb.f1, sa.f1, st.seg_precision, st.seg_recall, sb.seg_precision, sb.seg_recall,
                    sa.seg_precision, sa.seg_recall);
        }
        tly_audio_free(&noise);
    }
    printf("figure: vad_speed %.0f x_realtime\n", tally_cpu > 0 ? audio_s / tally_cpu : 0);
    rc = 0;
out:
    free(hop_energy);
    free(mix);
    free(scratch);
    free(truth);
    free(hyp);
    tly_audio_free(&clean);
    return rc;
}

/* ---- ASR --------------------------------------------------------------------------------- */

/* Lowercase words of text into words[] (pointers into text, which is modified). */
static size_t split_words(char *text, char **words, size_t max)
{
    size_t n = 0;
    for (char *p = text; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    for (char *w = strtok(text, " \t\r\n"); w && n < max; w = strtok(NULL, " \t\r\n"))
        if (strcmp(w, "<s>") != 0 && strcmp(w, "</s>") != 0)
            words[n++] = w;
    return n;
}

static size_t edit_distance(char **ref, size_t nr, char **hyp, size_t nh)
{
    static size_t d[MAX_WORDS + 1][MAX_WORDS + 1];
    for (size_t i = 0; i <= nr; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= nh; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= nr; i++)
        for (size_t j = 1; j <= nh; j++) {
            size_t sub = d[i - 1][j - 1] + (strcmp(ref[i - 1], hyp[j - 1]) != 0);
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[nr][nh];
}

/* The reference of id from a CMU transcription file, into buf. */
static int reference_of(const char *transcription, const char *id, char *buf, size_t bufsz)
{
    FILE *f = fopen(transcription, "r");
    if (!f)
        return -1;
    char line[LINE], tag[300];
    snprintf(tag, sizeof tag, "(%s)", id);
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        char *open = strrchr(line, '(');
        if (open && strncmp(open, tag, strlen(tag)) == 0) {
            *open = 0;
            snprintf(buf, bufsz, "%s", line);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

typedef struct {
    size_t errors, ref_words;
    double confidence_sum;
    size_t files;
} wer_total;

static int score_one(const char *transcription, const char *id, const char *hyp_text, wer_total *w)
{
    char ref[LINE], hyp[LINE];
    if (reference_of(transcription, id, ref, sizeof ref) < 0) {
        fprintf(stderr, "prelabel-audio-bench: no reference for %s in %s\n", id, transcription);
        return -1;
    }
    snprintf(hyp, sizeof hyp, "%s", hyp_text);
    char *rw[MAX_WORDS], *hw[MAX_WORDS];
    size_t nr = split_words(ref, rw, MAX_WORDS), nh = split_words(hyp, hw, MAX_WORDS);
    w->errors += edit_distance(rw, nr, hw, nh);
    w->ref_words += nr;
    w->files++;
    return 0;
}

static void id_of(const char *path, char *id, size_t idsz)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    snprintf(id, idsz, "%.*s", (int)strcspn(base, "."), base);
}

static int bench_asr(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_prelabel-audio asr TRANSCRIPTION LABEL FILE...\n");
        return 1;
    }
    const char *label = argv[3];
    wer_total w = {0};
    double audio_s = 0, w0 = now_s(), c0 = cpu_s();
    /* Load the recogniser once, on silence, so its load time is not in the figures. */
    float silence[1600] = {0};
    tly_asr_result warm;
    tly_error err;
    if (tly_asr_transcribe(silence, 1600, NULL, &warm, &err) < 0) {
        fprintf(stderr, "prelabel-audio-bench: asr: %s\n", err.message);
        return 1;
    }
    tly_asr_result_free(&warm);
    printf("figure: asr_%s_model_load %.2f s\n", label, now_s() - w0);
    w0 = now_s();
    c0 = cpu_s();
    for (int k = 4; k < argc; k++) {
        tly_audio a;
        tly_vad_result v;
        tly_asr_result r;
        char id[256];
        id_of(argv[k], id, sizeof id);
        if (load(argv[k], &a) < 0)
            return 1;
        audio_s += (double)a.n / TLY_AUDIO_RATE;
        int ok = tly_vad_detect(a.samples, a.n, &v, &err) == 0;
        if (ok && tly_asr_transcribe(a.samples, a.n, &v, &r, &err) < 0) {
            tly_vad_result_free(&v);
            ok = 0;
        }
        tly_audio_free(&a);
        if (!ok) {
            fprintf(stderr, "prelabel-audio-bench: %s: %s\n", argv[k], err.message);
            return 1;
        }
        fprintf(stderr, "prelabel-audio-bench: %s [%.2f] %s\n", id, r.confidence, r.text);
        w.confidence_sum += r.confidence;
        int s = score_one(argv[2], id, r.text, &w);
        tly_asr_result_free(&r);
        tly_vad_result_free(&v);
        if (s < 0)
            return 1;
    }
    double wall = now_s() - w0, cpu = cpu_s() - c0;
    printf("figure: asr_%s_files %zu files\n", label, w.files);
    printf("figure: asr_%s_reference_words %zu words\n", label, w.ref_words);
    printf("figure: asr_%s_wer %.3f ratio\n", label, (double)w.errors / (double)w.ref_words);
    printf("figure: asr_%s_mean_confidence %.3f ratio\n", label, w.confidence_sum / (double)w.files);
    printf("figure: asr_%s_seconds %.2f s\n", label, wall);
    printf("figure: asr_%s_realtime_factor %.3f x\n", label, audio_s > 0 ? cpu / audio_s : 0);
    tly_asr_shutdown();
    return 0;
}

static int bench_wer(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_prelabel-audio wer TRANSCRIPTION LABEL HYPS\n");
        return 1;
    }
    FILE *f = fopen(argv[4], "r");
    if (!f) {
        perror(argv[4]);
        return 1;
    }
    wer_total w = {0};
    char line[LINE];
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        char *sp = strchr(line, ' ');
        char id[256];
        snprintf(id, sizeof id, "%.*s", (int)(sp ? (size_t)(sp - line) : strcspn(line, "\n")), line);
        if (!id[0])
            continue;
        if (score_one(argv[2], id, sp ? sp + 1 : "", &w) < 0)
            rc = 1;
    }
    fclose(f);
    if (rc || !w.ref_words)
        return 1;
    printf("figure: asr_%s_files %zu files\n", argv[3], w.files);
    printf("figure: asr_%s_wer %.3f ratio\n", argv[3], (double)w.errors / (double)w.ref_words);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "vad") == 0)
        return bench_vad(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "asr") == 0)
        return bench_asr(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "wer") == 0)
        return bench_wer(argc, argv);
    fprintf(stderr, "usage: bench_prelabel-audio vad|asr|wer ... (see tools/bench/prelabel-audio.c)\n");
    return 1;
}
