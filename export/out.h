/* out.h -- the dataset being written: a staging directory and its manifest.
 *
 * The core (export.c) makes one per export; writers see it only through writer.h's
 * file functions. Every file closed, and every media file the core adds, becomes one
 * line of the manifest, {"path","sha256","size"}, streamed to a file as it happens
 * (a million-file dataset must not hold a million entries in memory). The manifest's
 * own SHA-256 is the version's identity. Called by export/ only (and unit tests).
 */
#ifndef TALLY_EXPORT_OUT_H
#define TALLY_EXPORT_OUT_H

#include "export/writer.h"

/* root: the dataset's directory (created); manifest_path: where the manifest lines
 * go (outside root). */
tly_export_out *tly_export_out_new(const char *root, const char *manifest_path, tly_error *err);
/* A file the core put in place itself (media): recorded in the manifest. */
int tly_export_out_add(tly_export_out *out, const char *path, const char *sha256, int64_t size, tly_error *err);
/* Ends the manifest. manifest_sha: 65 bytes. Fails if a writer left a file open. */
int tly_export_out_finish(tly_export_out *out, char *manifest_sha, int64_t *files, int64_t *bytes, tly_error *err);
const char *tly_export_out_root(const tly_export_out *out);
void tly_export_out_free(tly_export_out *out);

#endif
