/* shapes.c -- see shapes.h. */
#include "export/shapes.h"

#include <math.h>
#include <string.h>

int tly_export_is_shape_control(const char *type)
{
    return type && (strcmp(type, "bbox") == 0 || strcmp(type, "polygon") == 0 || strcmp(type, "keypoints") == 0);
}

int tly_export_polygon_extent(json_t *pts, double *x0, double *y0, double *x1, double *y1)
{
    size_t k;
    json_t *pt;
    *x0 = *y0 = INFINITY;
    *x1 = *y1 = -INFINITY;
    if (!json_is_array(pts) || json_array_size(pts) == 0)
        return -1;
    json_array_foreach(pts, k, pt) {
        if (!json_is_array(pt) || json_array_size(pt) != 2 || !json_is_number(json_array_get(pt, 0)) ||
            !json_is_number(json_array_get(pt, 1)))
            return -1;
        double x = json_number_value(json_array_get(pt, 0)), y = json_number_value(json_array_get(pt, 1));
        *x0 = fmin(*x0, x), *y0 = fmin(*y0, y), *x1 = fmax(*x1, x), *y1 = fmax(*y1, y);
    }
    return 0;
}

int tly_export_bad_shape(const tly_export_item *it, const char *control, size_t i, tly_error *err)
{
    return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_result", "item %lld: control '%s': shape %zu is malformed",
                    (long long)it->item_id, control ? control : "?", i);
}
