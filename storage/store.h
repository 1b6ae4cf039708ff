/* store.h -- the metadata store: every durable record of Tally goes through here.
 *
 * Domain code (ingest, annotate, qa, export) and the server call these typed
 * operations; none of them writes SQL. Behind the interface a store has a backend,
 * chosen by URL at open time, that is a table of SQL-driver functions (sql.h):
 * SQLite today (the embedded default), PostgreSQL later. The operations themselves
 * (store_*.c) are written once, in SQL both engines accept.
 *
 * Threads: a tly_store is shared by all threads; each thread gets its own connection
 * on first use (kept in thread-local storage, closed when the thread exits or the
 * store is closed). Transactions are per thread: begin/commit/rollback act on the
 * calling thread's connection, and every operation called in between is part of it.
 * Outside a transaction each operation is its own (auto-commit) transaction.
 *
 * Records: structs below are filled by the store; fields of type json_t* and char*
 * are owned by the struct and released with the matching *_clear() function. List
 * operations return malloc'd arrays released with the matching *_list_free().
 * Pagination is keyset: pass after_id = 0 for the first page, then the last id seen.
 *
 * Errors: TLY_E_NOT_FOUND for a missing row, TLY_E_CONFLICT for a uniqueness clash,
 * TLY_E_BUSY when the database stayed locked past the busy timeout, TLY_E_IO for the
 * rest. Times are milliseconds since the epoch.
 */
#ifndef TALLY_STORAGE_STORE_H
#define TALLY_STORAGE_STORE_H

#include "core/buf.h"
#include "core/error.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tly_store tly_store;

/* url: "sqlite:PATH", or a plain file path (SQLite). "postgres://..." is reserved for
 * the PostgreSQL backend (TLY_E_UNSUPPORTED until it exists). Creates the database if
 * needed and applies pending migrations before returning. */
int tly_store_open(const char *url, tly_store **out, tly_error *err);
void tly_store_close(tly_store *st);
const char *tly_store_backend_name(const tly_store *st);   /* "sqlite" */
int tly_store_schema_version(tly_store *st, int *out, tly_error *err);

/* How this thread's commits reach the disk.
 *   TLY_DURABLE_SYNC (the default): a commit is on disk when it returns. Anything
 *   acknowledged to a client (a 201 for an upload, a user, a project) needs this.
 *   TLY_DURABLE_ORDERED: a commit survives a process crash (kill -9) and commits are
 *   never reordered, but the last few may be lost if the machine loses power. For
 *   background jobs whose effects are re-done idempotently when lost (the job row
 *   comes back with them), it saves a disk flush per commit. Files a commit refers
 *   to must still be made durable before it (the blob store does that). */
typedef enum { TLY_DURABLE_SYNC = 0, TLY_DURABLE_ORDERED } tly_durability;
int tly_store_set_durability(tly_store *st, tly_durability d, tly_error *err);

/* Write transaction on this thread's connection (SQLite: BEGIN IMMEDIATE). */
int tly_store_begin(tly_store *st, tly_error *err);
int tly_store_commit(tly_store *st, tly_error *err);
void tly_store_rollback(tly_store *st);

/* ---- copying a whole store (store_copy.c; `tallyd copy`) ---------------------------- */
#define TLY_STORE_COPY_MAX_TABLES 48

/* One table of a copy: rows read on each side and their checksums (SHA-256 based,
 * computed in C from the rows each driver returns, the same way on both sides; see
 * store_copy.c), match = same count and same checksum. */
typedef struct {
    char name[48];
    int64_t source_rows, target_rows;
    char source_checksum[65], target_checksum[65];
    int match;
} tly_store_copy_table;

typedef struct {
    tly_store_copy_table tables[TLY_STORE_COPY_MAX_TABLES];
    size_t n_tables;
    int64_t rows;            /* copied, all tables */
    int mismatches;          /* tables whose count or checksum differ */
} tly_store_copy_report;

typedef struct {
    /* 0: refuse a target that holds any row (CONFLICT "target_not_empty");
     * 1: delete every row of the target's tables first (in one transaction). */
    int overwrite;
    /* Called after each table is copied and verified (may be NULL): progress. */
    void (*on_table)(const tly_store_copy_table *t, void *arg);
    void *arg;
} tly_store_copy_options;

/* Copies every row of every table of from into to, preserving ids, then verifies
 * each table (counts and checksums on both sides) into *rep. Both stores are at the
 * current schema (tly_store_open migrates). from is read in one read snapshot, to is
 * written in batched transactions, a page of rows at a time (memory does not grow
 * with the tables); afterwards to's identity sequences are set past the largest ids.
 * Returns 0 when everything was copied and every table matches; -1 with err
 * otherwise: CONFLICT "target_not_empty", INVALID "schema_mismatch" (versions or
 * tables differ), IO "copy_mismatch" (rep says which tables), or the failing
 * statement's error. Blobs are not copied (a store row names a blob by content).
 * Run one copy at a time per store. */
int tly_store_copy(tly_store *from, tly_store *to, const tly_store_copy_options *opt,
                   tly_store_copy_report *rep, tly_error *err);
/* Fails with INVALID "schema_mismatch" naming a table that st's schema has and the
 * copy's table list lacks (or the reverse). 0 when they agree. */
int tly_store_copy_check_tables(tly_store *st, tly_error *err);
/* The canonical checksum of one table (as a copy computes it on either side), rows
 * into *rows; the table must be one of the copy's list. 0 or -1. */
int tly_store_table_checksum(tly_store *st, const char *table, int64_t *rows, char checksum[65],
                             tly_error *err);

/* ---- users ---------------------------------------------------------------------- */
typedef enum { TLY_ROLE_ADMIN = 0, TLY_ROLE_MANAGER, TLY_ROLE_WORKER, TLY_ROLE_CONSUMER } tly_role;
const char *tly_role_name(tly_role role);
int tly_role_parse(const char *name, tly_role *out);     /* 0, or -1 if unknown */

typedef struct {
    int64_t id;
    char name[128];
    tly_role role;
    char token_sha256[65];    /* hex SHA-256 of the API token; the token itself is never stored */
    int64_t created_at;
} tly_user;

/* CONFLICT (code "name_taken") if the name is in use. */
int tly_store_user_create(tly_store *st, const char *name, tly_role role,
                          const char *token_sha256, tly_user *out, tly_error *err);
int tly_store_user_by_token(tly_store *st, const char *token_sha256, tly_user *out,
                            tly_error *err);
int tly_store_user_get(tly_store *st, int64_t id, tly_user *out, tly_error *err);
int tly_store_user_count(tly_store *st, int64_t *out, tly_error *err);

/* ---- projects ------------------------------------------------------------------- */
typedef struct {
    int64_t id;
    char name[256];
    char media[8];            /* "image" | "audio" */
    char state[16];           /* "active" | "paused" */
    json_t *template_json;    /* {"controls":[...]} */
    json_t *workflow;         /* workflow config object (defaults filled by annotate/) */
    char *guidelines;         /* may be NULL */
    int64_t created_by;
    int64_t created_at;
    char pseudonym_key[33];   /* per-project secret for worker pseudonyms (set by the store) */
} tly_project;

void tly_project_clear(tly_project *p);
void tly_project_list_free(tly_project *list, size_t n);
/* Uses every field of in but id and created_at. */
int tly_store_project_create(tly_store *st, const tly_project *in, int64_t *id_out,
                             tly_error *err);
int tly_store_project_get(tly_store *st, int64_t id, tly_project *out, tly_error *err);
int tly_store_project_list(tly_store *st, int64_t after_id, int limit, tly_project **out,
                           size_t *n_out, tly_error *err);
/* Changes the given fields (NULL = keep): name, guidelines, workflow (replaced as a
 * whole: merge and validate before), state ("active" | "paused"). */
int tly_store_project_update(tly_store *st, int64_t id, const char *name, const char *guidelines,
                             json_t *workflow, const char *state, tly_error *err);

/* ---- batches -------------------------------------------------------------------- */
typedef struct {
    int64_t id;
    int64_t project_id;
    char name[256];
    char kind[16];            /* "upload" | "dir" | "urls" | "manifest" */
    json_t *source;           /* the source object as given */
    int closed;               /* no more files will be added */
    char *error;              /* non-NULL when the batch as a whole failed */
    int64_t created_at;
    int64_t closed_at;        /* 0 while open */
    /* Derived from the batch's files when read: */
    int64_t total, pending, accepted, duplicates, rejected;
} tly_batch;

void tly_batch_clear(tly_batch *b);
void tly_batch_list_free(tly_batch *list, size_t n);
int tly_store_batch_create(tly_store *st, int64_t project_id, const char *name,
                           const char *kind, json_t *source, int64_t *id_out, tly_error *err);
int tly_store_batch_get(tly_store *st, int64_t id, tly_batch *out, tly_error *err);
/* The batch without its source and counts (source NULL, counts 0): cheap enough to
 * call once per file of a batch, where get would count all of the batch's files. */
int tly_store_batch_get_brief(tly_store *st, int64_t id, tly_batch *out, tly_error *err);
/* Idempotent: closing a closed batch is not an error. */
int tly_store_batch_close(tly_store *st, int64_t id, tly_error *err);
/* Marks the batch failed with a message (and closed). */
int tly_store_batch_fail(tly_store *st, int64_t id, const char *message, tly_error *err);
int tly_store_batch_list(tly_store *st, int64_t project_id, int64_t after_id, int limit,
                         tly_batch **out, size_t *n_out, tly_error *err);

/* ---- batch files: one row per file of a batch, with its outcome ------------------ */
typedef enum {
    TLY_BF_PENDING = 0,
    TLY_BF_ACCEPTED,
    TLY_BF_DUPLICATE,
    TLY_BF_REJECTED
} tly_bf_state;
const char *tly_bf_state_name(tly_bf_state s);

typedef struct {
    int64_t id;
    int64_t batch_id;
    char name[256];           /* original file name, or relative path for dir imports */
    char source_kind[8];      /* "spool" (a file under DATA/spool), "path", "url" */
    char *location;           /* spool file name, absolute path, or URL */
    char sha256[65];          /* known at add time for uploads, else "" */
    int64_t size;             /* known at add time for uploads, else 0 */
    json_t *gold;             /* gold answer from a manifest, or NULL */
    json_t *meta;             /* metadata from a manifest, or NULL */
    tly_bf_state state;
    char error_code[48];      /* for REJECTED */
    char *error_message;      /* for REJECTED, else NULL */
    int64_t item_id;          /* ACCEPTED: the new item; DUPLICATE: the existing one */
} tly_batch_file;

void tly_batch_file_clear(tly_batch_file *f);
void tly_batch_file_list_free(tly_batch_file *list, size_t n);
/* Uses batch_id, name, source_kind, location, sha256, size, gold, meta.
 * CONFLICT (code "file_exists") if the batch already has a file of that name. */
int tly_store_batch_file_add(tly_store *st, const tly_batch_file *in, int64_t *id_out,
                             tly_error *err);
int tly_store_batch_file_get(tly_store *st, int64_t id, tly_batch_file *out, tly_error *err);
/* The file whose source_kind and location are these (start-up sweep of the spool). */
int tly_store_batch_file_by_location(tly_store *st, const char *source_kind,
                                     const char *location, tly_batch_file *out,
                                     tly_error *err);
/* Records the outcome of a pending file; CONFLICT if it is no longer pending. */
int tly_store_batch_file_finish(tly_store *st, int64_t id, tly_bf_state state, int64_t item_id,
                                const char *error_code, const char *error_message,
                                tly_error *err);
/* Files of a batch in a given state (e.g. REJECTED for the error report), by id. */
int tly_store_batch_file_list(tly_store *st, int64_t batch_id, tly_bf_state state,
                              int64_t after_id, int limit, tly_batch_file **out,
                              size_t *n_out, tly_error *err);

/* ---- items ---------------------------------------------------------------------- */
typedef struct {
    int64_t id;
    int64_t project_id;
    int64_t batch_id;
    char name[256];
    char sha256[65];
    int64_t size;
    char state[16];           /* "new" after ingest; later stages add more */
    json_t *media;            /* {"format","width","height"} or {"format","duration",...} */
    char thumb_sha256[65];    /* "" if none; the preview "thumbnail" has this hash */
    char waveform_sha256[65]; /* "" if none; the preview "waveform" has this hash */
    json_t *gold;             /* NULL unless a test question */
    json_t *meta;             /* NULL if none */
    int64_t created_at;
} tly_item;

void tly_item_clear(tly_item *it);
void tly_item_list_free(tly_item *list, size_t n);
/* Inserts unless the project already has an item with the same sha256. Returns 0 and
 * sets *id_out when inserted; returns 1 and sets *id_out to the existing item's id when
 * it is a duplicate; -1 on error. */
int tly_store_item_insert(tly_store *st, const tly_item *in, int64_t *id_out, tly_error *err);
int tly_store_item_get(tly_store *st, int64_t id, tly_item *out, tly_error *err);
/* state NULL = any state. */
int tly_store_item_list(tly_store *st, int64_t project_id, const char *state, int64_t after_id,
                        int limit, tly_item **out, size_t *n_out, tly_error *err);
/* Marks a test question (state 'gold', where dispatch does not walk it as work);
 * gold NULL clears it and the item is work again ('new', or 'labeling' when it has
 * judgments). */
int tly_store_item_set_gold(tly_store *st, int64_t id, json_t *gold, tly_error *err);
/* {"new": 12, ...}: item counts of a project by state (new reference). Also "gold": n. */
int tly_store_item_counts(tly_store *st, int64_t project_id, json_t **out, tly_error *err);

/* ---- image checks: perceptual hashes and quality flags (store_imagechecks.c) ------ */
#define TLY_IMAGE_CHECK_BITS 5    /* flag bits 0..4 (TLY_IMAGE_* of ingest/imagecheck.h) */
typedef struct {
    int64_t item_id;
    int64_t project_id;
    int64_t batch_id;
    uint64_t phash;
    unsigned flags;               /* bits of the flags the item was ingested with */
    int64_t near_duplicate_of;    /* 0 = none */
    char name[256];               /* the item's name (filled when read) */
} tly_image_check;
/* In the transaction that inserts the item; a second put for an item does nothing. */
int tly_store_image_check_put(tly_store *st, const tly_image_check *in, tly_error *err);
int tly_store_image_check_get(tly_store *st, int64_t item_id, tly_image_check *out, tly_error *err);
/* The project's item whose hash is nearest to phash, within max_distance bits (0..11),
 * the lowest id on ties: returns 1 and sets *item_out / *distance_out, or 0 if none.
 * If skip_sha256 is given and the project already has an item with those bytes,
 * returns 0 (an exact duplicate is dedup's case). Indexed, whatever the project's size. */
int tly_store_image_near(tly_store *st, int64_t project_id, const char *skip_sha256, uint64_t phash,
                         int max_distance, int64_t *item_out, int *distance_out, tly_error *err);
/* Of a batch's items: how many have any flag, and how many have each flag bit. */
int tly_store_image_check_counts(tly_store *st, int64_t batch_id, int64_t *flagged,
                                 int64_t counts[TLY_IMAGE_CHECK_BITS], tly_error *err);
/* A batch's flagged items by item id (keyset after_item_id), at most limit. */
int tly_store_image_check_flagged(tly_store *st, int64_t batch_id, int64_t after_item_id, int limit,
                                  tly_image_check **out, size_t *n_out, tly_error *err);

/* ---- crowd work: assignments (leases) and judgments ------------------------------ */
typedef struct {
    int64_t id;
    int64_t project_id;
    int64_t item_id;
    int64_t worker_id;
    char state[12];           /* "leased" | "submitted" | "skipped"; see expired below */
    char mode[8];             /* "quiz" | "work" | "import" */
    int gold;                 /* the item is a test question */
    int64_t leased_at;
    int64_t expires_at;       /* a "leased" assignment at or past this is expired */
    int64_t finished_at;
    int64_t judgment_id;      /* when submitted, else 0 */
} tly_assignment;

typedef struct {
    int overlap;              /* judgments an item gets (plus the item's own extra) */
    int64_t lease_ms;
    int64_t per_worker_cap;   /* judgments + active leases a worker may have; 0 = no cap */
    int gold;                 /* lease a test question (state 'gold') instead of work */
    const char *mode;         /* written to the assignment: "quiz" | "work" (NULL = "work") */
} tly_dispatch_rules;

/* In one write transaction: if the worker holds an unexpired lease in the project,
 * returns it again; otherwise picks the next eligible item -- never one the worker
 * had before, only while judgments + unexpired leases < overlap + extra, items closest to
 * completion first, then oldest batch, then oldest item -- and leases it. With
 * rules->gold, picks instead a test question the worker has never had, in an order
 * shuffled per worker. Returns 0 with *out filled, 1 when nothing is eligible, -1 on
 * error. */
int tly_store_dispatch(tly_store *st, int64_t project_id, int64_t worker_id,
                       const tly_dispatch_rules *rules, int64_t now_ms, tly_assignment *out,
                       tly_error *err);
int tly_store_assignment_get(tly_store *st, int64_t id, tly_assignment *out, tly_error *err);
/* Records the judgment of a leased assignment in one transaction (judgment row,
 * assignment submitted, item's judged count and state; when the item has all its
 * judgments it becomes 'labeled' and its project's aggregation job is queued). On a
 * test question the item is left alone and correct (0 / 1) is recorded with the
 * judgment; pass -1 for work. CONFLICT with code "already_submitted",
 * "assignment_skipped" or "lease_expired" otherwise. */
int tly_store_judgment_add(tly_store *st, int64_t assignment_id, const char *answer_json,
                           int64_t duration_ms, int overlap, int correct, int64_t now_ms,
                           int64_t *judgment_id, tly_error *err);
/* The same inside the caller's transaction (tly_store_begin first): for a judgment
 * whose consequences (the worker's standing) must commit with it. */
int tly_store_judgment_add_here(tly_store *st, int64_t assignment_id, const char *answer_json,
                                int64_t duration_ms, int overlap, int correct, int64_t now_ms,
                                int64_t *judgment_id, tly_error *err);
/* Frees the lease; the worker keeps never getting that item. CONFLICT
 * "already_submitted" if it was submitted; skipping twice is fine. */
int tly_store_assignment_skip(tly_store *st, int64_t id, int64_t now_ms, tly_error *err);
/* The worker's unexpired lease in the project: 0 (in *out), 1 if none, -1 on error. */
int tly_store_worker_lease(tly_store *st, int64_t project_id, int64_t worker_id, int64_t now_ms,
                           tly_assignment *out, tly_error *err);
/* 1 if the worker holds an unexpired lease on the item, 0 if not, -1 on error. */
int tly_store_lease_held(tly_store *st, int64_t item_id, int64_t worker_id, int64_t now_ms,
                         tly_error *err);

typedef struct {
    int64_t id;
    int64_t project_id;
    int64_t item_id;
    int64_t assignment_id;
    int64_t worker_id;
    json_t *answer;
    int64_t duration_ms;
    int64_t created_at;
    int gold;                 /* on a test question */
    int correct;              /* gold: 1 / 0; -1 otherwise */
    char excluded[24];        /* "" while it counts; else why not ("worker_stopped", ...) */
    char source[8];           /* "crowd" | "import" */
} tly_judgment;

void tly_judgment_clear(tly_judgment *j);
void tly_judgment_list_free(tly_judgment *list, size_t n);
int tly_store_judgment_get(tly_store *st, int64_t id, tly_judgment *out, tly_error *err);
/* A project's judgments by id; item_id 0 = all items. */
int tly_store_judgment_list(tly_store *st, int64_t project_id, int64_t item_id, int64_t after_id,
                            int limit, tly_judgment **out, size_t *n_out, tly_error *err);
/* The worker's own work per project: {"items":[{"project_id","judgments","skipped",
 * "active","last_at"}]} (last_at in ms). New reference. */
int tly_store_worker_stats(tly_store *st, int64_t worker_id, int64_t now_ms, json_t **out,
                           tly_error *err);
/* Judgments of a project per time bucket (store_activity.c): rows for buckets that
 * have judgments, oldest first, from since_ms on; bucket_start_ms is a multiple of
 * bucket_ms. Quiz and test-question judgments count too (they are work done). */
typedef struct {
    int64_t bucket_start_ms;
    int64_t judgments;
    int64_t workers;          /* distinct workers who judged in the bucket */
} tly_activity_bucket;
int tly_store_judgment_activity(tly_store *st, int64_t project_id, int64_t since_ms, int64_t bucket_ms,
                                tly_activity_bucket **out, size_t *n_out, tly_error *err);

/* ---- previews: thumbnails and waveforms, stored with their item ------------------- */
/* kind: "thumbnail" | "waveform". Put inside the transaction that inserts the item.
 * CONFLICT if the item already has that preview. */
int tly_store_preview_put(tly_store *st, int64_t item_id, const char *kind, const char *sha256,
                          const void *data, size_t len, tly_error *err);
/* Appends the preview's bytes to out (whose cap bounds them) and its hash to sha256
 * (65 bytes). NOT_FOUND if the item has no such preview. */
int tly_store_preview_get(tly_store *st, int64_t item_id, const char *kind, tly_buf *out,
                          char *sha256, tly_error *err);

/* ---- jobs: persistent background work with leases --------------------------------- */
typedef struct {
    int64_t id;
    char kind[32];            /* "ingest_file", "expand_batch", ... */
    int64_t ref_id;           /* the row the job is about (batch file, batch, ...) */
    json_t *payload;          /* may be NULL */
    int attempts;             /* including the current one */
    char *last_error;         /* may be NULL */
} tly_job;

void tly_job_clear(tly_job *j);
int tly_store_job_enqueue(tly_store *st, const char *kind, int64_t ref_id, json_t *payload,
                          int64_t *id_out, tly_error *err);
/* Claims the oldest runnable job: queued and due, or running with an expired lease.
 * Returns 0 with *out filled, 1 when there is none, -1 on error. */
int tly_store_job_claim(tly_store *st, const char *owner, int64_t lease_ms, tly_job *out,
                        tly_error *err);
int tly_store_job_done(tly_store *st, int64_t id, tly_error *err);
/* Back to the queue after delay_ms, keeping the error text. */
int tly_store_job_retry(tly_store *st, int64_t id, const char *error, int64_t delay_ms,
                        tly_error *err);
/* Permanently failed; kept for inspection. */
int tly_store_job_fail(tly_store *st, int64_t id, const char *error, tly_error *err);
/* Extends the lease of job id to now + lease_ms while owner still holds it (the
 * owner's heartbeat for a job it is running): 0, 1 when owner no longer holds it (the
 * lease ran out and another node claimed the job, or it finished), -1 on error. */
int tly_store_job_renew(tly_store *st, int64_t id, const char *owner, int64_t lease_ms, tly_error *err);
/* Requeue every running job leased by owner (start-up after a crash, or shutdown). */
int tly_store_job_release_owner(tly_store *st, const char *owner, int64_t *released_out,
                                tly_error *err);
int tly_store_job_counts(tly_store *st, int64_t *queued, int64_t *running, int64_t *failed,
                         tly_error *err);

/* ---- quality: a worker's standing in a project (store_quality.c) ------------------ */
typedef struct {
    int64_t project_id;
    int64_t worker_id;
    char mode[8];             /* "quiz" | "work" */
    char status[12];          /* "active" | "failed" (quiz) | "stopped" (trust) */
    int64_t quiz_seen, quiz_correct;
    int64_t gold_seen, gold_correct;   /* all test questions, quiz included */
    double trust;
    char reason[160];         /* why failed / stopped, "" otherwise */
    json_t *flags;            /* automatic-check flags on the worker (array) or NULL */
    int64_t created_at, updated_at;
    /* Filled by list (counted, not stored): */
    int64_t judgments;        /* work judgments that count */
    int64_t excluded;         /* work judgments excluded */
} tly_project_worker;

void tly_project_worker_clear(tly_project_worker *w);
void tly_project_worker_list_free(tly_project_worker *list, size_t n);
int tly_store_project_worker_get(tly_store *st, int64_t project_id, int64_t worker_id,
                                 tly_project_worker *out, tly_error *err);
/* Inserts the row unless it exists (then leaves it as it is). */
int tly_store_project_worker_create(tly_store *st, const tly_project_worker *in, tly_error *err);
/* Writes mode, status, the four gold counters, trust, reason and flags. */
int tly_store_project_worker_update(tly_store *st, const tly_project_worker *w, tly_error *err);
/* By worker id, with judgments / excluded counted. */
int tly_store_project_worker_list(tly_store *st, int64_t project_id, int64_t after_worker_id,
                                  int limit, tly_project_worker **out, size_t *n_out,
                                  tly_error *err);
/* Work-mode assignments the worker was handed in the project (skipped ones not
 * counted), and how many of them were test questions: what gold mixing steers by. */
int tly_store_work_mix(tly_store *st, int64_t project_id, int64_t worker_id, int64_t *tasks,
                       int64_t *gold, tly_error *err);
/* Test questions of the project the worker has never been given. */
int tly_store_gold_unseen(tly_store *st, int64_t project_id, int64_t worker_id, int64_t *out,
                          tly_error *err);
/* In the caller's transaction: every counting work judgment of the worker in the
 * project on an item not yet released is excluded (reason), those items lose the
 * judgment (and their result) and go back to labeling, and the worker's open
 * leases are cancelled. *items_out = how many items went back. */
int tly_store_worker_exclude(tly_store *st, int64_t project_id, int64_t worker_id,
                             const char *reason, int64_t now_ms, int64_t *items_out,
                             tly_error *err);

/* ---- quality: judgments for aggregation ------------------------------------------ */
/* Every judgment of the project that counts (not excluded), test questions included,
 * in id order, to fn; stops at fn's -1. Returns the number seen or -1. */
int64_t tly_store_judgment_each(tly_store *st, int64_t project_id,
                                int (*fn)(const tly_judgment *j, void *ctx), void *ctx,
                                tly_error *err);
/* The counting judgments of one item, by id. */
int tly_store_item_judgments(tly_store *st, int64_t item_id, tly_judgment **out, size_t *n_out,
                             tly_error *err);

/* Queues the project's aggregation job, unless one is queued already. */
int tly_store_queue_aggregation(tly_store *st, int64_t project_id, tly_error *err);

/* ---- quality: item state moves ----------------------------------------------------- */
/* Moves the item from `from` (NULL = any) to `to`, adding extra_delta to its extra
 * judgments. CONFLICT ("state_changed") if it is not in `from`. Moving to 'new' or
 * 'labeling' drops its result; moving anywhere but 'done' / 'released' takes it out
 * of its lot. */
int tly_store_item_move(tly_store *st, int64_t item_id, const char *from, const char *to,
                        int extra_delta, tly_error *err);
/* Confidence routing: a fresh item ('new', no judgments, not routed yet) needs
 * `need` judgments in all (its extra becomes need - overlap). CONFLICT otherwise. */
int tly_store_item_route_verify(tly_store *st, int64_t item_id, int overlap, int need, tly_error *err);
/* Dispatch order among a project's new items: lower priority first (default 0),
 * then batch and id. Only while the item is 'new' (else nothing changes). */
int tly_store_item_set_priority(tly_store *st, int64_t item_id, double priority, tly_error *err);
/* Whether a derived auto-accept threshold has passed the item over before (1, or 0);
 * with mark, it is marked so from now on. -1 on error (NOT_FOUND: no such item). */
int tly_store_item_screen(tly_store *st, int64_t item_id, int mark, tly_error *err);
/* Rework: excludes the item's counting judgments (reason), resets its count and
 * extra, drops its result and puts it back to labeling. Caller's transaction. */
int tly_store_item_rework(tly_store *st, int64_t item_id, const char *reason, tly_error *err);
/* The comment of the item's last rework (a reviewer's reject), into note: 1 if there
 * is one (and no later result), 0 if not, -1 on error. */
int tly_store_item_rework_note(tly_store *st, int64_t item_id, char *note, size_t notesz, tly_error *err);
/* The newest item id of a project (0 if none). */
int tly_store_item_max_id(tly_store *st, int64_t project_id, int64_t *out, tly_error *err);
/* Ids of a project's items in a state, by id (keyset after_id), at most limit. */
int tly_store_item_ids(tly_store *st, int64_t project_id, const char *state, int64_t after_id,
                       int limit, int64_t **out, size_t *n_out, tly_error *err);

/* ---- quality: results ---------------------------------------------------------------- */
typedef struct {
    int64_t item_id;
    int64_t project_id;
    json_t *answer;           /* keyed by control name */
    double confidence;
    char method[32];
    json_t *detail;           /* per control {"method","confidence"}; may be NULL */
    int64_t judgments;        /* trusted judgments it was made from */
    json_t *flags;            /* automatic-check flags (array) or NULL */
    int64_t updated_at;
    char item_state[16];      /* filled when read */
} tly_result;

void tly_result_clear(tly_result *r);
void tly_result_list_free(tly_result *list, size_t n);
/* Insert or replace. */
int tly_store_result_put(tly_store *st, const tly_result *r, tly_error *err);
int tly_store_result_get(tly_store *st, int64_t item_id, tly_result *out, tly_error *err);
/* state NULL = results of items in any state (review, done, released). */
int tly_store_result_list(tly_store *st, int64_t project_id, const char *state, int64_t after_item_id,
                          int limit, tly_result **out, size_t *n_out, tly_error *err);
/* Released results: count and mean confidence (the estimated accuracy). */
int tly_store_result_summary(tly_store *st, int64_t project_id, const char *state, int64_t *n,
                             double *mean_confidence, tly_error *err);

/* ---- quality: item history ------------------------------------------------------------ */
/* actor 0 = Tally itself. detail may be NULL. */
int tly_store_item_event(tly_store *st, int64_t item_id, int64_t project_id, int64_t actor,
                         const char *kind, json_t *detail, tly_error *err);
/* {"items":[{"id","at"(ms),"actor","kind","detail"}]} in order; new reference. */
int tly_store_item_events(tly_store *st, int64_t item_id, int64_t after_id, int limit, json_t **out,
                          tly_error *err);

/* ---- quality: reviews (store_review.c) --------------------------------------------------- */
typedef struct {
    int64_t id;
    int64_t project_id;
    int64_t item_id;
    int64_t reviewer_id;
    char state[8];            /* "leased" | "done" */
    char reason[24];
    char verdict[8];          /* "" until given: "accept" | "reject" | "fix" */
    json_t *answer;           /* fix: the reviewer's answer */
    char *comment;
    int64_t leased_at, expires_at, finished_at;
} tly_review;

void tly_review_clear(tly_review *r);
/* The reviewer's unexpired review lease in the project, else a new lease on the
 * oldest item in state 'review' that nobody else holds -- and, when
 * exclude_own_work, that the reviewer did not judge. 0, 1 (nothing to review), -1. */
int tly_store_review_next(tly_store *st, int64_t project_id, int64_t reviewer_id,
                          int exclude_own_work, int64_t lease_ms, int64_t now_ms,
                          tly_review *out, tly_error *err);
int tly_store_review_get(tly_store *st, int64_t id, tly_review *out, tly_error *err);
/* In the caller's transaction: records the verdict of a leased, unexpired review.
 * CONFLICT "already_reviewed" / "lease_expired" otherwise. */
int tly_store_review_finish(tly_store *st, int64_t id, const char *verdict, json_t *answer,
                            const char *comment, int64_t now_ms, tly_error *err);
/* Reviews done in the project: verdict -> count ({"accept":n,...}); new reference. */
int tly_store_review_counts(tly_store *st, int64_t project_id, json_t **out, tly_error *err);

/* ---- quality: acceptance lots ---------------------------------------------------------- */
typedef struct {
    int64_t id;
    int64_t project_id;
    char state[12];           /* "open" | "accepted" | "rejected" */
    int64_t lot_size, sample_size;
    int accept_number, reject_number;
    double aql;
    char code_letter[4];
    int64_t seed;
    int64_t created_by, created_at, decided_at;
    int64_t judged, defects;  /* counted when read */
} tly_lot;

typedef struct {
    int64_t lot_id;
    int64_t item_id;
    int sampled;
    char verdict[8];          /* "" | "ok" | "defect" */
    char *comment;
    int64_t judged_by, judged_at;
} tly_lot_item;

void tly_lot_item_clear(tly_lot_item *li);
void tly_lot_item_list_free(tly_lot_item *list, size_t n);
void tly_lot_list_free(tly_lot *list, size_t n);
/* In one transaction: the lot row, one lot_items row per item (sampled[i] != 0 for
 * the sample), and the items' lot_id. Items must be 'done' and in no lot
 * (CONFLICT "state_changed" otherwise). Sets in->id. */
int tly_store_lot_create(tly_store *st, tly_lot *in, const int64_t *items, const unsigned char *sampled,
                         size_t n, tly_error *err);
int tly_store_lot_get(tly_store *st, int64_t id, tly_lot *out, tly_error *err);
int tly_store_lot_list(tly_store *st, int64_t project_id, int64_t after_id, int limit, tly_lot **out,
                       size_t *n_out, tly_error *err);
int tly_store_lot_items(tly_store *st, int64_t lot_id, int sampled_only, tly_lot_item **out,
                        size_t *n_out, tly_error *err);
/* Records a verdict on a sampled item of an open lot (changing one is allowed while
 * the lot is open). NOT_FOUND if the item is not in the sample, CONFLICT
 * "lot_decided" if the lot is no longer open. */
int tly_store_lot_verdict(tly_store *st, int64_t lot_id, int64_t item_id, const char *verdict,
                          const char *comment, int64_t by, int64_t now_ms, tly_error *err);
/* In the caller's transaction: the lot becomes accepted (its items 'released') or
 * rejected (its items back to 'review' and out of the lot). */
int tly_store_lot_decide(tly_store *st, int64_t lot_id, int accepted, int64_t now_ms, tly_error *err);
/* Ids of finished items ('done') in no lot, by id, at most limit. */
int tly_store_lot_candidates(tly_store *st, int64_t project_id, int64_t limit, int64_t **out,
                             size_t *n_out, tly_error *err);

/* ---- quality: project figures --------------------------------------------------------- */
/* {"judgments","excluded_judgments","workers","workers_active","workers_failed",
 *  "workers_stopped","mean_trust"}; new reference. */
int tly_store_quality_counts(tly_store *st, int64_t project_id, json_t **out, tly_error *err);

/* ---- import of outside judgments --------------------------------------------------------- */
/* Finds or creates the worker standing for an outside worker reference: a user of
 * role worker named "import:<project>:<ref>" that cannot sign in. */
int tly_store_import_worker(tly_store *st, int64_t project_id, const char *ref, int64_t *worker_id,
                            tly_error *err);
/* In the caller's transaction: an imported judgment (an assignment of mode 'import'
 * and its judgment), counted on the item like any other. CONFLICT
 * "duplicate_judgment" if that worker already judged the item. */
int tly_store_judgment_import(tly_store *st, int64_t project_id, int64_t item_id, int64_t worker_id,
                              const char *answer_json, int overlap, int64_t now_ms,
                              int64_t *judgment_id, tly_error *err);
/* Item id of a project by name (first match) -- for references in imports. */
int tly_store_item_by_name(tly_store *st, int64_t project_id, const char *name, int64_t *id_out,
                           tly_error *err);

/* ---- exports: dataset versions (store_exports.c) ---------------------------------- */
typedef struct {
    int64_t id;
    int64_t project_id;
    char state[12];           /* "queued" | "running" | "done" | "failed" */
    char format[24];
    json_t *params;           /* the normalised request: format, split, filters, media */
    int64_t items, files, bytes;
    int64_t progress, total;  /* items written of items to write (all passes) */
    char sha256[65];          /* the manifest's: the version's identity ("" until done) */
    char artifact[64];        /* file name under DATA/exports ("" until done) */
    char artifact_sha256[65];
    int64_t artifact_size;
    char content_type[48];
    char *error;              /* failed: why */
    int64_t created_by, created_at, finished_at;
} tly_export_rec;

void tly_export_rec_clear(tly_export_rec *e);
void tly_export_rec_list_free(tly_export_rec *list, size_t n);
/* Inserts the export (state queued) and its job in one transaction; sets in->id. */
int tly_store_export_create(tly_store *st, tly_export_rec *in, tly_error *err);
int tly_store_export_get(tly_store *st, int64_t id, tly_export_rec *out, tly_error *err);
int tly_store_export_list(tly_store *st, int64_t project_id, int64_t after_id, int limit, tly_export_rec **out,
                          size_t *n_out, tly_error *err);
/* state "running" with the progress so far. */
int tly_store_export_progress(tly_store *st, int64_t id, int64_t progress, int64_t total, tly_error *err);
/* done: items, files, bytes, sha256, artifact, artifact_sha256, artifact_size, content_type. */
int tly_store_export_finish(tly_store *st, const tly_export_rec *e, tly_error *err);
int tly_store_export_fail(tly_store *st, int64_t id, const char *error, tly_error *err);

/* One released result with its item, as exports read them. Fields borrowed from the
 * row: valid only during the callback. */
typedef struct {
    int64_t item_id;
    int64_t batch_id;
    const char *name;
    const char *sha256;
    int64_t size;
    json_t *media;
    json_t *answer;
    double confidence;
    const char *method;
    json_t *detail;
    int64_t judgments;
    int64_t updated_at;
    const char *answer_text;  /* the stored text of answer (NULL when the column is NULL or */
    const char *detail_text;  /* answers are not read) and of detail: what raw_json readers use */
    const char *worker_ids;   /* "12,15,19": workers whose judgments counted ("" if none) */
    const char *split;        /* with filter.split_key: the assigned split, or NULL */
} tly_export_row;

typedef struct {
    const char *state;        /* item state: "released" (default) or "done" */
    int64_t batch_id;         /* 0 = any */
    double min_confidence;    /* 0 = any */
    int without_answer;       /* leave row.answer NULL (a pass that does not read it) */
    int raw_json;             /* leave row.answer and row.detail NULL, give only their text */
    const char *split_key;    /* stratified split: fill row.split from its assignments */
    int unassigned_only;      /* with split_key: only rows without an assignment yet */
    int with_workers;         /* fill row.worker_ids (else "") */
} tly_export_filter;

/* The results matching f, by item id, after after_item_id, at most limit, to fn
 * (which returns -1 to stop). Returns the rows seen or -1. */
int64_t tly_store_export_rows(tly_store *st, int64_t project_id, const tly_export_filter *f, int64_t after_item_id,
                              int limit, int (*fn)(const tly_export_row *row, void *ctx), void *ctx,
                              tly_error *err);
int tly_store_export_count(tly_store *st, int64_t project_id, const tly_export_filter *f, int64_t *out,
                           tly_error *err);
/* Stratified splits: {"<class>":{"train":n,"val":n,"test":n}} of the assignments made
 * so far under split_key (new reference); and one more assignment. */
int tly_store_split_counts(tly_store *st, int64_t project_id, const char *split_key, json_t **out, tly_error *err);
int tly_store_split_assign(tly_store *st, int64_t project_id, const char *split_key, int64_t item_id,
                           const char *cls, const char *split, tly_error *err);

/* A consistent read snapshot across several reads on this thread (an export's
 * passes must see the same results): begin, reads..., end. No write lock is held. */
int tly_store_snapshot_begin(tly_store *st, tly_error *err);
void tly_store_snapshot_end(tly_store *st);

/* ---- pre-labeling: models and predictions (store_models.c) ------------------------- */
typedef struct {
    int64_t id;
    int64_t project_id;
    char name[128];
    char kind[12];            /* "remote" | "builtin" */
    char *url;                /* remote: the backend's base URL */
    char builtin[32];         /* builtin: "vad" | "asr" | "image-classifier" */
    char state[12];           /* "active" | "disabled" */
    char version[128];        /* the model's model_version, as last reported */
    int64_t since_item;       /* items after this id are pre-labeled on arrival */
    int failures;             /* consecutive failed calls (circuit breaker) */
    int64_t open_until;       /* circuit open: no calls before this (ms) */
    char *last_error;
    int64_t predicted, errors;
    int64_t created_at;
} tly_model;

void tly_model_clear(tly_model *m);
void tly_model_list_free(tly_model *list, size_t n);
/* CONFLICT "name_taken" for a second model of that name in the project. */
int tly_store_model_create(tly_store *st, tly_model *in, tly_error *err);
int tly_store_model_get(tly_store *st, int64_t id, tly_model *out, tly_error *err);
int tly_store_model_list(tly_store *st, int64_t project_id, tly_model **out, size_t *n_out, tly_error *err);
/* Circuit breaker and bookkeeping after a call: ok resets failures, else counts one
 * and, at `trip` failures, opens the circuit until open_until. */
int tly_store_model_called(tly_store *st, int64_t id, int ok, const char *version, const char *error, int trip,
                           int64_t open_until, tly_error *err);
int tly_store_model_set_since(tly_store *st, int64_t id, int64_t since_item, tly_error *err);
/* Queues the prelabel job of every active model of the project (once each), to run
 * at run_after (ms; 0 = now). */
int tly_store_queue_prelabel(tly_store *st, int64_t project_id, int64_t run_after, tly_error *err);
/* An explicit run: the model covers every item again, and items it failed on are
 * tried again. */
int tly_store_model_rerun(tly_store *st, int64_t id, tly_error *err);
/* Up to limit work items of the model's project after since_item (any state but
 * gold: an explicit run covers finished items too) with no prediction from the model
 * yet, by id. */
int tly_store_model_pending(tly_store *st, const tly_model *m, int limit, int64_t **out, size_t *n_out,
                            tly_error *err);

typedef struct {
    int64_t id;
    int64_t item_id;
    int64_t model_id;
    char model_name[128];
    char model_version[128];
    json_t *answer;           /* NULL when the model failed on the item */
    double score;             /* -1 unknown */
    char *error;              /* why there is no answer, or NULL */
    int64_t created_at;
} tly_prediction;

void tly_prediction_clear(tly_prediction *p);
void tly_prediction_list_free(tly_prediction *list, size_t n);
/* Insert or replace the model's prediction for the item (answer or error). */
int tly_store_prediction_put(tly_store *st, int64_t item_id, int64_t project_id, int64_t model_id,
                             const char *version, json_t *answer, double score, const char *error, tly_error *err);
/* The model's predictions on items humans finished (results in done / released not
 * made by the model itself, nor via the confirm step: history to_confirm), to fn with
 * the prediction's score and answer and the result's answer; only those of model_version
 * `version` unless it is NULL or "". Returns the pairs seen or -1. */
int64_t tly_store_prediction_pairs(tly_store *st, int64_t model_id, const char *version,
                                   int (*fn)(double score, json_t *predicted, json_t *result, void *ctx), void *ctx,
                                   tly_error *err);
/* An item's predictions, best score first. */
int tly_store_prediction_list(tly_store *st, int64_t item_id, tly_prediction **out, size_t *n_out, tly_error *err);

/* ---- pre-labeling: the built-in image classifier (store_classifier.c) ----------------- */
/* Accepted labels: results of items in done / released not made by a model. */
int tly_store_classifier_label_count(tly_store *st, int64_t project_id, int64_t *out, tly_error *err);
/* Every accepted label by item id, with the item's cached features of that version
 * (features NULL when there are none), to fn (-1 stops). Arguments are borrowed for
 * the call. Returns the rows seen or -1. */
int64_t tly_store_classifier_labels(tly_store *st, int64_t project_id, int version,
                                    int (*fn)(int64_t item_id, json_t *answer, const void *features, size_t len,
                                              void *ctx),
                                    void *ctx, tly_error *err);
/* Cached features: appended to out; 0, 1 when there are none of that version, -1. */
int tly_store_classifier_features_get(tly_store *st, int64_t item_id, int version, tly_buf *out, tly_error *err);
int tly_store_classifier_features_put(tly_store *st, int64_t item_id, int version, const void *data, size_t len,
                                      tly_error *err);

typedef struct {
    int64_t model_id;
    int64_t trained_on;       /* accepted labels the weights were fitted on (0: none yet) */
    int64_t next_train_at;    /* fit (again) once there are this many */
    int stale;                /* set when that many exist: the next run fits */
    int has_weights;
    json_t *info;             /* what the last fit measured, or NULL */
    int64_t updated_at;
} tly_classifier_state;

void tly_classifier_state_clear(tly_classifier_state *s);
/* The model's state, and its weights appended to weights (NULL: not read). 0, 1 when
 * there is no state yet, -1. */
int tly_store_classifier_state_get(tly_store *st, int64_t model_id, tly_classifier_state *out, tly_buf *weights,
                                   tly_error *err);
/* Insert or replace, clearing stale. weights NULL keeps the stored weights and
 * trained_on (a fit that was not possible yet only moves next_train_at). */
int tly_store_classifier_state_put(tly_store *st, const tly_classifier_state *s, const void *weights, size_t len,
                                   tly_error *err);
/* Enough new labels: marks the state stale (the model's next run fits again) and
 * drops its prediction on the last fresh item, so that run has an item to predict. */
int tly_store_classifier_refresh(tly_store *st, int64_t model_id, int64_t project_id, tly_error *err);
/* After a fit: drops the model's predictions on fresh items (new, never judged, not
 * routed), which its next run predicts again, after making confirm steps nobody has
 * started fresh again (history confirm_withdrawn). */
int tly_store_classifier_forget_fresh(tly_store *st, int64_t model_id, int64_t project_id, tly_error *err);

#endif
