/* store_projects.c -- projects: media kind, template, workflow config, guidelines.
 *
 * The template and workflow are JSON objects validated and defaulted by annotate/;
 * the store keeps them as TEXT and hands back parsed copies the record owns.
 */
#include "storage/sql.h"

#include "core/hash.h"
#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

#define PROJECT_COLS \
    "id, name, media, state, template_json, workflow, guidelines, created_by, created_at," \
    " pseudonym_key"

static int read_project(const sq_row *r, void *ctx, tly_error *err)
{
    tly_project *p = ctx;
    p->id = sq_col_i64(r, 0);
    sq_col_copy(r, 1, p->name, sizeof p->name);
    sq_col_copy(r, 2, p->media, sizeof p->media);
    sq_col_copy(r, 3, p->state, sizeof p->state);
    p->created_by = sq_col_i64(r, 7);
    p->created_at = sq_col_i64(r, 8);
    sq_col_copy(r, 9, p->pseudonym_key, sizeof p->pseudonym_key);
    if (sq_col_json(r, 4, &p->template_json, err) < 0 || sq_col_json(r, 5, &p->workflow, err) < 0)
        return -1;
    return sq_col_dup(r, 6, &p->guidelines, err);
}

void tly_project_clear(tly_project *p)
{
    if (!p)
        return;
    json_decref(p->template_json);
    json_decref(p->workflow);
    free(p->guidelines);
    memset(p, 0, sizeof *p);
}

static void clear_project(void *p)
{
    tly_project_clear(p);
}

void tly_project_list_free(tly_project *list, size_t n)
{
    sq_list_free(list, n, sizeof *list, clear_project);
}

int tly_store_project_create(tly_store *st, const tly_project *in, int64_t *id_out,
                             tly_error *err)
{
    const char *state = in->state[0] ? in->state : "active";
    if (sq_check_str(in->name, sizeof in->name, 0, "project name", err) < 0)
        return -1;
    if (strcmp(in->media, "image") != 0 && strcmp(in->media, "audio") != 0)
        return tly_fail(err, TLY_E_INVALID, "invalid", "project media must be image or audio");
    if (sq_check_str(state, sizeof in->state, 0, "project state", err) < 0)
        return -1;
    char key[33];
    if (tly_random_hex(16, key, sizeof key) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "random", "no randomness for the project's pseudonym key");
    if (sq_insert(st,
                 "INSERT INTO projects (name, media, state, template_json, workflow, guidelines,"
                 " created_by, created_at, pseudonym_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                 id_out, err, "tttjjtiit", in->name, in->media, state, in->template_json,
                 in->workflow, in->guidelines, in->created_by, tly_now_ms(), key) < 0)
        return -1;
    return 0;
}

int tly_store_project_get(tly_store *st, int64_t id, tly_project *out, tly_error *err)
{
    return sq_one(st, "SELECT " PROJECT_COLS " FROM projects WHERE id = ?", read_project,
                  clear_project, out, sizeof *out, "project", err, "i", id);
}

int tly_store_project_list(tly_store *st, int64_t after_id, int limit, tly_project **out,
                           size_t *n_out, tly_error *err)
{
    return sq_list(st, "SELECT " PROJECT_COLS " FROM projects WHERE id > ? ORDER BY id LIMIT ?",
                   read_project, clear_project, sizeof **out, (void **)out, n_out, err, "ii",
                   after_id, sq_page_limit(limit));
}

int tly_store_project_update(tly_store *st, int64_t id, const char *name, const char *guidelines,
                             json_t *workflow, const char *state, tly_error *err)
{
    tly_project p;
    if ((name && sq_check_str(name, sizeof p.name, 0, "project name", err) < 0) ||
        (state && strcmp(state, "active") != 0 && strcmp(state, "paused") != 0 &&
         tly_fail(err, TLY_E_INVALID, "invalid", "project state must be active or paused") < 0))
        return -1;
    /* COALESCE keeps a field when its parameter is NULL. */
    int rc = sq_int64(st,
                      "UPDATE projects SET name = COALESCE(?, name), guidelines = COALESCE(?, guidelines),"
                      " workflow = COALESCE(?, workflow), state = COALESCE(?, state) WHERE id = ? RETURNING id",
                      NULL, err, "ttjti", name, guidelines, workflow, state, id);
    return sq_found(rc, "project", id, err);
}
