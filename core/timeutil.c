/* timeutil.c -- see timeutil.h. */
#include "core/timeutil.h"

#include <stdio.h>
#include <time.h>

int64_t tly_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tly_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void format(int64_t epoch_ms, char *out, size_t outsz, int with_ms)
{
    /* Floor division, so times before 1970 come out right too. */
    int64_t ms = epoch_ms % 1000;
    if (ms < 0)
        ms += 1000;
    time_t secs = (time_t)((epoch_ms - ms) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    if (with_ms)
        snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)ms);
    else
        snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void tly_format_rfc3339(int64_t epoch_ms, char *out, size_t outsz) { format(epoch_ms, out, outsz, 0); }
void tly_format_rfc3339_ms(int64_t epoch_ms, char *out, size_t outsz) { format(epoch_ms, out, outsz, 1); }
