/* geometry.h -- overlap and distance measures for the region controls' quality checks.
 *
 * Boxes are axis-aligned {x, y, w, h} in pixels (x, y = top-left corner); intervals
 * are [start, end] in seconds; polygons are vertex lists in pixels, closed implicitly
 * (the last vertex joins the first) and filled by the even-odd rule, so a
 * self-intersecting outline is handled the way a renderer would fill it.
 *
 * Every measure is pure arithmetic: no allocation, no error path, deterministic.
 * An overlap measure whose union is empty (zero-size shapes) is 1 when the two shapes
 * are identical and 0 otherwise.
 * Called by qa/compare.c and qa/aggregate.c; any folder may call it.
 */
#ifndef TALLY_QA_GEOMETRY_H
#define TALLY_QA_GEOMETRY_H

#include <stddef.h>

typedef struct {
    double x, y;
} tly_point;

typedef struct {
    double x, y, w, h;
} tly_box;

/* Cells per side of the grid tly_polygon_iou rasterises on. */
#define TLY_POLYGON_GRID 256

/* Intersection over union of two boxes, in [0, 1]. A negative width or height counts
 * as zero. */
double tly_box_iou(tly_box a, tly_box b);

/* Intersection over union of [a0, a1] and [b0, b1] (temporal IoU), in [0, 1]. */
double tly_interval_iou(double a0, double a1, double b0, double b1);

/* Area enclosed by the polygon (shoelace formula, absolute value). Exact for simple
 * polygons; for a self-intersecting one it is |signed area|, which can differ from the
 * even-odd filled area tly_polygon_iou uses. 0 with fewer than 3 vertices. */
double tly_polygon_area(const tly_point *pts, size_t n);

/* The axis-aligned bounding box of n >= 1 points (all zero for n == 0). */
tly_box tly_polygon_bounds(const tly_point *pts, size_t n);

/* Intersection over union of two polygons, in [0, 1] -- an approximation.
 *
 * Both are rasterised, even-odd, on one TLY_POLYGON_GRID x TLY_POLYGON_GRID grid laid
 * over the bounding box of their union; a cell belongs to a polygon when its centre is
 * inside it, and IoU = cells in both / cells in either. Cells need not be square (IoU
 * is unchanged by scaling one axis), so the resolution follows the union box on both
 * axes. Only cells cut by an edge can be misclassified, about half a cell's worth per
 * unit of outline, so the error is about (outline in cells) / (area in cells): below
 * 0.01 for shapes that fill a fair part of their union box (two 10x10 squares
 * overlapping by half: 0.3359 for the exact 1/3), larger for a thin sliver or a shape
 * tiny next to the other. Identical vertex lists give exactly 1; polygons whose
 * bounding boxes do not overlap give exactly 0. Cost: O(GRID * (na + nb + GRID)).
 * Fewer than 3 vertices, or no cell inside either: 1 if identical, else 0. */
double tly_polygon_iou(const tly_point *a, size_t na, const tly_point *b, size_t nb);

/* Euclidean distance. */
double tly_point_distance(tly_point a, tly_point b);

#endif
