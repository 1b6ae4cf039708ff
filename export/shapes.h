/* shapes.h -- small pieces the image writers share: which controls hold shapes, the
 * extent of a polygon and the error for a malformed shape. Called by
 * export/write_*.c only.
 */
#ifndef TALLY_EXPORT_SHAPES_H
#define TALLY_EXPORT_SHAPES_H

#include "export/writer.h"

/* bbox, polygon, keypoints. */
int tly_export_is_shape_control(const char *type);
/* The bounding box of a polygon's [[x,y],...] points; 0, or -1 if malformed. */
int tly_export_polygon_extent(json_t *pts, double *x0, double *y0, double *x1, double *y1);
/* UNPROCESSABLE "invalid_result" naming the item, the control and the shape. */
int tly_export_bad_shape(const tly_export_item *it, const char *control, size_t i, tly_error *err);

#endif
