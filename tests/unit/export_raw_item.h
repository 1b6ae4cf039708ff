/* export_raw_item.h -- for the export writers' unit tests: hands an item to a writer
 * the way export/export.c does. The fixtures build answers as jansson values; a
 * writer with raw_answers reads them as stored text through export/jsonview.h, so
 * the text is made here (jansson's dump keeps every real exact: 17 digits) and the
 * jansson values are hidden from the writer, which must then read the views alone.
 */
#ifndef TALLY_TESTS_EXPORT_RAW_ITEM_H
#define TALLY_TESTS_EXPORT_RAW_ITEM_H

#include "export/writer.h"

#include <stdlib.h>
#include <string.h>

static inline int export_item_call(const tly_export_writer *w, void *state, const tly_export_context *ctx,
                                   const tly_export_item *it, tly_export_out *out, int pass, tly_error *err)
{
    if (!w->raw_answers)
        return w->item(state, ctx, it, out, pass, err);
    tly_export_item raw = *it;
    char *answer = it->answer ? json_dumps(it->answer, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17)) : NULL;
    char *detail = it->detail ? json_dumps(it->detail, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17)) : NULL;
    raw.answer = raw.detail = NULL;
    raw.answer_view.type = raw.detail_view.type = TLY_JV_NONE;
    tly_jv_doc answer_doc, detail_doc;
    int rc = (answer && tly_jv_parse_doc(&answer_doc, answer, strlen(answer), &raw.answer_view, NULL) < 0) ||
                     (detail && tly_jv_parse_doc(&detail_doc, detail, strlen(detail), &raw.detail_view, NULL) < 0)
                 ? tly_fail(err, TLY_E_INTERNAL, "test", "the fixture's JSON does not read back")
                 : w->item(state, ctx, &raw, out, pass, err);
    free(answer);
    free(detail);
    return rc;
}

#endif
