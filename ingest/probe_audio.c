/* probe_audio.c -- validate an audio file by decoding it to the end, and compute its
 * waveform peaks (audiowaveform's JSON format, 8-bit) in the same pass.
 *
 * Design:
 *  - libsndfile opens WAV, FLAC and Ogg (Vorbis, Opus) by content; its container
 *    type must be the one we sniffed, so a file is judged by one reading only.
 *  - Every frame is decoded, in fixed-size chunks (memory: one chunk plus the peaks),
 *    so bad FLAC / Vorbis data is found. The frame count is known up front from the
 *    header, so the peaks' samples_per_pixel = ceil(frames / buckets) is fixed before
 *    reading and each frame's pixel is frames_index / samples_per_pixel; the number
 *    of pixels is then ceil(frames / samples_per_pixel) <= buckets (fewer when the
 *    division is not exact: audiowaveform's format needs an integer
 *    samples_per_pixel so that pixel i starts exactly at i * spp / sample_rate).
 *  - Truncation: fewer frames decoded than the header declares. libsndfile itself
 *    quietly shortens a WAV whose data chunk claims more bytes than the file holds,
 *    so for WAV we read the RIFF chunk headers ourselves and compare.
 *  - libsndfile keeps the reason for a failed sf_open in a library-global variable;
 *    reading it from several threads at once can at worst give a wrong message text,
 *    never a wrong error code, since the code does not depend on it.
 */
#include "ingest/thumbnail.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sndfile.h>

#define CHUNK_SAMPLES 8192 /* floats per read, across all channels */

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 1 if the WAV's data chunk declares more bytes than the file holds, 0 if not (or if
 * the layout is something libsndfile handled and we need not second-guess), -1 on a
 * read error. */
static int wav_data_truncated(const char *path, uint64_t *declared, uint64_t *present)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    struct stat st;
    int rc = 0;
    unsigned char hdr[12];
    if (fstat(fileno(f), &st) != 0) {
        rc = -1;
        goto out;
    }
    if (fread(hdr, 1, 12, f) != 12 || memcmp(hdr, "RIFF", 4) || memcmp(hdr + 8, "WAVE", 4))
        goto out;
    uint64_t pos = 12, size = (uint64_t)st.st_size;
    for (int i = 0; i < 4096 && pos + 8 <= size; i++) {
        unsigned char ch[8];
        if (fseeko(f, (off_t)pos, SEEK_SET) != 0 || fread(ch, 1, 8, f) != 8) {
            rc = ferror(f) ? -1 : 0;
            goto out;
        }
        uint32_t len = le32(ch + 4);
        pos += 8;
        if (memcmp(ch, "data", 4) == 0) {
            /* 0 and 0xFFFFFFFF are what streaming writers leave when they cannot
             * seek back to fill in the size: unknown, not a lie. */
            if (len != 0 && len != 0xFFFFFFFFu && len > size - pos) {
                *declared = len;
                *present = size - pos;
                rc = 1;
            }
            goto out;
        }
        pos += (uint64_t)len + (len & 1); /* chunks are padded to even sizes */
    }
out:
    fclose(f);
    return rc;
}

static const char *sf_container_name(int format)
{
    switch (format & SF_FORMAT_TYPEMASK) {
    case SF_FORMAT_WAV:
    case SF_FORMAT_WAVEX:
        return "wav";
    case SF_FORMAT_FLAC:
        return "flac";
    case SF_FORMAT_OGG:
        return "ogg";
    default:
        return NULL;
    }
}

/* -1.0..1.0 -> -128..127, like audiowaveform's 16-bit sample >> 8 (floor). */
static int peak8(float x)
{
    if (!(x == x)) /* NaN from a float WAV: count as silence */
        return 0;
    float v = floorf(x * 128.0f);
    return v < -128.0f ? -128 : v > 127.0f ? 127 : (int)v;
}

typedef struct {
    SNDFILE *sf;
    float *buf;
    signed char *peaks; /* 2 * length: min, max per pixel */
    json_t *json;
} audio_ctx;

static int probe_run(audio_ctx *c, const char *path, const char *format,
                     const tly_probe_opts *opts, tly_media_info *info, json_t **waveform,
                     tly_error *err)
{
    SF_INFO si;
    memset(&si, 0, sizeof si);
    c->sf = sf_open(path, SFM_READ, &si);
    if (!c->sf)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "corrupt", "cannot read %s audio: %s", format,
                        sf_strerror(NULL));
    const char *got = sf_container_name(si.format);
    if (!got || strcmp(got, format) != 0)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "corrupt",
                        "file starts like %s but does not decode as %s", format, format);
    if (si.channels < 1 || si.samplerate < 1)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "corrupt", "bad %s header (%d channels, %d Hz)",
                        format, si.channels, si.samplerate);
    if (si.frames <= 0)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "corrupt", "%s file contains no audio", format);
    if (strcmp(format, "wav") == 0) {
        uint64_t declared = 0, present = 0;
        int t = wav_data_truncated(path, &declared, &present);
        if (t < 0)
            return tly_fail(err, TLY_E_IO, "io_error", "cannot re-read WAV header: %s",
                            strerror(errno));
        if (t > 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, "truncated",
                            "WAV data chunk declares %llu bytes but the file holds %llu",
                            (unsigned long long)declared, (unsigned long long)present);
    }

    int64_t frames = si.frames;
    int buckets = opts->waveform_buckets > 0 ? opts->waveform_buckets : 1;
    int64_t spp = (frames + buckets - 1) / buckets;
    int64_t length = (frames + spp - 1) / spp;
    if (waveform) {
        c->peaks = malloc((size_t)length * 2);
        if (!c->peaks)
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory for peaks");
    }
    int chunk_frames = CHUNK_SAMPLES / si.channels > 0 ? CHUNK_SAMPLES / si.channels : 1;
    c->buf = malloc((size_t)chunk_frames * (size_t)si.channels * sizeof *c->buf);
    if (!c->buf)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory for audio");

    int64_t done = 0, pixel = 0;
    float lo = 0.0f, hi = 0.0f;
    int have = 0; /* lo/hi hold samples of `pixel` */
    for (;;) {
        sf_count_t n = sf_readf_float(c->sf, c->buf, chunk_frames);
        if (n <= 0)
            break;
        if (c->peaks) {
            for (sf_count_t i = 0; i < n; i++) {
                int64_t p = (done + i) / spp;
                if (p >= length) /* more frames than declared: ignore the excess */
                    break;
                if (p != pixel && have) {
                    c->peaks[2 * pixel] = (signed char)peak8(lo);
                    c->peaks[2 * pixel + 1] = (signed char)peak8(hi);
                    have = 0;
                }
                pixel = p;
                const float *s = c->buf + i * si.channels;
                for (int ch = 0; ch < si.channels; ch++) {
                    if (!have || s[ch] < lo)
                        lo = s[ch];
                    if (!have || s[ch] > hi)
                        hi = s[ch];
                    have = 1;
                }
            }
        }
        done += n;
    }
    int sferr = sf_error(c->sf);
    if (done < frames)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "truncated",
                        "%s audio ends after %lld of %lld frames%s%s", format, (long long)done,
                        (long long)frames, sferr ? ": " : "", sferr ? sf_strerror(c->sf) : "");
    if (sferr)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "corrupt", "%s audio is corrupt: %s", format,
                        sf_strerror(c->sf));
    if (c->peaks && have) {
        c->peaks[2 * pixel] = (signed char)peak8(lo);
        c->peaks[2 * pixel + 1] = (signed char)peak8(hi);
    }

    double duration = (double)frames / si.samplerate;
    if (waveform) {
        json_t *data = json_array();
        c->json = json_pack("{s:i, s:i, s:i, s:I, s:i, s:I, s:f, s:o}", "version", 2,
                            "channels", 1, "sample_rate", si.samplerate, "samples_per_pixel",
                            (json_int_t)spp, "bits", 8, "length", (json_int_t)length,
                            "duration", duration, "data", data); /* "o" steals data */
        if (!c->json)
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory for waveform");
        for (int64_t i = 0; i < 2 * length; i++)
            if (json_array_append_new(data, json_integer(c->peaks[i])) != 0)
                return tly_fail(err, TLY_E_INTERNAL, "out_of_memory",
                                "out of memory for waveform");
    }

    info->kind = TLY_MEDIA_AUDIO;
    snprintf(info->format, sizeof info->format, "%s", format);
    info->channels = si.channels;
    info->sample_rate = si.samplerate;
    info->frames = frames;
    info->duration = duration;
    if (waveform) {
        *waveform = c->json;
        c->json = NULL;
    }
    return 0;
}

int tly_probe_audio(const char *path, const char *format, const tly_probe_opts *opts,
                    tly_media_info *info, json_t **waveform, tly_error *err)
{
    audio_ctx c;
    memset(&c, 0, sizeof c);
    int rc = probe_run(&c, path, format, opts, info, waveform, err);
    if (c.sf)
        sf_close(c.sf);
    free(c.buf);
    free(c.peaks);
    json_decref(c.json);
    return rc;
}
