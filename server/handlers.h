/* handlers.h -- the route handlers, grouped by resource (handlers_*.c), listed in
 * the route table in routes.c. Each takes a request whose route matched and whose
 * caller is authenticated and allowed by the table's roles; it checks anything
 * finer (ownership), calls the domain, and sets the reply. Only server/ uses this.
 */
#ifndef TALLY_SERVER_HANDLERS_H
#define TALLY_SERVER_HANDLERS_H

#include "server/http.h"

void h_healthz(tly_req *r);
void h_metrics(tly_req *r);
void h_user_create(tly_req *r);
void h_me(tly_req *r);

void h_project_create(tly_req *r);
void h_project_list(tly_req *r);
void h_project_get(tly_req *r);
void h_project_stats(tly_req *r);

void h_batch_create(tly_req *r);
void h_batch_list(tly_req *r);
void h_batch_get(tly_req *r);
void h_batch_errors(tly_req *r);
void h_batch_close(tly_req *r);
void h_upload_finish(tly_req *r);
int h_upload_begin(tly_req *r, tly_error *err);
int h_upload_chunk(tly_req *r, const char *data, size_t len, tly_error *err);
void h_upload_abort(tly_req *r);

void h_work_next(tly_req *r);
void h_work_submit(tly_req *r);
void h_work_skip(tly_req *r);
void h_assignment_get(tly_req *r);
void h_me_stats(tly_req *r);
void h_project_pause(tly_req *r);
void h_project_resume(tly_req *r);
void h_project_patch(tly_req *r);
void h_judgment_list(tly_req *r);

void h_item_list(tly_req *r);
void h_item_get(tly_req *r);
void h_item_media(tly_req *r);
void h_item_thumbnail(tly_req *r);
void h_item_waveform(tly_req *r);
void h_item_gold_put(tly_req *r);
void h_item_gold_delete(tly_req *r);

/* handlers_quality.c */
void h_result_list(tly_req *r);
void h_item_result(tly_req *r);
void h_worker_list(tly_req *r);
void h_review_next(tly_req *r);
void h_review_submit(tly_req *r);
void h_lot_draw(tly_req *r);
void h_lot_list(tly_req *r);
void h_lot_get(tly_req *r);
void h_lot_verdicts(tly_req *r);
void h_item_history(tly_req *r);
void h_judgment_import(tly_req *r);

/* handlers_exports.c */
void h_export_create(tly_req *r);
void h_export_get(tly_req *r);
void h_export_list(tly_req *r);
void h_export_download(tly_req *r);
void h_export_manifest(tly_req *r);

/* handlers_models.c */
void h_model_create(tly_req *r);
void h_model_list(tly_req *r);
void h_model_run(tly_req *r);
void h_item_predictions(tly_req *r);

/* handlers_console.c */
void h_project_throughput(tly_req *r);

/* static.c: the browser client under /app/ */
void h_app_redirect(tly_req *r);
void h_app_index(tly_req *r);
void h_app_static(tly_req *r);

#endif
