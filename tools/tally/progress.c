/* progress.c -- see progress.h. No allocation: the line is formatted on the stack. */
#include "tools/tally/progress.h"

#include "core/timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#define BAR_WIDTH 24

void tc_progress_init(tc_progress *p, size_t files, uint64_t bytes)
{
    p->enabled = isatty(STDERR_FILENO);
    p->kind = TC_PROGRESS_FILES;
    p->base = 0;
    p->files_total = files;
    p->files_done = 0;
    p->bytes_total = bytes;
    p->bytes_done = 0;
    p->cur_sent = 0;
    p->start_ns = tly_mono_ns();
    p->last_draw_ns = 0;
    p->drawn = 0;
}

void tc_progress_init_bytes(tc_progress *p, uint64_t base, uint64_t total)
{
    tc_progress_init(p, 0, total);
    p->kind = TC_PROGRESS_BYTES;
    p->base = base;
    p->bytes_done = base;
}

void tc_progress_init_count(tc_progress *p, uint64_t total)
{
    tc_progress_init(p, 0, total);
    p->kind = TC_PROGRESS_COUNT;
}

static void human(uint64_t n, char *out, size_t outsz)
{
    const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(out, outsz, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void draw(tc_progress *p, int force)
{
    if (!p->enabled)
        return;
    int64_t now = tly_mono_ns();
    if (!force && p->drawn && now - p->last_draw_ns < 100 * 1000000LL)
        return;
    p->last_draw_ns = now;
    uint64_t done = p->bytes_done + p->cur_sent;
    if (done > p->bytes_total && (p->kind == TC_PROGRESS_FILES || p->bytes_total))
        done = p->bytes_total;
    double frac = p->bytes_total ? (double)done / (double)p->bytes_total
                : p->files_total ? (double)p->files_done / (double)p->files_total : 1.0;
    int fill = (int)(frac * BAR_WIDTH);
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[BAR_WIDTH] = '\0';
    if (p->kind != TC_PROGRESS_FILES && !p->bytes_total)
        for (int i = 0; i < BAR_WIDTH; i++)
            bar[i] = ' '; /* no total known yet: no fraction to show */
    double secs = (double)(now - p->start_ns) / 1e9;
    char a[32], b[32], r[32];
    human(done, a, sizeof a);
    human(p->bytes_total, b, sizeof b);
    /* the rate counts what moved in this run, not what a resumed download had */
    uint64_t moved = done >= p->base ? done - p->base : 0;
    human(secs > 0.05 ? (uint64_t)((double)moved / secs) : 0, r, sizeof r);
    if (p->kind == TC_PROGRESS_COUNT)
        fprintf(stderr, "\r[%s] %llu/%llu\033[K", bar, (unsigned long long)done,
                (unsigned long long)p->bytes_total);
    else if (p->kind == TC_PROGRESS_BYTES)
        fprintf(stderr, "\r[%s] %s / %s  %s/s\033[K", bar, a, p->bytes_total ? b : "?", r);
    else
        fprintf(stderr, "\r[%s] %zu/%zu files  %s / %s  %s/s\033[K", bar, p->files_done,
                p->files_total, a, b, r);
    fflush(stderr);
    p->drawn = 1;
}

void tc_progress_bytes(void *arg, uint64_t sent, uint64_t total)
{
    tc_progress *p = arg;
    (void)total;
    p->cur_sent = sent;
    draw(p, 0);
}

void tc_progress_set(tc_progress *p, uint64_t done, uint64_t total)
{
    if (p->kind == TC_PROGRESS_BYTES) {
        if (total)
            p->bytes_total = p->base + total;
        p->bytes_done = p->base + done;
    } else {
        if (total)
            p->bytes_total = total;
        p->bytes_done = done;
    }
    draw(p, 0);
}

void tc_progress_file_done(tc_progress *p, uint64_t size)
{
    p->files_done++;
    p->bytes_done += size;
    p->cur_sent = 0;
    draw(p, p->files_done == p->files_total);
}

void tc_progress_note(tc_progress *p, const char *fmt, ...)
{
    if (p->enabled && p->drawn)
        fputs("\r\033[K", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (p->enabled && p->drawn)
        draw(p, 1);
}

void tc_progress_finish(tc_progress *p)
{
    if (!p->enabled)
        return;
    draw(p, 1);
    fputc('\n', stderr);
}
