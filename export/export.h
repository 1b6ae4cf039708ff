/* export.h -- dataset versions: what ML teams pull.
 *
 * An export is an immutable snapshot of a project's released results, written by one
 * format writer (writer.h) as a background job:
 *   - the request is checked and stored with its job (tly_export_create);
 *   - the job (tly_export_run) walks the results in item order inside one read
 *     snapshot (every pass sees the same rows), gives each item a stable file name
 *     and, when asked, a split decided by a hash of the item's content and the seed
 *     (an item keeps its split in every later version), and streams them through the
 *     writer; memory stays bounded whatever the size;
 *   - every file goes into a manifest (path, SHA-256, size), whose own SHA-256 is the
 *     version's identity and ETag: the same results and parameters give the same
 *     bytes, so two versions of unchanged data have the same identity;
 *   - the artifact served by the download is the one annotation file (no media, one
 *     file) or a deterministic tar (libarchive; mtime 0, fixed owner) of annotations,
 *     media and manifest.jsonl, kept under DATA/exports.
 * Worker identities appear only as per-project pseudonyms. Called by server/.
 */
#ifndef TALLY_EXPORT_EXPORT_H
#define TALLY_EXPORT_EXPORT_H

#include "core/error.h"
#include "storage/blob.h"
#include "storage/store.h"

#include <jansson.h>

#define TLY_JOB_EXPORT "export"

/* body {"format", "split"?:{"train","val","test","seed"}, "media"?:bool,
 * "filters"?:{"batch_id","state":"released|done","min_confidence","label"}}.
 * INVALID for a bad request, UNPROCESSABLE "format_mismatch" for a format of the
 * other media. *out is the queued export. */
int tly_export_create(tly_store *st, int64_t project_id, const tly_user *user, json_t *body, tly_export_rec *out,
                      tly_error *err);

/* Runs export `id` (the job): writes the artifact and manifest under exports_dir
 * (this node's work space), moves both into the blob store (the artifact named by
 * artifact_sha256, the manifest by the version's sha256, so every node can serve
 * them), and records the export as done. */
int tly_export_run(tly_store *st, tly_blob_store *blobs, const char *exports_dir, int64_t id, tly_error *err);

/* Where an export's files are while it is written, and where exports finished before
 * artifacts moved to the blob store still are: the artifact, "<id>.manifest.jsonl". */
void tly_export_paths(const char *exports_dir, const tly_export_rec *e, char *artifact, char *manifest, size_t sz);

/* The API's export object, with live progress while this process runs it. */
json_t *tly_export_rec_json(const tly_export_rec *e);

#endif
