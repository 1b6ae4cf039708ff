/* fsutil.h -- file-system helpers with crash-safety in mind.
 *
 * Durable writes follow one recipe everywhere: write a temp file in the target's
 * directory, fsync it, rename it over the final name, fsync the directory. A crash
 * then leaves either the old state or the new one, never half a file under a real
 * name; leftover temp files carry a ".tmp" suffix so start-up can sweep them.
 */
#ifndef TALLY_CORE_FSUTIL_H
#define TALLY_CORE_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with the given mode for created directories. 0 or -1 (errno). */
int tly_mkdirs(const char *path, mode_t mode);
/* Write data to path atomically (temp + fsync + rename + dir fsync). */
int tly_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* fsync the directory containing path (or path itself if it is a directory). */
int tly_fsync_dir_of(const char *path);
/* Write all of buf to fd, retrying short writes and EINTR. */
int tly_write_all(int fd, const void *buf, size_t len);
/* Read a whole small file (at most max bytes) into a NUL-terminated malloc'd string. */
char *tly_read_file(const char *path, size_t max, size_t *len_out);
/* Remove a directory tree (used by tests and tmp sweeps). */
int tly_remove_tree(const char *path);

/* True if name is safe as a single file name: 1..255 bytes, no '/', no NUL or control
 * characters, not "." or "..". Used for uploaded file names. */
int tly_is_safe_filename(const char *name);

/* Resolve `path` (must exist) with realpath(3) and check it lies inside one of the
 * roots (each also resolved). On success writes the resolved path to out and returns
 * 0; returns -1 if it escapes every root (symlinks are followed, so a link pointing
 * outside is rejected), or does not exist. */
int tly_path_within_roots(const char *path, const char *const *roots, size_t nroots,
                          char *out, size_t outsz);

/* The last path component (after the last '/'), or the whole string. */
const char *tly_basename(const char *path);

#endif
