/* write_imagenet.c -- an ImageNet-style classification dataset: a folder per class.
 *
 * The layout is the one of the ImageNet (ILSVRC) classification training set
 * (https://image-net.org/challenges/LSVRC/2012/ "train/<wnid>/<image>.JPEG") that
 * torchvision's ImageFolder and Keras' image_dataset_from_directory read: the class
 * of an image is the name of its folder. Next to the folders, the image lists of
 * Caffe's ImageData layer ("<path relative to the list's folder> <class index>" a
 * line, https://caffe.berkeleyvision.org/tutorial/layers/imagedata.html) give the
 * class indices for tools that want them.
 *
 * Choices:
 * - The class is the answer of the template's FIRST choice control (other controls
 *   are not exported); an export of a template without a choice control fails.
 * - Media: the core asks tly_imagenet_class_of (write_imagenet.h) for each item and
 *   puts its media at "<split>/<class>/<stem>.<ext>", or "all/<class>/<stem>.<ext>"
 *   without a split. An item without a class (no answer for the control, or a value
 *   that is not one of its options) is skipped: it is in no folder and no list.
 * - Files written here: "classes.txt", the control's options in template order, one
 *   a line (line n = class index n, from 0); and per split that has items
 *   "<split>.txt" ("all.txt" without a split): "<class>/<stem>.<ext> <index>" a line,
 *   in item order, paths relative to the split's folder. Readers split the line at
 *   its last space (class names may contain spaces).
 * - A class is a folder name, so every option must be a safe file name
 *   (tly_is_safe_filename: no '/', no control characters, not "." or "..") of at
 *   most 100 bytes; a template with another option fails the export at its start
 *   rather than skipping that class's items.
 */
#include "export/write_imagenet.h"
#include "core/fsutil.h"

#include <stdlib.h>
#include <string.h>

enum { SLOTS = TLY_EXPORT_SPLITS, MAX_CLASS_NAME = 100 };

typedef struct {
    json_t *def;                      /* the first choice control (borrowed) */
    tly_export_file *lists[SLOTS];    /* <split>.txt, slot 0 alone ("all.txt") without a split */
} imagenet_state;

static json_t *class_control(const tly_export_context *ctx)
{
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(ctx->template_json, "controls"), i, def) {
        const char *type = json_string_value(json_object_get(def, "type"));
        if (type && strcmp(type, "choice") == 0 && json_is_string(json_object_get(def, "name")))
            return def;
    }
    return NULL;
}

static int usable_class_name(const char *name)
{
    return name && strlen(name) <= MAX_CLASS_NAME && tly_is_safe_filename(name);
}

/* The option's index, or -1. */
static int class_index(json_t *def, const char *cls)
{
    size_t i;
    json_t *opt;
    json_array_foreach(json_object_get(def, "options"), i, opt)
        if (json_is_string(opt) && strcmp(json_string_value(opt), cls) == 0)
            return (int)i;
    return -1;
}

const char *tly_imagenet_class_of(const tly_export_context *ctx, const tly_export_item *it)
{
    json_t *def = class_control(ctx);
    if (!def)
        return NULL;
    const char *cls = json_string_value(json_object_get(it->answer, json_string_value(json_object_get(def, "name"))));
    if (!cls || !usable_class_name(cls) || class_index(def, cls) < 0)
        return NULL;
    return cls;
}

static int imagenet_begin(void **state, const tly_export_context *ctx, tly_export_out *out, int pass,
                          tly_error *err)
{
    imagenet_state *s = calloc(1, sizeof *s);
    if (!s)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    *state = s;
    if (!(s->def = class_control(ctx)))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "format_mismatch",
                        "the imagenet format needs a choice control in the template (its answer is the class)");
    size_t i;
    json_t *opt;
    json_t *options = json_object_get(s->def, "options");
    json_array_foreach(options, i, opt)
        if (!usable_class_name(json_string_value(opt)))
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_class_name",
                            "control '%s': option '%s' cannot be a folder name (no '/', no control characters, "
                            "not '.' or '..', at most %d bytes)",
                            json_string_value(json_object_get(s->def, "name")),
                            json_string_value(opt) ? json_string_value(opt) : "(not a string)", MAX_CLASS_NAME);
    tly_export_file *f = tly_export_open(out, "classes.txt", err);
    if (!f)
        return -1;
    int rc = 0;
    json_array_foreach(options, i, opt)
        if (rc == 0)
            rc = tly_export_printf(f, err, "%s\n", json_string_value(opt));
    tly_error close_err;
    if (tly_export_close(f, rc < 0 ? &close_err : err) < 0)
        rc = -1;
    return rc;
}

static int imagenet_item(void *state, const tly_export_context *ctx, const tly_export_item *it, tly_export_out *out,
                         int pass, tly_error *err)
{
    imagenet_state *s = state;
    const char *cls = tly_imagenet_class_of(ctx, it);
    if (!cls)
        return 0;   /* no class: the core left it out too */
    const char *split = NULL;
    int slot = tly_export_split_slot(ctx, it, &split, err);
    if (slot < 0)
        return -1;
    char path[32];
    snprintf(path, sizeof path, "%s.txt", split ? split : "all");
    if (!tly_export_open_once(out, &s->lists[slot], path, err))
        return -1;
    const char *slash = strchr(it->media_path, '/');
    return tly_export_printf(s->lists[slot], err, "%s %d\n", slash ? slash + 1 : it->media_path,
                             class_index(s->def, cls));
}

static int imagenet_end(void *state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    imagenet_state *s = state;
    return tly_export_close_all(s->lists, SLOTS, err);
}

static void imagenet_free(void *state)
{
    imagenet_state *s = state;
    if (!s)
        return;
    tly_export_close_all(s->lists, SLOTS, NULL);
    free(s);
}

const tly_export_writer tly_writer_imagenet = {
    .name = "imagenet", .media = "image", .passes = 1, .begin = imagenet_begin, .item = imagenet_item,
    .end = imagenet_end, .free_state = imagenet_free,
};
