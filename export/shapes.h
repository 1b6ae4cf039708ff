/* shapes.h -- small pieces the image writers share: which controls hold shapes, the
 * extent of a polygon, the error for a malformed shape, and the split slot of an
 * item. Called by export/write_*.c only.
 */
#ifndef TALLY_EXPORT_SHAPES_H
#define TALLY_EXPORT_SHAPES_H

#include "export/writer.h"

#define TLY_EXPORT_SPLITS 3   /* train, val, test */

/* bbox, polygon, keypoints. */
int tly_export_is_shape_control(const char *type);
/* The bounding box of a polygon's [[x,y],...] points; 0, or -1 if malformed. */
int tly_export_polygon_extent(json_t *pts, double *x0, double *y0, double *x1, double *y1);
/* UNPROCESSABLE "invalid_result" naming the item, the control and the shape. */
int tly_export_bad_shape(const tly_export_item *it, const char *control, size_t i, tly_error *err);
/* 0 train, 1 val, 2 test (and *name the split's name); 0 with *name NULL when the
 * export has no split; -1 with err for an unknown split. name may be NULL. */
int tly_export_split_slot(const tly_export_context *ctx, const tly_export_item *it, const char **name, tly_error *err);

#endif
