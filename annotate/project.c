/* project.c -- see project.h. */
#include "annotate/project.h"
#include "annotate/template.h"
#include "core/json.h"
#include "core/timeutil.h"

#include <stdio.h>
#include <string.h>

#define MAX_GUIDELINES (1 << 20)

int tly_project_create(tly_store *st, json_t *body, int64_t created_by, tly_project *out,
                       tly_error *err)
{
    static const char *const keys[] = {"name", "media", "template", "workflow", "guidelines", NULL};
    const char *name = NULL, *media = NULL, *guidelines = NULL;
    json_t *tmpl = NULL, *workflow = NULL;
    if (tly_json_only_keys(body, "project", keys, err) < 0 ||
        tly_json_get_string(body, "name", 1, &name, err) < 0 ||
        tly_json_get_string(body, "media", 1, &media, err) < 0 ||
        tly_json_get_object(body, "template", 1, &tmpl, err) < 0 ||
        tly_json_get_object(body, "workflow", 0, &workflow, err) < 0 ||
        tly_json_get_string(body, "guidelines", 0, &guidelines, err) < 0)
        return -1;
    if (!name[0] || strlen(name) > 200)
        return tly_fail(err, TLY_E_INVALID, "invalid_field", "field 'name' must be 1 to 200 bytes");
    if (strcmp(media, "image") != 0 && strcmp(media, "audio") != 0)
        return tly_fail(err, TLY_E_INVALID, "invalid_field", "field 'media' must be \"image\" or \"audio\"");
    if (guidelines && strlen(guidelines) > MAX_GUIDELINES)
        return tly_fail(err, TLY_E_INVALID, "invalid_field", "field 'guidelines' is over 1 MiB");
    if (tly_template_validate(tmpl, media, err) < 0)
        return -1;
    json_t *normalized = tly_workflow_normalize(workflow, err);
    if (!normalized)
        return -1;

    tly_project p = {0};
    snprintf(p.name, sizeof p.name, "%s", name);
    snprintf(p.media, sizeof p.media, "%s", media);
    snprintf(p.state, sizeof p.state, "active");
    p.template_json = tmpl;
    p.workflow = normalized;
    p.guidelines = (char *)guidelines;
    p.created_by = created_by;
    int64_t id = 0;
    int rc = tly_store_project_create(st, &p, &id, err);
    json_decref(normalized);
    if (rc < 0)
        return -1;
    return tly_store_project_get(st, id, out, err);
}

int tly_project_update(tly_store *st, int64_t id, json_t *body, tly_project *out, tly_error *err)
{
    static const char *const keys[] = {"name", "guidelines", "workflow", NULL};
    const char *name = NULL, *guidelines = NULL;
    json_t *changes = NULL;
    if (tly_json_only_keys(body, "project", keys, err) < 0 || tly_json_get_string(body, "name", 0, &name, err) < 0 ||
        tly_json_get_string(body, "guidelines", 0, &guidelines, err) < 0 ||
        tly_json_get_object(body, "workflow", 0, &changes, err) < 0)
        return -1;
    if (name && (!name[0] || strlen(name) > 200))
        return tly_fail(err, TLY_E_INVALID, "invalid_field", "field 'name' must be 1 to 200 bytes");
    if (guidelines && strlen(guidelines) > MAX_GUIDELINES)
        return tly_fail(err, TLY_E_INVALID, "invalid_field", "field 'guidelines' is over 1 MiB");
    tly_project cur = {0};
    if (tly_store_project_get(st, id, &cur, err) < 0)
        return -1;
    json_t *workflow = NULL;
    if (changes) {
        json_t *merged = json_deep_copy(cur.workflow);
        json_object_update_recursive(merged, changes);
        workflow = tly_workflow_normalize(merged, err);
        json_decref(merged);
        if (!workflow) {
            tly_project_clear(&cur);
            return -1;
        }
    }
    tly_project_clear(&cur);
    int rc = tly_store_project_update(st, id, name, guidelines, workflow, NULL, err);
    json_decref(workflow);
    return rc < 0 ? -1 : tly_store_project_get(st, id, out, err);
}

int tly_project_set_state(tly_store *st, int64_t id, const char *state, tly_project *out,
                          tly_error *err)
{
    if (tly_store_project_update(st, id, NULL, NULL, NULL, state, err) < 0)
        return -1;
    return tly_store_project_get(st, id, out, err);
}

json_t *tly_project_json(const tly_project *p)
{
    char created[32];
    tly_format_rfc3339(p->created_at, created, sizeof created);
    return json_pack("{s:I,s:s,s:s,s:s,s:O,s:O,s:s,s:I,s:s}", "id", (json_int_t)p->id, "name",
                     p->name, "media", p->media, "state", p->state, "template", p->template_json,
                     "workflow", p->workflow, "guidelines", p->guidelines ? p->guidelines : "",
                     "created_by", (json_int_t)p->created_by, "created_at", created);
}
