/* writer.h -- the interface between the export core and the format writers.
 *
 * An export streams the released results of a project, item by item in id order,
 * through one format writer (export/write_<format>.c). A writer never sees the store
 * or HTTP: it gets each item as a tly_export_item (the result and the item's media
 * facts) and writes the dataset's annotation files through tly_export_file handles,
 * which hash what is written (the version's manifest lists every file's SHA-256) and
 * cap nothing but the disk. Media files are the core's job: it adds each item's bytes
 * under item->media_path when the export includes media.
 *
 * Determinism is the writers' contract: the same items in the same order give
 * byte-identical files. So no wall-clock time, no pointer values, no hash-table
 * order: object keys in a fixed order, numbers printed the same way every time
 * (tly_export_num), times taken from the data (item->updated_at).
 *
 * Memory is the other contract: a writer keeps O(1) state per file (counters, the
 * files it has open), never the dataset. A format that needs two sections (COCO's
 * images before annotations) asks for two passes over the items.
 *
 * Called by export/export.c only.
 */
#ifndef TALLY_EXPORT_WRITER_H
#define TALLY_EXPORT_WRITER_H

#include "core/error.h"
#include "export/jsonview.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- output files ------------------------------------------------------------------ */

typedef struct tly_export_out tly_export_out;     /* the dataset being written (export.c) */
typedef struct tly_export_file tly_export_file;   /* one file of it, open for writing */

/* Creates (truncates) the file at path, relative to the dataset root, '/'-separated,
 * e.g. "annotations/instances_train.json"; parent directories are made. NULL with err
 * set on failure. Opening a path twice in one export is an error (TLY_E_CONFLICT). */
tly_export_file *tly_export_open(tly_export_out *out, const char *path, tly_error *err);
/* Appends bytes. 0, or -1 with err set (disk full, ...). */
int tly_export_write(tly_export_file *f, const void *data, size_t len, tly_error *err);
/* Inline so that the length of a literal is known at compile time. */
static inline int tly_export_puts(tly_export_file *f, const char *s, tly_error *err)
{
    return tly_export_write(f, s, __builtin_strlen(s), err);
}
int tly_export_printf(tly_export_file *f, tly_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A JSON value, compact, keys in insertion order, reals with up to 10 significant
 * digits (the same text for the same value, always). */
int tly_export_json(tly_export_file *f, const json_t *value, tly_error *err);
/* Flushes, records the file's size and SHA-256 in the manifest, frees f. Every opened
 * file must be closed (the core closes and reports any left open as an error). */
int tly_export_close(tly_export_file *f, tly_error *err);
/* A scratch file: written like the others but not part of the dataset (no path, no
 * hash, no manifest line; the file is already unlinked). For a section that has to
 * come later in a file than it is produced (COCO's annotations after its images):
 * one pass writes both, and tly_export_append_scratch copies the section in at the
 * end. Closed with tly_export_close, which discards it. */
tly_export_file *tly_export_scratch(tly_export_out *out, tly_error *err);
/* Appends everything written to scratch so far to f (hashed as f's bytes). */
int tly_export_append_scratch(tly_export_file *f, tly_export_file *scratch, tly_error *err);

/* A number as the writers print it: integral values without a fraction ("12"),
 * others with up to 10 significant digits ("0.3333333333"), never an exponent for
 * values in [1e-6, 1e15). out: at least 32 bytes. */
void tly_export_num(double v, char *out, size_t outsz);
/* The same text written at p (room for 40 bytes, NUL-terminated); returns its end.
 * For writers that assemble a record in a local buffer and write it at once (a call
 * of tly_export_write per token showed in profiles). */
char *tly_export_num_at(char *p, double v);
/* tly_export_json_num's text at p, likewise. */
char *tly_export_json_num_at(char *p, double v);
/* Appends a string literal at p (a char * moved past it). */
#define TLY_EXPORT_LIT(p, lit) ((p) = (char *)memcpy((p), (lit), sizeof(lit) - 1) + sizeof(lit) - 1)
/* Escapes s for XML text and attribute values (& < > " ') into out (capped; truncated
 * output is still well formed). */
void tly_export_xml_escape(const char *s, char *out, size_t outsz);
/* Quotes a CSV field per RFC 4180 when it needs it (comma, quote, CR, LF). */
int tly_export_csv_field(tly_export_file *f, const char *s, tly_error *err);

/* ---- what a writer is given ---------------------------------------------------------- */

typedef struct {
    int64_t project_id;
    const char *project_name;
    const char *media;          /* "image" | "audio" */
    json_t *template_json;      /* {"controls":[...]}: labels and options come from here */
    const char *job_name;       /* "tally-project-<id>" (SageMaker's job-name) */
    int has_split;              /* items carry a split ("train" / "val" / "test") */
    int with_media;             /* media files are in the dataset under media_path */
} tly_export_context;

typedef struct {
    int64_t item_id;
    int64_t index;              /* 0, 1, 2 ... in export order (COCO image ids are index + 1) */
    const char *name;           /* original file name ("photo.jpg") */
    const char *stem;           /* stable, unique, file-system safe: "00000042-photo" */
    const char *media_path;     /* where the media is (or would be) in the dataset:
                                 * "images[/<split>]/<stem>.<ext>" or "audio[/<split>]/<stem>.<ext>" */
    const char *sha256;         /* of the media file */
    json_t *media;              /* {"format","width","height",...} or {"format","duration",...} */
    json_t *answer;             /* the released result, keyed by control name (NULL for a
                                 * raw_answers writer, which reads answer_view) */
    tly_jv answer_view;         /* raw_answers writers: the same, as validated stored text
                                 * (export/jsonview.h); TLY_JV_NONE without an answer */
    double confidence;          /* of the result, in [0,1] */
    const char *method;         /* how it was reached ("dawid_skene", "review", ...) */
    int64_t judgments;          /* trusted judgments it was made from */
    json_t *detail;             /* per control {"method","confidence"} or NULL (raw_answers
                                 * writers: NULL, and detail_view holds it) */
    tly_jv detail_view;
    json_t *annotators;         /* array of worker pseudonyms ("w_3f9a...") whose judgments counted */
    const char *split;          /* "train" | "val" | "test", or NULL when no split was asked */
    int64_t updated_at;         /* when the result was made (ms since the epoch; from the data) */
} tly_export_item;

/* ---- helpers for writers ----------------------------------------------------------- */

#define TLY_EXPORT_SPLITS 3   /* train, val, test */

/* 0 train, 1 val, 2 test (and *name the split's name); 0 with *name NULL when the
 * export has no split; -1 with err for an unknown split. name may be NULL. */
int tly_export_split_slot(const tly_export_context *ctx, const tly_export_item *it, const char **name, tly_error *err);
/* *f, opened at path on first use (files of a split are made only if it has items). */
tly_export_file *tly_export_open_once(tly_export_out *out, tly_export_file **f, const char *path, tly_error *err);
/* Closes every open file of files[0..n) and clears the slots; all are closed even
 * after a failure, the first of which is reported (err may be NULL: free paths). */
int tly_export_close_all(tly_export_file **files, size_t n, tly_error *err);

/* JSON builders that remember an allocation failure in *bad instead of checking every
 * call (v NULL counts as one; v is consumed). */
void tly_export_set(json_t *obj, const char *key, json_t *v, int *bad);
void tly_export_append(json_t *arr, json_t *v, int *bad);
/* A number as JSON: an integer when integral (3, not 3.0), else a real; 0 if not finite. */
json_t *tly_export_num_json(double v);
/* The confidence of one control of the item's result (its detail, or detail_view),
 * else the result's. */
double tly_export_confidence_of(const tly_export_item *it, const char *control);
/* A JSON string of len bytes (UTF-8 passes through), escaped as tly_export_json
 * escapes strings. */
int tly_export_json_string(tly_export_file *f, const char *s, size_t len, tly_error *err);
/* The same text, quotes included, as a new NUL-terminated string (NULL when out of
 * memory): for fragments a writer repeats on every line. */
char *tly_export_json_quote(const char *s);
/* A number as tly_export_json(tly_export_num_json(v)) prints it, without building it. */
int tly_export_json_num(tly_export_file *f, double v, tly_error *err);
/* The answer as a jansson value (a new reference; NULL without an answer): for a
 * raw_answers writer's shapes that need one. -1 only when out of memory. */
int tly_export_answer_json(const tly_export_item *it, json_t **out, tly_error *err);
/* TLY_E_INTERNAL "out_of_memory"; -1. */
int tly_export_oom(tly_error *err);

/* ---- a writer ------------------------------------------------------------------------- */

typedef struct {
    const char *name;           /* the format's API name: "coco", "voc", ... */
    const char *media;          /* "image", "audio" or "any": projects it applies to */
    int passes;                 /* 1, or 2 for formats written in two sections */
    unsigned answerless_passes; /* bit p set: pass p reads no answers (item->answer is
                                 * NULL then), which saves parsing them */
    int raw_answers;            /* reads answers and details through item->answer_view and
                                 * detail_view (jansson parsing each answer was most of an
                                 * export's time); item->answer and detail may be NULL */
    int uses_annotators;        /* reads item->annotators (else it is an empty array:
                                 * finding the workers costs a lookup per item) */
    /* Called once per pass before the items: allocate state (pass 0), open files,
     * write headers. *state persists across passes. */
    int (*begin)(void **state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err);
    /* Called for every item, in order, once per pass. */
    int (*item)(void *state, const tly_export_context *ctx, const tly_export_item *it, tly_export_out *out,
                int pass, tly_error *err);
    /* Called once per pass after the items: write trailers, close files. */
    int (*end)(void *state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err);
    /* Frees state, closing whatever is still open (after an error too). NULL-safe. */
    void (*free_state)(void *state);
} tly_export_writer;

/* The writers, by API name; NULL if unknown. */
const tly_export_writer *tly_export_writer_find(const char *name);
/* "coco, voc, ..." for error messages. */
const char *tly_export_writer_names(void);

extern const tly_export_writer tly_writer_coco;          /* write_coco.c */
extern const tly_export_writer tly_writer_voc;           /* write_voc.c */
extern const tly_export_writer tly_writer_yolo;          /* write_yolo.c */
extern const tly_export_writer tly_writer_csv;           /* write_csv.c: Appen-style classification CSV */
extern const tly_export_writer tly_writer_imagenet;      /* write_imagenet.c: a folder per class */
extern const tly_export_writer tly_writer_nemo;          /* write_nemo.c */
extern const tly_export_writer tly_writer_rttm;          /* write_rttm.c */
extern const tly_export_writer tly_writer_segments_csv;  /* write_segments_csv.c */
extern const tly_export_writer tly_writer_jsonl;         /* write_jsonl.c: SageMaker augmented manifest */
extern const tly_export_writer tly_writer_labelstudio;   /* write_labelstudio.c */

#endif
