/* answer.c -- describing a control to a worker and parsing a typed answer (answer.h).
 *
 * Everything here is pure: no I/O but the FILE the description goes to, no HTTP.
 * Values handed back are new jansson references owned by the caller.
 */
#include "tools/tally/answer.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LINE_JSON (8u << 20) /* a typed JSON answer; the server caps bodies anyway */

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

int tc_answer_required(const json_t *control)
{
    return json_is_true(json_object_get(control, "required"));
}

static double media_num(const json_t *media, const char *key)
{
    json_t *v = json_object_get(media, key);
    return json_is_number(v) ? json_number_value(v) : -1;
}

/* "a, b, c" of a string array to f; returns how many there were. */
static size_t print_list(FILE *f, const json_t *arr)
{
    size_t i, n = 0;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v))
            fprintf(f, "%s%s", n++ ? ", " : "", json_string_value(v));
    }
    return n;
}

static const char *first_label(const json_t *control, const char *fallback)
{
    const char *s = json_string_value(json_array_get(json_object_get(control, "labels"), 0));
    return s ? s : fallback;
}

static void describe_options(FILE *f, const json_t *control, int multi)
{
    const json_t *opts = json_object_get(control, "options");
    size_t i;
    json_t *v;
    fputs("  ", f);
    json_array_foreach(opts, i, v)
        fprintf(f, "%s%zu) %s", i ? "  " : "", i + 1, json_string_value(v) ? json_string_value(v) : "?");
    fputc('\n', f);
    if (!multi) {
        fprintf(f, "  type a number (1-%zu) or the option's text\n", json_array_size(opts));
        return;
    }
    fprintf(f, "  type comma-separated numbers or option texts, e.g. 1,3");
    json_t *mn = json_object_get(control, "min"), *mx = json_object_get(control, "max");
    if (json_is_integer(mn) || json_is_integer(mx)) {
        fprintf(f, " (");
        if (json_is_integer(mn))
            fprintf(f, "at least %lld", (long long)json_integer_value(mn));
        if (json_is_integer(mn) && json_is_integer(mx))
            fprintf(f, ", ");
        if (json_is_integer(mx))
            fprintf(f, "at most %lld", (long long)json_integer_value(mx));
        fprintf(f, ")");
    }
    fprintf(f, "; [] for none\n");
}

static void describe_labels(FILE *f, const json_t *control, const char *what)
{
    const json_t *labels = json_object_get(control, "labels");
    if (json_array_size(labels) > 0) {
        fprintf(f, "  %s: ", what);
        print_list(f, labels);
        fputc('\n', f);
    }
}

static void describe_image_shape(FILE *f, const json_t *control, const char *type,
                                 const json_t *media)
{
    double W = media_num(media, "width"), H = media_num(media, "height");
    long x = 10, y = 20, w = 30, h = 40;
    if (W > 0 && H > 0) { /* an example that fits this image */
        x = (long)(W / 8);
        y = (long)(H / 8);
        w = (long)(W / 4) > 0 ? (long)(W / 4) : 1;
        h = (long)(H / 4) > 0 ? (long)(H / 4) : 1;
        fprintf(f, "  coordinates in pixels of the original image, inside %.0fx%.0f\n", W, H);
    } else {
        fprintf(f, "  coordinates in pixels of the original image\n");
    }
    if (strcmp(type, "bbox") == 0) {
        describe_labels(f, control, "labels");
        fprintf(f, "  a JSON array of boxes, e.g. [{\"label\":\"%s\",\"x\":%ld,\"y\":%ld,\"w\":%ld,\"h\":%ld}]\n",
                first_label(control, "car"), x, y, w, h);
    } else if (strcmp(type, "polygon") == 0) {
        describe_labels(f, control, "labels");
        fprintf(f, "  a JSON array of polygons (3 or more [x,y] points each), e.g.\n"
                   "  [{%s%s%s\"points\":[[%ld,%ld],[%ld,%ld],[%ld,%ld]]}]\n",
                json_array_size(json_object_get(control, "labels")) ? "\"label\":\"" : "",
                json_array_size(json_object_get(control, "labels")) ? first_label(control, "") : "",
                json_array_size(json_object_get(control, "labels")) ? "\"," : "", x, y, x + w, y,
                x + w / 2, y + h);
    } else { /* keypoints */
        describe_labels(f, control, "labels");
        const json_t *names = json_object_get(control, "points");
        size_t n = json_array_size(names);
        if (n > 0) {
            fprintf(f, "  points, in this order (null for a point that is not visible): ");
            print_list(f, names);
            fputc('\n', f);
        }
        fprintf(f, "  a JSON array of instances, e.g. [{%s%s%s\"points\":[",
                json_array_size(json_object_get(control, "labels")) ? "\"label\":\"" : "",
                json_array_size(json_object_get(control, "labels")) ? first_label(control, "") : "",
                json_array_size(json_object_get(control, "labels")) ? "\"," : "");
        size_t show = n ? n : 2;
        for (size_t i = 0; i < show; i++)
            fprintf(f, "%s[%ld,%ld]", i ? "," : "", x + (long)i * (w / (long)show), y + h / 2);
        fprintf(f, "]}]\n");
    }
}

static void describe_segments(FILE *f, const json_t *control, const json_t *media)
{
    double d = media_num(media, "duration");
    double s = 0.5, e = 1.25;
    if (d > 0) {
        fprintf(f, "  times in seconds, 0 <= start < end <= %.3f\n", d);
        if (e > d) {
            s = d * 0.1;
            e = d * 0.5;
        }
    } else {
        fprintf(f, "  times in seconds, 0 <= start < end <= the duration\n");
    }
    describe_labels(f, control, "labels");
    fprintf(f, "  a JSON array of segments, e.g. [{\"label\":\"%s\",\"start\":%.2f,\"end\":%.2f}]\n",
            first_label(control, "speech"), s, e);
}

void tc_answer_describe(FILE *f, const json_t *control, const json_t *media)
{
    const char *type = jstr(control, "type");
    fprintf(f, "%s (%s, %s)", jstr(control, "name"), type,
            tc_answer_required(control) ? "required" : "optional: empty line for none");
    const char *title = jstr(control, "title"), *desc = jstr(control, "description");
    if (*title)
        fprintf(f, ": %s", title);
    fputc('\n', f);
    if (*desc)
        fprintf(f, "  %s\n", desc);
    if (strcmp(type, "choice") == 0 || strcmp(type, "multi_choice") == 0) {
        describe_options(f, control, type[0] == 'm');
    } else if (strcmp(type, "text") == 0 || strcmp(type, "transcription") == 0) {
        json_t *ml = json_object_get(control, "max_length");
        fprintf(f, "  type one line of text");
        if (json_is_integer(ml))
            fprintf(f, " (at most %lld bytes)", (long long)json_integer_value(ml));
        if (*jstr(control, "language"))
            fprintf(f, ", language %s", jstr(control, "language"));
        if (*jstr(control, "placeholder"))
            fprintf(f, ", e.g. %s", jstr(control, "placeholder"));
        fputc('\n', f);
    } else if (strcmp(type, "bbox") == 0 || strcmp(type, "polygon") == 0 ||
               strcmp(type, "keypoints") == 0) {
        describe_image_shape(f, control, type, media);
    } else if (strcmp(type, "audio_segments") == 0) {
        describe_segments(f, control, media);
    } else {
        fprintf(f, "  type a JSON value\n");
    }
}

/* ---- parsing ------------------------------------------------------------------- */

/* Copy s without leading/trailing blanks into buf; returns buf. */
static char *trim_copy(const char *s, size_t n, char *buf, size_t bufsz)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= bufsz)
        n = bufsz - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

/* Index of the option a token names (a 1-based number or the text, exact first,
 * then ignoring case when that is unambiguous), or -1 with msg. */
static long option_index(const json_t *opts, const char *tok, char *msg, size_t msgsz)
{
    size_t n = json_array_size(opts);
    if (*tok >= '0' && *tok <= '9') {
        char *end;
        errno = 0;
        long v = strtol(tok, &end, 10);
        if (!errno && !*end && v >= 1 && (size_t)v <= n)
            return v - 1;
    }
    long found = -1;
    int ambiguous = 0;
    for (size_t i = 0; i < n; i++) {
        const char *o = json_string_value(json_array_get(opts, i));
        if (o && strcmp(o, tok) == 0)
            return (long)i;
        if (o && strcasecmp(o, tok) == 0) {
            ambiguous = found >= 0;
            found = (long)i;
        }
    }
    if (found >= 0 && !ambiguous)
        return found;
    snprintf(msg, msgsz, "'%s' is not one of the options: type a number from 1 to %zu or the option's text",
             tok, n);
    return -1;
}

static int parse_json_array(const char *line, json_t **value, char *msg, size_t msgsz)
{
    if (strlen(line) > MAX_LINE_JSON) {
        snprintf(msg, msgsz, "the answer is longer than %u bytes", MAX_LINE_JSON);
        return -1;
    }
    json_error_t jerr;
    json_t *v = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        snprintf(msg, msgsz, "not valid JSON: %s (column %d)", jerr.text, jerr.column);
        return -1;
    }
    if (json_is_object(v)) { /* one shape typed without the brackets */
        json_t *arr = json_array();
        if (!arr || json_array_append_new(arr, v) < 0) {
            json_decref(arr);
            snprintf(msg, msgsz, "out of memory");
            return -1;
        }
        v = arr;
    }
    *value = v;
    return 1;
}

static int parse_multi(const json_t *control, const char *line, json_t **value, char *msg,
                       size_t msgsz)
{
    if (line[0] == '[')
        return parse_json_array(line, value, msg, msgsz);
    const json_t *opts = json_object_get(control, "options");
    json_t *arr = json_array();
    if (!arr) {
        snprintf(msg, msgsz, "out of memory");
        return -1;
    }
    const char *p = line;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char tok[512];
        trim_copy(p, n, tok, sizeof tok);
        if (!*tok) {
            snprintf(msg, msgsz, "an empty entry between commas");
            goto fail;
        }
        long idx = option_index(opts, tok, msg, msgsz);
        if (idx < 0)
            goto fail;
        json_t *opt = json_array_get(opts, (size_t)idx);
        size_t i;
        json_t *have;
        json_array_foreach(arr, i, have) {
            if (json_equal(have, opt)) {
                snprintf(msg, msgsz, "'%s' is given twice", json_string_value(opt));
                goto fail;
            }
        }
        if (json_array_append(arr, opt) < 0) {
            snprintf(msg, msgsz, "out of memory");
            goto fail;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    *value = arr;
    return 1;
fail:
    json_decref(arr);
    return -1;
}

int tc_answer_parse(const json_t *control, const char *line, json_t **value, char *msg,
                    size_t msgsz)
{
    const char *type = jstr(control, "type");
    *value = NULL;
    msg[0] = '\0';
    int is_text = strcmp(type, "text") == 0 || strcmp(type, "transcription") == 0;
    if (is_text) {
        if (!*line)
            return 0;
        json_t *s = json_string(line);
        if (!s) {
            snprintf(msg, msgsz, "the text is not valid UTF-8");
            return -1;
        }
        *value = s;
        return 1;
    }
    char tok[512];
    trim_copy(line, strlen(line), tok, sizeof tok);
    if (!*tok)
        return 0;
    if (strcmp(type, "choice") == 0) {
        const json_t *opts = json_object_get(control, "options");
        long idx = option_index(opts, tok, msg, msgsz);
        if (idx < 0)
            return -1;
        *value = json_incref(json_array_get(opts, (size_t)idx));
        return 1;
    }
    while (isspace((unsigned char)*line))
        line++;
    if (strcmp(type, "multi_choice") == 0)
        return parse_multi(control, line, value, msg, msgsz);
    if (strcmp(type, "bbox") == 0 || strcmp(type, "polygon") == 0 ||
        strcmp(type, "keypoints") == 0 || strcmp(type, "audio_segments") == 0) {
        int rc = parse_json_array(line, value, msg, msgsz);
        if (rc > 0 && !json_is_array(*value)) {
            json_decref(*value);
            *value = NULL;
            snprintf(msg, msgsz, "a %s answer is a JSON array (see the example)", type);
            return -1;
        }
        return rc;
    }
    /* a type this client does not know: any JSON value, else the text itself */
    json_t *v = json_loads(line, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!v)
        v = json_string(line);
    if (!v) {
        snprintf(msg, msgsz, "the text is not valid UTF-8");
        return -1;
    }
    *value = v;
    return 1;
}
