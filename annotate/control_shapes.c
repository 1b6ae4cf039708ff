/* control_shapes.c -- image region controls: "bbox" (axis-aligned boxes), "polygon"
 * and "keypoints". Coordinates in answers are pixels of the original image.
 *
 * bbox needs "labels"; polygon and keypoints may have them. keypoints may name its
 * points ("points":["nose","left_eye",...]) for skeleton-style annotation.
 */
#include "annotate/control.h"

static int validate_bbox(json_t *def, tly_error *err)
{
    return tly_control_check_string_set(def, "labels", 1, 1000, err);
}

static int validate_polygon(json_t *def, tly_error *err)
{
    return tly_control_check_string_set(def, "labels", 0, 1000, err);
}

static int validate_keypoints(json_t *def, tly_error *err)
{
    if (tly_control_check_string_set(def, "labels", 0, 1000, err) < 0)
        return -1;
    return tly_control_check_string_set(def, "points", 0, 200, err);
}

static const char *const bbox_keys[] = {"labels", NULL};
static const char *const keypoint_keys[] = {"labels", "points", NULL};

const tly_control_type tly_control_bbox = {
    .name = "bbox", .media = TLY_FOR_IMAGE, .keys = bbox_keys, .validate_def = validate_bbox,
};

const tly_control_type tly_control_polygon = {
    .name = "polygon", .media = TLY_FOR_IMAGE, .keys = bbox_keys, .validate_def = validate_polygon,
};

const tly_control_type tly_control_keypoints = {
    .name = "keypoints", .media = TLY_FOR_IMAGE, .keys = keypoint_keys,
    .validate_def = validate_keypoints,
};
