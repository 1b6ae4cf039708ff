/* log.h -- one-line structured log records on stderr.
 *
 * Format: "2026-11-22T03:08:06.123Z INFO  ingest: message". The level threshold is
 * process-wide (set once at start by tallyd's main); writes are line-atomic because
 * each record is formatted into one buffer and written with a single write(2).
 */
#ifndef TALLY_CORE_LOG_H
#define TALLY_CORE_LOG_H

typedef enum { TLY_LOG_DEBUG, TLY_LOG_INFO, TLY_LOG_WARN, TLY_LOG_ERROR } tly_log_level;

void tly_log_set_level(tly_log_level level);
/* Parse "debug|info|warn|error"; returns -1 if unknown. */
int tly_log_parse_level(const char *name, tly_log_level *out);
void tly_log(tly_log_level level, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_DEBUG(sub, ...) tly_log(TLY_LOG_DEBUG, sub, __VA_ARGS__)
#define LOG_INFO(sub, ...) tly_log(TLY_LOG_INFO, sub, __VA_ARGS__)
#define LOG_WARN(sub, ...) tly_log(TLY_LOG_WARN, sub, __VA_ARGS__)
#define LOG_ERROR(sub, ...) tly_log(TLY_LOG_ERROR, sub, __VA_ARGS__)

#endif
