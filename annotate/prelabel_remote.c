/* prelabel_remote.c -- the remote model backend: a Label Studio ML backend over HTTP.
 *
 * Protocol (label-studio-ml-backend): GET /health -> 200; POST /setup {"project",
 * "schema": label config, "hostname", "access_token"} -> {"model_version"}; POST
 * /predict {"tasks":[{"id","data":{"image"|"audio": url}}], "label_config",
 * "project", "params":{}} -> {"results":[{"result":[...],"score","model_version"}]},
 * one entry per task, in order (older backends answer a bare list; both are read).
 *
 * Every call has a connect timeout and a total timeout, and is retried with backoff
 * (100 ms, 400 ms) on transport errors and 5xx; 4xx is final. The response body is
 * capped. Translation of the label config and of the results is annotate/labelstudio.c.
 */
#include "annotate/labelstudio.h"
#include "annotate/prelabel.h"
#include "core/buf.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 2000L
#define CALL_TIMEOUT_MS 30000L
#define HEALTH_TIMEOUT_MS 5000L
#define MAX_RESPONSE (16u << 20)
#define ATTEMPTS 3

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    return tly_buf_append(arg, p, sz * n) < 0 ? 0 : sz * n;
}

/* One HTTP exchange with retries. body NULL = GET. *out (new reference) is the parsed
 * JSON reply of a 2xx, or NULL for an empty one. */
static int call(const char *base, const char *path, json_t *body, long timeout_ms, json_t **out, tly_error *err)
{
    char url[2200];
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    snprintf(url, sizeof url, "%.*s%s", (int)blen, base, path);   /* path starts with '/' */
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !text)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    tly_buf resp;
    tly_buf_init(&resp, MAX_RESPONSE);
    int rc = -1;
    for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
        if (attempt)
            usleep(attempt == 1 ? 100000 : 400000);
        tly_buf_reset(&resp);
        CURL *c = curl_easy_init();
        if (!c) {
            tly_fail(err, TLY_E_INTERNAL, "curl", "curl_easy_init failed");
            break;
        }
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        if (text)
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        if (cc != CURLE_OK) {
            tly_fail(err, TLY_E_IO, "model_unreachable", "%s: %s", path, curl_easy_strerror(cc));
            continue;   /* transport trouble: try again */
        }
        if (status >= 500) {
            tly_fail(err, TLY_E_IO, "model_error", "%s: HTTP %ld", path, status);
            continue;
        }
        if (status < 200 || status >= 300) {
            tly_fail(err, TLY_E_UNPROCESSABLE, "model_refused", "%s: HTTP %ld: %.200s", path, status,
                     resp.len ? resp.data : "");
            break;   /* the model says no: retrying will not change its mind */
        }
        *out = NULL;
        if (resp.len) {
            json_error_t je;
            if (!(*out = json_loadb(resp.data, resp.len, JSON_DECODE_ANY, &je))) {
                tly_fail(err, TLY_E_UNPROCESSABLE, "model_bad_reply", "%s: not JSON: %s", path, je.text);
                break;
            }
        }
        rc = 0;
        break;
    }
    free(text);
    tly_buf_free(&resp);
    return rc;
}

static int remote_setup(tly_model *m, const tly_project *p, const tly_prelabel_env *env, tly_error *err)
{
    const char *media_base = env->media_base;
    json_t *reply = NULL;
    if (call(m->url, "/health", NULL, HEALTH_TIMEOUT_MS, &reply, err) < 0)
        return -1;
    json_decref(reply);
    char *config = tly_ls_label_config(p->template_json, p->media, err);
    if (!config)
        return -1;
    char project[48];
    snprintf(project, sizeof project, "%lld", (long long)p->id);
    json_t *body = json_pack("{s:s,s:s,s:s}", "project", project, "schema", config, "hostname",
                             media_base ? media_base : "");
    free(config);
    reply = NULL;
    int rc = call(m->url, "/setup", body, HEALTH_TIMEOUT_MS, &reply, err);
    json_decref(body);
    if (rc == 0) {
        const char *v = json_string_value(json_object_get(reply, "model_version"));
        if (v)
            snprintf(m->version, sizeof m->version, "%s", v);
    }
    json_decref(reply);
    return rc;
}

static int remote_predict(const tly_model *m, const tly_project *p, const tly_item *items, size_t n,
                          const tly_prelabel_env *env, tly_prelabel_out *out, char *version, size_t versionsz,
                          tly_error *err)
{
    const char *media_base = env->media_base;
    char *config = tly_ls_label_config(p->template_json, p->media, err);
    if (!config)
        return -1;
    json_t *tasks = json_array();
    for (size_t i = 0; i < n; i++) {
        char url[2200];
        snprintf(url, sizeof url, "%s/v1/items/%lld/media", media_base ? media_base : "", (long long)items[i].id);
        json_t *data = tly_ls_task_data(p->media, url);
        json_object_set_new(data, "tally_item_id", json_integer(items[i].id));
        json_array_append_new(tasks, json_pack("{s:I,s:o}", "id", (json_int_t)items[i].id, "data", data));
    }
    char project[48];
    snprintf(project, sizeof project, "%lld", (long long)p->id);
    json_t *body = json_pack("{s:o,s:s,s:s,s:{}}", "tasks", tasks, "label_config", config, "project", project, "params");
    free(config);
    json_t *reply = NULL;
    int rc = call(m->url, "/predict", body, CALL_TIMEOUT_MS, &reply, err);
    json_decref(body);
    if (rc < 0)
        return -1;
    json_t *results = json_is_array(reply) ? reply : json_object_get(reply, "results");
    if (!json_is_array(results)) {
        json_decref(reply);
        return tly_fail(err, TLY_E_UNPROCESSABLE, "model_bad_reply", "/predict: no 'results' list in the reply");
    }
    for (size_t i = 0; i < n; i++) {
        json_t *pred = json_array_get(results, i);
        out[i].score = -1;
        if (!pred) {
            snprintf(out[i].error, sizeof out[i].error, "model '%s' returned no prediction for this item", m->name);
            continue;
        }
        const char *v = json_string_value(json_object_get(pred, "model_version"));
        if (v && version && !version[0])
            snprintf(version, versionsz, "%s", v);
        tly_error terr;
        int ignored = 0;
        if (tly_ls_answer_from_prediction(p->template_json, items[i].media, pred, &out[i].answer, &out[i].score,
                                          &ignored, &terr) < 0)
            snprintf(out[i].error, sizeof out[i].error, "model '%s': %s", m->name, terr.message);
    }
    json_decref(reply);
    return 0;
}

const tly_prelabel_backend tly_prelabel_remote = {
    .kind = "remote",
    .setup = remote_setup,
    .predict = remote_predict,
};
