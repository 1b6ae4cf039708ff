/* media.c -- the media probe front door: format tables, sniffing, and the order of
 * checks in tly_media_probe_file (see media.h for the contract).
 *
 * Design: the cheap checks come first and each failure names one cause, so an
 * uploader learns the real problem: size (stat) before content, content (magic
 * bytes) before the name, the name before the project's media kind, and only then a
 * full decode by the format's probe (probe_jpeg.c, probe_png.c, probe_audio.c). The
 * content decides the format, never the extension: the extension is only checked
 * against it, so a PNG named .jpg is flagged rather than half-decoded as JPEG. No
 * state is kept between calls, so any number of threads may probe at once.
 */
#include "ingest/media.h"

#include "ingest/thumbnail.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

const char *tly_media_kind_name(tly_media_kind kind)
{
    switch (kind) {
    case TLY_MEDIA_IMAGE: return "image";
    case TLY_MEDIA_AUDIO: return "audio";
    }
    return "unknown";
}

int tly_media_kind_parse(const char *name, tly_media_kind *out)
{
    if (name && strcmp(name, "image") == 0) {
        *out = TLY_MEDIA_IMAGE;
        return 0;
    }
    if (name && strcmp(name, "audio") == 0) {
        *out = TLY_MEDIA_AUDIO;
        return 0;
    }
    return -1;
}

void tly_probe_opts_default(tly_probe_opts *opts)
{
    opts->max_bytes = 512ull * 1024 * 1024;
    opts->max_pixels = 100000000ull;
    opts->thumb_max = 256;
    opts->thumb_quality = 85;
    opts->waveform_buckets = 800;
}

const char *tly_media_sniff(const unsigned char *head, size_t n)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (!head)
        return NULL;
    if (n >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff)
        return "jpeg";
    if (n >= 8 && memcmp(head, png_sig, 8) == 0)
        return "png";
    if (n >= 12 && memcmp(head, "RIFF", 4) == 0 && memcmp(head + 8, "WAVE", 4) == 0)
        return "wav";
    if (n >= 4 && memcmp(head, "fLaC", 4) == 0)
        return "flac";
    if (n >= 4 && memcmp(head, "OggS", 4) == 0)
        return "ogg";
    return NULL;
}

/* The extension of a name's last path component, with its dot, or NULL. */
static const char *name_extension(const char *name)
{
    if (!name)
        return NULL;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    return dot && dot != base && dot[1] ? dot : NULL;
}

const char *tly_media_format_for_name(const char *name)
{
    static const struct {
        const char *ext, *format;
    } table[] = {
        {".jpg", "jpeg"}, {".jpeg", "jpeg"}, {".jpe", "jpeg"}, {".png", "png"},
        {".wav", "wav"},  {".wave", "wav"},  {".flac", "flac"}, {".ogg", "ogg"},
        {".oga", "ogg"},  {".opus", "ogg"},
    };
    const char *ext = name_extension(name);
    if (!ext)
        return NULL;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcasecmp(ext, table[i].ext) == 0)
            return table[i].format;
    return NULL;
}

tly_media_kind tly_media_kind_of_format(const char *format)
{
    if (!format)
        return (tly_media_kind)0;
    if (strcmp(format, "jpeg") == 0 || strcmp(format, "png") == 0)
        return TLY_MEDIA_IMAGE;
    if (strcmp(format, "wav") == 0 || strcmp(format, "flac") == 0 || strcmp(format, "ogg") == 0)
        return TLY_MEDIA_AUDIO;
    return (tly_media_kind)0;
}

/* "JPEG", "PNG", ... for messages. */
static const char *format_title(const char *format)
{
    if (strcmp(format, "jpeg") == 0) return "JPEG";
    if (strcmp(format, "png") == 0) return "PNG";
    if (strcmp(format, "wav") == 0) return "WAV";
    if (strcmp(format, "flac") == 0) return "FLAC";
    if (strcmp(format, "ogg") == 0) return "OGG";
    return format;
}

json_t *tly_media_info_json(const tly_media_info *info)
{
    if (info->kind == TLY_MEDIA_AUDIO)
        return json_pack("{s:s, s:f, s:i, s:i, s:I}", "format", info->format, "duration",
                         info->duration, "sample_rate", info->sample_rate, "channels",
                         info->channels, "frames", (json_int_t)info->frames);
    return json_pack("{s:s, s:i, s:i, s:i}", "format", info->format, "width", info->width,
                     "height", info->height, "channels", info->channels);
}

int tly_media_probe_file(const char *path, const char *name, tly_media_kind expected,
                         const tly_probe_opts *opts, tly_media_info *info, tly_buf *thumb,
                         json_t **waveform, tly_error *err)
{
    tly_probe_opts defaults;
    if (!opts) {
        tly_probe_opts_default(&defaults);
        opts = &defaults;
    }
    memset(info, 0, sizeof *info);
    if (waveform)
        *waveform = NULL;
    if (!name) { /* no uploader's name: judge by the stored file's own */
        const char *slash = strrchr(path, '/');
        name = slash ? slash + 1 : path;
    }

    struct stat st;
    if (stat(path, &st) != 0)
        return tly_fail(err, TLY_E_IO, "io_error", "cannot stat '%s': %s", name, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return tly_fail(err, TLY_E_IO, "io_error", "'%s' is not a regular file", name);
    if (st.st_size == 0)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "empty_file", "'%s' is empty (0 bytes)", name);
    if (opts->max_bytes && (uint64_t)st.st_size > opts->max_bytes)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "too_large",
                        "'%s' is %llu bytes, over the limit of %llu", name,
                        (unsigned long long)st.st_size, (unsigned long long)opts->max_bytes);

    unsigned char head[16];
    FILE *f = fopen(path, "rb");
    if (!f)
        return tly_fail(err, TLY_E_IO, "io_error", "cannot open '%s': %s", name, strerror(errno));
    size_t n = fread(head, 1, sizeof head, f);
    int read_failed = ferror(f);
    fclose(f);
    if (read_failed)
        return tly_fail(err, TLY_E_IO, "io_error", "cannot read '%s'", name);

    const char *format = tly_media_sniff(head, n);
    const char *claimed = tly_media_format_for_name(name);
    if (!format)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "unsupported_format",
                        "'%s' is not a JPEG, PNG, WAV, FLAC or OGG file%s%s%s", name,
                        claimed ? " (its name says " : "", claimed ? format_title(claimed) : "",
                        claimed ? ")" : "");
    if (claimed && strcmp(claimed, format) != 0)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "extension_mismatch",
                        "'%s' is named %s but contains %s data", name, name_extension(name),
                        format_title(format));
    tly_media_kind kind = tly_media_kind_of_format(format);
    if (kind != expected)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "wrong_media",
                        "'%s' is %s (%s), but this project takes %s", name,
                        tly_media_kind_name(kind), format_title(format),
                        expected == TLY_MEDIA_IMAGE   ? "images"
                        : expected == TLY_MEDIA_AUDIO ? "audio"
                                                      : "no media");

    int rc;
    if (strcmp(format, "jpeg") == 0)
        rc = tly_probe_jpeg(path, opts, info, thumb, err);
    else if (strcmp(format, "png") == 0)
        rc = tly_probe_png(path, opts, info, thumb, err);
    else
        rc = tly_probe_audio(path, format, opts, info, waveform, err);
    if (rc != 0)
        memset(info, 0, sizeof *info);
    return rc;
}
