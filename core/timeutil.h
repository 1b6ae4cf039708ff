/* timeutil.h -- clocks and RFC 3339 formatting.
 *
 * Wall-clock times are stored as milliseconds since the Unix epoch (int64) and shown
 * to clients as RFC 3339 UTC strings. Durations use the monotonic clock.
 */
#ifndef TALLY_CORE_TIMEUTIL_H
#define TALLY_CORE_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

int64_t tly_now_ms(void);      /* wall clock, ms since epoch */
int64_t tly_mono_ns(void);     /* monotonic clock, ns */

/* "2026-11-22T03:08:06Z" into out (at least 21 bytes). */
void tly_format_rfc3339(int64_t epoch_ms, char *out, size_t outsz);
/* "2026-11-22T03:08:06.123Z" into out (at least 25 bytes). */
void tly_format_rfc3339_ms(int64_t epoch_ms, char *out, size_t outsz);

#endif
