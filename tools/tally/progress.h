/* progress.h -- the upload progress bar `tally ingest` draws on stderr.
 *
 * Drawn only when stderr is a terminal: one line redrawn in place with '\r' (at most
 * ten times a second): bar, files done/total, bytes sent/total and the average rate.
 * Messages printed through tc_progress_note clear the bar first, so per-file failure
 * lines never get mixed into it. With stderr not a terminal nothing is drawn and
 * notes are plain lines.
 */
#ifndef TALLY_CLI_PROGRESS_H
#define TALLY_CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int enabled;
    size_t files_total, files_done;
    uint64_t bytes_total, bytes_done; /* bytes_done: completed files only */
    uint64_t cur_sent;                /* of the file being sent */
    int64_t start_ns, last_draw_ns;
    int drawn;                        /* a bar is on screen */
} tc_progress;

void tc_progress_init(tc_progress *p, size_t files, uint64_t bytes);
/* Upload callback (matches tc_upload_progress_fn); arg is the tc_progress. */
void tc_progress_bytes(void *arg, uint64_t sent, uint64_t total);
/* A file is finished (uploaded or failed); size counts towards bytes either way. */
void tc_progress_file_done(tc_progress *p, uint64_t size);
void tc_progress_note(tc_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Final redraw and newline. */
void tc_progress_finish(tc_progress *p);

#endif
