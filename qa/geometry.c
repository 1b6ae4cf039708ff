/* geometry.c -- see geometry.h.
 *
 * Polygon IoU is computed by scanline rasterisation without sorting: for each grid row
 * the polygon's edges that cross the row's centre line toggle a parity bit at the
 * first cell whose centre lies right of the crossing; a running XOR along the row then
 * says, for every cell, whether an odd number of edges lies left of its centre -- the
 * even-odd rule. Two 257-byte toggle rows on the stack are all the memory it needs, so
 * the function cannot fail.
 */
#include "qa/geometry.h"

#include <math.h>
#include <string.h>

/* Union empty: 1 for identical shapes, else 0 (geometry.h). */
static double empty_union(int identical)
{
    return identical ? 1.0 : 0.0;
}

double tly_box_iou(tly_box a, tly_box b)
{
    double aw = a.w > 0 ? a.w : 0, ah = a.h > 0 ? a.h : 0;
    double bw = b.w > 0 ? b.w : 0, bh = b.h > 0 ? b.h : 0;
    double ix = fmin(a.x + aw, b.x + bw) - fmax(a.x, b.x);
    double iy = fmin(a.y + ah, b.y + bh) - fmax(a.y, b.y);
    double inter = ix > 0 && iy > 0 ? ix * iy : 0;
    double uni = aw * ah + bw * bh - inter;
    if (!(uni > 0))
        return empty_union(a.x == b.x && a.y == b.y && aw == bw && ah == bh);
    double iou = inter / uni;
    return iou > 1 ? 1 : iou;
}

double tly_interval_iou(double a0, double a1, double b0, double b1)
{
    if (a1 < a0)
        a1 = a0;
    if (b1 < b0)
        b1 = b0;
    double inter = fmin(a1, b1) - fmax(a0, b0);
    if (inter < 0)
        inter = 0;
    double uni = (a1 - a0) + (b1 - b0) - inter;
    if (!(uni > 0))
        return empty_union(a0 == b0 && a1 == b1);
    double iou = inter / uni;
    return iou > 1 ? 1 : iou;
}

double tly_polygon_area(const tly_point *pts, size_t n)
{
    if (n < 3)
        return 0;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        const tly_point *p = &pts[i], *q = &pts[(i + 1) % n];
        s += p->x * q->y - q->x * p->y;
    }
    return fabs(s) / 2;
}

tly_box tly_polygon_bounds(const tly_point *pts, size_t n)
{
    tly_box b = {0, 0, 0, 0};
    if (n == 0)
        return b;
    double x0 = pts[0].x, x1 = pts[0].x, y0 = pts[0].y, y1 = pts[0].y;
    for (size_t i = 1; i < n; i++) {
        x0 = fmin(x0, pts[i].x);
        x1 = fmax(x1, pts[i].x);
        y0 = fmin(y0, pts[i].y);
        y1 = fmax(y1, pts[i].y);
    }
    b.x = x0;
    b.y = y0;
    b.w = x1 - x0;
    b.h = y1 - y0;
    return b;
}

static int same_points(const tly_point *a, size_t na, const tly_point *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i].x != b[i].x || a[i].y != b[i].y)
            return 0;
    return 1;
}

/* Toggles, in d[0..GRID], the first cell (centre at x0 + (i + 0.5) * cw) right of each
 * crossing of the horizontal line y = yc by an edge of the polygon. Half-open rule on y
 * (an edge counts when exactly one end is <= yc), so a vertex on the line is counted
 * once. */
static void toggle_row(const tly_point *p, size_t n, double yc, double x0, double cw, unsigned char *d)
{
    for (size_t i = 0; i < n; i++) {
        const tly_point *a = &p[i], *b = &p[(i + 1) % n];
        if ((a->y <= yc) == (b->y <= yc))
            continue;
        double x = a->x + (yc - a->y) * (b->x - a->x) / (b->y - a->y);
        double t = (x - x0) / cw - 0.5;   /* cell i is right of x iff i >= t */
        size_t idx;
        if (!(t > 0))
            idx = 0;
        else if (t >= TLY_POLYGON_GRID)
            idx = TLY_POLYGON_GRID;
        else
            idx = (size_t)ceil(t);
        d[idx] ^= 1;
    }
}

double tly_polygon_iou(const tly_point *a, size_t na, const tly_point *b, size_t nb)
{
    int identical = same_points(a, na, b, nb);
    if (na < 3 || nb < 3)
        return empty_union(identical);
    if (identical)
        return 1;
    tly_box ba = tly_polygon_bounds(a, na), bb = tly_polygon_bounds(b, nb);
    if (ba.x + ba.w <= bb.x || bb.x + bb.w <= ba.x || ba.y + ba.h <= bb.y || bb.y + bb.h <= ba.y)
        return 0;
    double x0 = fmin(ba.x, bb.x), y0 = fmin(ba.y, bb.y);
    double x1 = fmax(ba.x + ba.w, bb.x + bb.w), y1 = fmax(ba.y + ba.h, bb.y + bb.h);
    double cw = (x1 - x0) / TLY_POLYGON_GRID, ch = (y1 - y0) / TLY_POLYGON_GRID;
    if (!(cw > 0) || !(ch > 0))
        return 0;
    unsigned long in_a = 0, in_b = 0, in_both = 0;
    for (int r = 0; r < TLY_POLYGON_GRID; r++) {
        unsigned char da[TLY_POLYGON_GRID + 1], db[TLY_POLYGON_GRID + 1];
        memset(da, 0, sizeof da);
        memset(db, 0, sizeof db);
        double yc = y0 + (r + 0.5) * ch;
        toggle_row(a, na, yc, x0, cw, da);
        toggle_row(b, nb, yc, x0, cw, db);
        unsigned char pa = 0, pb = 0;
        for (int c = 0; c < TLY_POLYGON_GRID; c++) {
            pa ^= da[c];
            pb ^= db[c];
            in_a += pa;
            in_b += pb;
            in_both += pa & pb;
        }
    }
    unsigned long uni = in_a + in_b - in_both;
    if (uni == 0)
        return 0;
    return (double)in_both / (double)uni;
}

double tly_point_distance(tly_point a, tly_point b)
{
    return hypot(a.x - b.x, a.y - b.y);
}
