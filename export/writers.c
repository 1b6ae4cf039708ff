/* writers.c -- the table of format writers (writer.h). Adding a format is one file
 * write_<format>.c and one line here. */
#include "export/writer.h"

#include <string.h>

static const tly_export_writer *const all[] = {
    &tly_writer_coco, &tly_writer_voc, &tly_writer_yolo, &tly_writer_csv, &tly_writer_imagenet,
    &tly_writer_nemo, &tly_writer_rttm, &tly_writer_segments_csv, &tly_writer_jsonl, &tly_writer_labelstudio,
    NULL,
};

const tly_export_writer *tly_export_writer_find(const char *name)
{
    for (int i = 0; name && all[i]; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

const char *tly_export_writer_names(void)
{
    return "coco, voc, yolo, csv, imagenet, nemo, rttm, segments_csv, jsonl, labelstudio";
}
