/* progress.h -- the progress bars the CLI draws on stderr: uploads of `tally ingest`
 * (files and bytes), one download (bytes) and a server-side job (a count).
 *
 * Drawn only when stderr is a terminal: one line redrawn in place with '\r' (at most
 * ten times a second): bar, then files done/total, bytes sent/total and the average
 * rate (uploads); bytes received/total and the rate (a download); done/total (a count).
 * Messages printed through tc_progress_note clear the bar first, so per-file failure
 * lines never get mixed into it. With stderr not a terminal nothing is drawn and
 * notes are plain lines.
 */
#ifndef TALLY_CLI_PROGRESS_H
#define TALLY_CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

enum { TC_PROGRESS_FILES = 0, TC_PROGRESS_BYTES, TC_PROGRESS_COUNT };

typedef struct {
    int enabled;
    int kind;                         /* TC_PROGRESS_* */
    uint64_t base;                    /* BYTES: bytes there before (a resumed download) */
    size_t files_total, files_done;
    uint64_t bytes_total, bytes_done; /* FILES: of completed files; else the figures shown */
    uint64_t cur_sent;                /* of the file being sent */
    int64_t start_ns, last_draw_ns;
    int drawn;                        /* a bar is on screen */
} tc_progress;

void tc_progress_init(tc_progress *p, size_t files, uint64_t bytes);
/* One download of total bytes (0: unknown) of which base are already there. */
void tc_progress_init_bytes(tc_progress *p, uint64_t base, uint64_t total);
/* A job's done/total count. */
void tc_progress_init_count(tc_progress *p, uint64_t total);
/* BYTES: bytes of this transfer so far (on top of base); COUNT: done so far. total,
 * when not 0, replaces the total (for BYTES: of this transfer, base not included). */
void tc_progress_set(tc_progress *p, uint64_t done, uint64_t total);
/* Upload callback (matches tc_upload_progress_fn); arg is the tc_progress. */
void tc_progress_bytes(void *arg, uint64_t sent, uint64_t total);
/* A file is finished (uploaded or failed); size counts towards bytes either way. */
void tc_progress_file_done(tc_progress *p, uint64_t size);
void tc_progress_note(tc_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Final redraw and newline. */
void tc_progress_finish(tc_progress *p);

#endif
