/* walk.h -- collecting the files `tally ingest` uploads and naming them uniquely.
 *
 * A PATH on the command line is either a file (taken as is, even if hidden) or a
 * directory, walked recursively in sorted order: regular files only (symlinks to
 * files count, symlinked directories are not entered), names starting with '.' are
 * skipped. The upload name is the file's base name; when a base name was already
 * taken, the path with '/' turned into '_' is used ("photos/a/x.jpg" ->
 * "photos_a_x.jpg"), and failing that "x-2.jpg", "x-3.jpg", ...
 */
#ifndef TALLY_CLI_WALK_H
#define TALLY_CLI_WALK_H

#include "core/error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *path;    /* as found on disk (owned) */
    char *name;    /* unique upload name (owned) */
    uint64_t size; /* at walk time */
} tc_file;

typedef struct {
    tc_file *files; /* owned array of n entries */
    size_t n, cap;
    uint64_t total_bytes;
    const char **set; /* open-addressing hash set of names, borrowed from files[] */
    size_t set_cap;
} tc_filelist;

void tc_files_init(tc_filelist *l);
/* Add a file, or every eligible file under a directory. -1 with err on failure. */
int tc_files_add_path(tc_filelist *l, const char *path, tly_error *err);
void tc_files_free(tc_filelist *l);

#endif
