/* control_shapes.c -- image region controls: "bbox" (axis-aligned boxes), "polygon"
 * and "keypoints". Coordinates in answers are pixels of the original image.
 *
 * bbox needs "labels"; polygon and keypoints may have them. keypoints may name its
 * points ("points":["nose","left_eye",...]) for skeleton-style annotation.
 */
#include "annotate/control.h"
#include "core/json.h"

#include <string.h>

#define MAX_SHAPES 10000
#define MAX_POINTS 10000

/* Each shape is an object with only the given keys; its label (when the control has
 * labels) must be one of them. */
static int check_shape(json_t *def, json_t *shape, size_t i, const char *const *keys, tly_error *err)
{
    tly_error sub;
    if (!json_is_object(shape))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "shape %zu must be an object", i);
    if (tly_json_only_keys(shape, "shape", keys, &sub) < 0)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "shape %zu: %s", i, sub.message);
    json_t *label = json_object_get(shape, "label");
    if (json_object_get(def, "labels")) {
        if (tly_control_check_member(def, "labels", label, "label", &sub) < 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "shape %zu: %s", i,
                            label ? sub.message : "'label' is required");
    } else if (label && !json_is_string(label)) {
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "shape %zu: 'label' must be a string", i);
    }
    return 0;
}

/* A point [x, y] inside the image (when its size is known). */
static int check_point(json_t *pt, json_t *media, size_t shape, size_t k, tly_error *err)
{
    if (!json_is_array(pt) || json_array_size(pt) != 2 || !json_is_number(json_array_get(pt, 0)) ||
        !json_is_number(json_array_get(pt, 1)))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "shape %zu point %zu must be [x, y]", shape, k);
    double x = json_number_value(json_array_get(pt, 0)), y = json_number_value(json_array_get(pt, 1));
    double w = tly_control_media_dim(media, "width"), h = tly_control_media_dim(media, "height");
    if (x < 0 || y < 0 || (w >= 0 && x > w) || (h >= 0 && y > h))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "shape %zu point %zu (%g, %g) is outside the image",
                        shape, k, x, y);
    return 0;
}

static int check_list(json_t *value, const char *what, tly_error *err)
{
    if (!json_is_array(value))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "the answer must be an array of %s", what);
    if (json_array_size(value) > MAX_SHAPES)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "more than %d %s", MAX_SHAPES, what);
    return 0;
}

static int answer_bbox(json_t *def, json_t *value, json_t *media, tly_error *err)
{
    static const char *const keys[] = {"label", "x", "y", "w", "h", NULL};
    if (check_list(value, "boxes", err) < 0)
        return -1;
    double iw = tly_control_media_dim(media, "width"), ih = tly_control_media_dim(media, "height");
    size_t i;
    json_t *box;
    json_array_foreach(value, i, box) {
        double x, y, w, h;
        tly_error sub;
        if (check_shape(def, box, i, keys, err) < 0)
            return -1;
        if (tly_control_number(box, "x", &x, &sub) < 0 || tly_control_number(box, "y", &y, &sub) < 0 ||
            tly_control_number(box, "w", &w, &sub) < 0 || tly_control_number(box, "h", &h, &sub) < 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "box %zu: %s", i, sub.message);
        if (w <= 0 || h <= 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "box %zu must have a positive width and height", i);
        if (x < 0 || y < 0 || (iw >= 0 && x + w > iw) || (ih >= 0 && y + h > ih))
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer",
                            "box %zu (%g, %g, %g x %g) is not inside the %gx%g image", i, x, y, w, h, iw, ih);
    }
    return 0;
}

static int answer_polygon(json_t *def, json_t *value, json_t *media, tly_error *err)
{
    static const char *const keys[] = {"label", "points", NULL};
    if (check_list(value, "polygons", err) < 0)
        return -1;
    size_t i;
    json_t *poly;
    json_array_foreach(value, i, poly) {
        if (check_shape(def, poly, i, keys, err) < 0)
            return -1;
        json_t *pts = json_object_get(poly, "points");
        if (!json_is_array(pts) || json_array_size(pts) < 3 || json_array_size(pts) > MAX_POINTS)
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "polygon %zu needs 'points' with 3 to %d [x, y] pairs",
                            i, MAX_POINTS);
        size_t k;
        json_t *pt;
        json_array_foreach(pts, k, pt)
            if (check_point(pt, media, i, k, err) < 0)
                return -1;
    }
    return 0;
}

/* Keypoints: [{"label"?, "points":[[x,y] | null, ...]}]; null marks a point that is not
 * visible. With named points the list has exactly one entry per name. */
static int answer_keypoints(json_t *def, json_t *value, json_t *media, tly_error *err)
{
    static const char *const keys[] = {"label", "points", NULL};
    if (check_list(value, "instances", err) < 0)
        return -1;
    json_t *names = json_object_get(def, "points");
    size_t i;
    json_t *inst;
    json_array_foreach(value, i, inst) {
        if (check_shape(def, inst, i, keys, err) < 0)
            return -1;
        json_t *pts = json_object_get(inst, "points");
        if (!json_is_array(pts) || json_array_size(pts) == 0 || json_array_size(pts) > MAX_POINTS)
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "instance %zu needs a non-empty 'points' array", i);
        if (names && json_array_size(pts) != json_array_size(names))
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "instance %zu has %zu points; the control names %zu",
                            i, json_array_size(pts), json_array_size(names));
        size_t k;
        json_t *pt;
        json_array_foreach(pts, k, pt)
            if (!json_is_null(pt) && check_point(pt, media, i, k, err) < 0)
                return -1;
    }
    return 0;
}

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
    .validate_answer = answer_bbox,
};

const tly_control_type tly_control_polygon = {
    .name = "polygon", .media = TLY_FOR_IMAGE, .keys = bbox_keys, .validate_def = validate_polygon,
    .validate_answer = answer_polygon,
};

const tly_control_type tly_control_keypoints = {
    .name = "keypoints", .media = TLY_FOR_IMAGE, .keys = keypoint_keys,
    .validate_def = validate_keypoints, .validate_answer = answer_keypoints,
};
