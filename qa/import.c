/* import.c -- see import.h. */
#include "qa/import.h"
#include "annotate/project.h"
#include "annotate/template.h"
#include "annotate/work.h"
#include "core/json.h"
#include "core/timeutil.h"
#include "qa/crowd.h"
#include "qa/standing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ERRORS 100

typedef struct {
    tly_store *st;
    tly_project p;
    int overlap;
    int64_t imported, duplicates, rejected;
    json_t *errors;
} importer;

static void reject(importer *im, size_t line, const char *code, const char *message)
{
    im->rejected++;
    if (json_array_size(im->errors) < MAX_ERRORS)
        json_array_append_new(im->errors,
                              json_pack("{s:I,s:s,s:s}", "line", (json_int_t)line, "code", code, "message", message));
}

/* item: an id (number or digits) or a file name. */
static int resolve_item(importer *im, json_t *ref, tly_item *it, tly_error *err)
{
    int64_t id = 0;
    const char *s = json_string_value(ref);
    if (json_is_integer(ref))
        id = json_integer_value(ref);
    else if (s && *s && strspn(s, "0123456789") == strlen(s))
        id = strtoll(s, NULL, 10);
    else if (!s || !*s)
        return tly_fail(err, TLY_E_INVALID, "invalid_item", "item must be an item id or a file name");
    else if (tly_store_item_by_name(im->st, im->p.id, s, &id, err) < 0)
        return -1;
    if (tly_store_item_get(im->st, id, it, err) < 0)
        return -1;
    if (it->project_id != im->p.id)
        return tly_fail(err, TLY_E_NOT_FOUND, "not_found", "item %lld is not in this project", (long long)id);
    return 0;
}

static void import_one(importer *im, size_t line, json_t *item_ref, const char *worker_ref, json_t *answer)
{
    tly_item it = {0};
    tly_error e;
    char *canonical = NULL;
    if (!worker_ref || !*worker_ref || strlen(worker_ref) > 100) {
        reject(im, line, "invalid_worker", "worker must be a non-empty reference of at most 100 bytes");
        return;
    }
    if (resolve_item(im, item_ref, &it, &e) < 0) {
        reject(im, line, e.code, e.message);
        goto out;
    }
    if (strcmp(it.state, "gold") == 0) {
        reject(im, line, "gold_item", "item is a test question; import judgments of work items");
        goto out;
    }
    if (tly_template_validate_answer(im->p.template_json, answer, it.media, &e) < 0) {
        reject(im, line, e.code, e.message);
        goto out;
    }
    int64_t worker_id = 0;
    tly_project_worker w = {0};
    if (tly_store_import_worker(im->st, im->p.id, worker_ref, &worker_id, &e) < 0 ||
        tly_crowd_standing(im->st, &im->p, worker_id, &w, &e) < 0) {
        reject(im, line, e.code, e.message);
        goto out;
    }
    if (strcmp(w.mode, "work") != 0) {   /* imported workers took no quiz here */
        strcpy(w.mode, "work");
        tly_store_project_worker_update(im->st, &w, &e);
    }
    tly_project_worker_clear(&w);
    canonical = tly_work_canonical_answer(answer);
    int64_t jid = 0;
    if (!canonical) {
        reject(im, line, "out_of_memory", "out of memory");
    } else if (tly_store_judgment_import(im->st, im->p.id, it.id, worker_id, canonical, im->overlap, tly_now_ms(),
                                         &jid, &e) < 0) {
        if (e.status == TLY_E_CONFLICT)
            im->duplicates++;
        else
            reject(im, line, e.code, e.message);
    } else {
        im->imported++;
    }
out:
    free(canonical);
    tly_item_clear(&it);
}

/* The answer of a CSV line: a JSON object, or a plain value for the first control. */
static json_t *csv_answer(const tly_project *p, const char *field)
{
    json_t *j = json_loads(field, JSON_DECODE_ANY, NULL);
    if (json_is_object(j))
        return j;
    json_decref(j);
    json_t *first = json_array_get(json_object_get(p->template_json, "controls"), 0);
    const char *name = json_string_value(json_object_get(first, "name"));
    return name ? json_pack("{s:s}", name, field) : NULL;
}

/* Splits one CSV record (RFC 4180 quotes) into at most 3 fields in place. */
static int csv_fields(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        char *out = p;
        f[n++] = p;
        if (*p == '"') {
            char *r = p + 1;
            for (;;) {
                if (!*r)
                    return -1;
                if (*r == '"' && r[1] == '"') {
                    *out++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *out++ = *r++;
                }
            }
            if (*r && *r != ',')
                return -1;
            int more = *r == ',';
            *out = 0;
            p = r + more;
            if (!more)
                return n;
        } else {
            char *comma = n < max ? strchr(p, ',') : NULL;
            if (!comma || n == max)
                return n;   /* the last field takes the rest of the line */
            *comma = 0;
            p = comma + 1;
        }
    }
    return n;
}

static void import_text(importer *im, const char *format, const char *data)
{
    char *copy = strdup(data);
    if (!copy)
        return;
    int csv = strcmp(format, "csv") == 0;
    size_t line = 0;
    char *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t len = strlen(l);
        if (len && l[len - 1] == '\r')
            l[--len] = 0;
        if (!len)
            continue;
        if (csv) {
            char *f[3];
            if (line == 1 && strncmp(l, "item,worker,answer", 18) == 0)
                continue;   /* the header */
            if (csv_fields(l, f, 3) != 3) {
                reject(im, line, "invalid_line", "expected three fields: item,worker,answer");
                continue;
            }
            json_t *answer = csv_answer(&im->p, f[2]);
            json_t *item = json_string(f[0]);
            if (answer)
                import_one(im, line, item, f[1], answer);
            else
                reject(im, line, "invalid_answer", "the template has no control for a plain answer");
            json_decref(item);
            json_decref(answer);
        } else {
            json_error_t jerr;
            json_t *obj = json_loads(l, 0, &jerr);
            if (!json_is_object(obj)) {
                reject(im, line, "invalid_json", "each line must be a JSON object");
            } else {
                import_one(im, line, json_object_get(obj, "item"), json_string_value(json_object_get(obj, "worker")),
                           json_object_get(obj, "answer"));
            }
            json_decref(obj);
        }
    }
    free(copy);
}

int tly_import_judgments(tly_store *st, int64_t project_id, json_t *body, json_t **out, tly_error *err)
{
    static const char *const keys[] = {"format", "data", "judgments", NULL};
    const char *format = NULL, *data = NULL;
    json_t *list = NULL;
    if (tly_json_only_keys(body, "import", keys, err) < 0 || tly_json_get_string(body, "format", 0, &format, err) < 0 ||
        tly_json_get_string(body, "data", 0, &data, err) < 0 || tly_json_get_array(body, "judgments", 0, &list, err) < 0)
        return -1;
    if (!list && !data)
        return tly_fail(err, TLY_E_INVALID, "missing_field", "give 'judgments' or 'format' with 'data'");
    if (data && (!format || (strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0)))
        return tly_fail(err, TLY_E_INVALID, "invalid_format", "format must be csv or jsonl");
    if (list && json_array_size(list) > TLY_IMPORT_MAX_LINES)
        return tly_fail(err, TLY_E_INVALID, "too_many_judgments", "at most %d judgments per import",
                        TLY_IMPORT_MAX_LINES);
    importer im = {.st = st, .errors = json_array()};
    if (tly_store_project_get(st, project_id, &im.p, err) < 0) {
        json_decref(im.errors);
        return -1;
    }
    im.overlap = (int)tly_workflow_number(im.p.workflow, NULL, "overlap");
    int rc = -1;
    if (tly_store_begin(st, err) < 0)
        goto out;
    if (list) {
        size_t i;
        json_t *j;
        json_array_foreach(list, i, j) {
            if (!json_is_object(j))
                reject(&im, i + 1, "invalid_judgment", "each judgment must be an object");
            else
                import_one(&im, i + 1, json_object_get(j, "item"), json_string_value(json_object_get(j, "worker")),
                           json_object_get(j, "answer"));
        }
    } else {
        import_text(&im, format, data);
    }
    if (tly_store_commit(st, err) < 0) {
        tly_store_rollback(st);
        goto out;
    }
    *out = json_pack("{s:I,s:I,s:I,s:O}", "imported", (json_int_t)im.imported, "duplicates", (json_int_t)im.duplicates,
                     "rejected", (json_int_t)im.rejected, "errors", im.errors);
    rc = 0;
out:
    json_decref(im.errors);
    tly_project_clear(&im.p);
    return rc;
}
