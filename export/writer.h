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

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- output files ------------------------------------------------------------------ */

typedef struct tly_export_out tly_export_out;     /* the dataset being written (export.c) */
typedef struct tly_export_file tly_export_file;   /* one file of it, open for writing */

/* Creates (truncates) the file at path, relative to the dataset root, '/'-separated,
 * e.g. "annotations/instances_train.json"; parent directories are made. NULL with err
 * set on failure. Opening a path twice in one export is an error (TLY_E_CONFLICT). */
tly_export_file *tly_export_open(tly_export_out *out, const char *path, tly_error *err);
/* Appends bytes. 0, or -1 with err set (disk full, ...). */
int tly_export_write(tly_export_file *f, const void *data, size_t len, tly_error *err);
int tly_export_puts(tly_export_file *f, const char *s, tly_error *err);
int tly_export_printf(tly_export_file *f, tly_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A JSON value, compact, keys in insertion order, reals with up to 10 significant
 * digits (the same text for the same value, always). */
int tly_export_json(tly_export_file *f, const json_t *value, tly_error *err);
/* Flushes, records the file's size and SHA-256 in the manifest, frees f. Every opened
 * file must be closed (the core closes and reports any left open as an error). */
int tly_export_close(tly_export_file *f, tly_error *err);

/* A number as the writers print it: integral values without a fraction ("12"),
 * others with up to 10 significant digits ("0.3333333333"), never an exponent for
 * values in [1e-6, 1e15). out: at least 32 bytes. */
void tly_export_num(double v, char *out, size_t outsz);
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
    json_t *answer;             /* the released result, keyed by control name */
    double confidence;          /* of the result, in [0,1] */
    const char *method;         /* how it was reached ("dawid_skene", "review", ...) */
    int64_t judgments;          /* trusted judgments it was made from */
    json_t *detail;             /* per control {"method","confidence"} or NULL */
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
/* The confidence of one control of the item's result (its detail), else the result's. */
double tly_export_confidence_of(const tly_export_item *it, const char *control);
/* TLY_E_INTERNAL "out_of_memory"; -1. */
int tly_export_oom(tly_error *err);

/* ---- a writer ------------------------------------------------------------------------- */

typedef struct {
    const char *name;           /* the format's API name: "coco", "voc", ... */
    const char *media;          /* "image", "audio" or "any": projects it applies to */
    int passes;                 /* 1, or 2 for formats written in two sections */
    unsigned answerless_passes; /* bit p set: pass p reads no answers (item->answer is
                                 * NULL then), which saves parsing them */
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
