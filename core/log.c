/* log.c -- see log.h. */
#include "core/log.h"
#include "core/timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile tly_log_level g_level = TLY_LOG_INFO;

void tly_log_set_level(tly_log_level level) { g_level = level; }

int tly_log_parse_level(const char *name, tly_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (tly_log_level)i;
            return 0;
        }
    return -1;
}

void tly_log(tly_log_level level, const char *subsystem, const char *fmt, ...)
{
    static const char *tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    if (level < g_level)
        return;
    char line[2048];
    char ts[40];
    tly_format_rfc3339_ms(tly_now_ms(), ts, sizeof ts);
    int n = snprintf(line, sizeof line, "%s %s %s: ", ts, tags[level], subsystem);
    va_list ap;
    va_start(ap, fmt);
    if (n < (int)sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
