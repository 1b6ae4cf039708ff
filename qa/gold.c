/* gold.c -- see gold.h. */
#include "qa/gold.h"
#include "annotate/template.h"

int tly_gold_validate(json_t *tmpl, json_t *answer, json_t *media, tly_error *err)
{
    tly_error sub;
    if (tly_template_validate_answer(tmpl, answer, media, &sub) < 0)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_gold", "gold answer: %s", sub.message);
    /* null means "not answered", so {"label":null} answers nothing, like {}. */
    size_t answered = 0;
    const char *key;
    json_t *v;
    json_object_foreach(answer, key, v)
        answered += !json_is_null(v);
    if (answered == 0)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_gold", "gold answer: no control answered");
    return 0;
}

int tly_gold_set(tly_store *st, int64_t item_id, json_t *answer, tly_item *item_out,
                 tly_error *err)
{
    tly_item item = {0};
    tly_project project = {0};
    int rc = -1;
    if (tly_store_item_get(st, item_id, &item, err) < 0)
        goto out;
    if (answer) {
        if (tly_store_project_get(st, item.project_id, &project, err) < 0)
            goto out;
        if (tly_gold_validate(project.template_json, answer, item.media, err) < 0)
            goto out;
    }
    if (tly_store_item_set_gold(st, item_id, answer, err) < 0)
        goto out;
    rc = item_out ? tly_store_item_get(st, item_id, item_out, err) : 0;
out:
    tly_item_clear(&item);
    tly_project_clear(&project);
    return rc;
}
