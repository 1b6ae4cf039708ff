/* buf.h -- a growable byte buffer with a hard size cap.
 *
 * Every buffer that grows with outside input (request bodies, fetched files, JSON
 * dumps) has a cap chosen by its owner, like curl's dynbuf: growing past it fails
 * instead of letting a client exhaust memory. The data is always NUL-terminated
 * (the terminator is not counted in len), so text can be used in place.
 */
#ifndef TALLY_CORE_BUF_H
#define TALLY_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data;     /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t max;     /* largest len allowed */
} tly_buf;

void tly_buf_init(tly_buf *b, size_t max);
/* Returns 0, or -1 if the cap would be exceeded or memory ran out (b unchanged). */
int tly_buf_append(tly_buf *b, const void *data, size_t len);
int tly_buf_appendf(tly_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tly_buf_vappendf(tly_buf *b, const char *fmt, va_list ap);
void tly_buf_reset(tly_buf *b);       /* len = 0, keeps memory */
void tly_buf_free(tly_buf *b);        /* frees memory, keeps max */
/* Hands the memory to the caller (free() it); b becomes empty. */
char *tly_buf_detach(tly_buf *b);

#endif
