/* labelstudio.h -- translation between Tally templates / answers and the Label Studio
 * ML-backend protocol, so models written for Label Studio pre-label Tally items as is.
 *
 * Protocol (https://labelstud.io/guide/ml_create, label-studio-ml-backend): POST
 * /predict receives {"tasks":[{"id","data":{...}}],"label_config":"<View>...</View>",...}
 * and answers {"results":[{"result":[...],"score","model_version"}]}, one entry per
 * task in order. The result objects have the shape of Label Studio's export format
 * (https://labelstud.io/guide/export, https://labelstud.io/tags/):
 * {"from_name","to_name","type","value":{...},"score"?}.
 *
 * Mapping, Tally control -> config tag -> result type and value:
 *   choice          <Choices choice="single">    choices        {"choices":["cat"]}
 *   multi_choice    <Choices choice="multiple">  choices        {"choices":["a","b"]}
 *   text            <TextArea>                   textarea       {"text":["..."]}
 *   transcription   <TextArea>                   textarea       {"text":["..."]}
 *   bbox            <RectangleLabels>            rectanglelabels {"x","y","width","height",
 *                                                 "rotation"?,"rectanglelabels":[label]}
 *   polygon         <PolygonLabels>, <Polygon>   polygonlabels / polygon
 *                   without labels                {"points":[[x,y],...],"polygonlabels"?}
 *   keypoints       <KeyPointLabels>, <KeyPoint> keypointlabels / keypoint
 *                   without labels or names       {"x","y","width","keypointlabels"?}
 *   audio_segments  <Labels>                     labels         {"start","end","labels"}
 * Choices are <Choice value/>, labels <Label value/>; the object tag is <Image
 * name="image" value="$image"/> or <Audio name="audio" value="$audio"/>, and every
 * control tag is named after its Tally control with toName = the object.
 *
 * Coordinates: Label Studio gives image regions in percent (0-100) of the original
 * image, the top-left corner of a rectangle before its rotation, which turns clockwise
 * around that corner; Tally answers are pixels of the original image. A rotated
 * rectangle becomes the axis-aligned box around it. Boxes and points are clamped into
 * the image (a box left with no area is dropped); audio spans, in seconds in both, are
 * clamped into the item's duration when it is known.
 *
 * Keypoints: Label Studio has no instances, one region per point. With named points
 * ("points":["nose",...]) the config's labels are the point names (followed by the
 * instance labels, with choice="multiple", when the control has both) and the k-th
 * region of each name goes into instance k, with null for names never given. Without
 * names, a control's points are grouped into one instance per label.
 *
 * A region without a usable label gets the control's only label when it has exactly
 * one. Labels and choices are copied, not checked: the caller validates the answer
 * with the template engine, which names any the template lacks. Called by
 * annotate/prelabel_remote.c.
 */
#ifndef TALLY_ANNOTATE_LABELSTUDIO_H
#define TALLY_ANNOTATE_LABELSTUDIO_H

#include "core/error.h"

#include <jansson.h>

/* The Label Studio labeling config (XML) for a Tally template: <View> with one object tag
 * (<Image name="image" value="$image"/> or <Audio name="audio" value="$audio"/> by media;
 * the object is named "image1", "image2"... if a control is already named "image") and
 * one control tag per control: Choices (choice="single"|"multiple"), TextArea,
 * RectangleLabels, PolygonLabels (Polygon without labels), KeyPointLabels (KeyPoint
 * without labels or point names), Labels (audio segments), TextArea for transcription;
 * names = Tally control names, toName = the object; options/labels as <Choice
 * value/>/<Label value/> (XML-escaped); required controls' Choices and TextArea carry
 * required="true". The template is validated first: TLY_E_INVALID "invalid_template"
 * (or "invalid_media" when media is neither "image" nor "audio"). malloc'd string, or
 * NULL with err. */
char *tly_ls_label_config(json_t *tmpl, const char *media, tly_error *err);

/* The data object of a task for an item: {"image"|"audio": media_url} (new reference;
 * "image" unless media is "audio"). The caller may add keys. */
json_t *tly_ls_task_data(const char *media, const char *media_url);

/* One LS prediction ({"result":[...],"score"?,"model_version"?}) -> a Tally answer
 * object keyed by control name (new reference) for the item's media (percent ->
 * pixels, clamped into the image; regions grouped per control; a choices result for a
 * choice control takes the first choice, and a later choices result for it is dropped;
 * textarea texts are joined with "\n", for transcription with " "). Only controls
 * with results appear in the answer.
 *
 * Results naming unknown controls (or no from_name, like relations) or of the wrong
 * type for their control are ignored and counted in *ignored (may be NULL), as are
 * regions dropped in translation (outside the image or the audio, a polygon with fewer
 * than 3 points, a named keypoint naming no point, an empty choices or text list).
 *
 * *score (may be NULL) = the prediction's "score" if it is a number, else the mean of
 * the used regions' "score"s, else -1 (unknown); clamped into [0, 1].
 *
 * UNPROCESSABLE "invalid_prediction" if the prediction is not an object, its result is
 * not an array, a result is not an object, a used result's value is malformed (not an
 * object, coordinates missing or not numbers, label / choice / text lists not lists of
 * strings), or an image region needs the image size and media has none; then *answer
 * is NULL. The caller validates the answer with the template engine afterwards. */
int tly_ls_answer_from_prediction(json_t *tmpl, json_t *media, json_t *prediction, json_t **answer,
                                  double *score, int *ignored, tly_error *err);

#endif
