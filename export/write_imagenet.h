/* write_imagenet.h -- the media layout hook of the ImageNet-style writer.
 *
 * An ImageNet-style dataset is a folder per class, so for this format the media path
 * depends on the answer: the core (export.c) asks tly_imagenet_class_of for each
 * item and puts its media at "<split or 'all'>/<class>/<stem>.<ext>" (that path is
 * then the item's media_path); an item without a class (NULL) is left out of the
 * export altogether. Called by export/export.c.
 */
#ifndef TALLY_EXPORT_WRITE_IMAGENET_H
#define TALLY_EXPORT_WRITE_IMAGENET_H

#include "export/writer.h"

/* The item's class: the value of the template's first "choice" control, when it is
 * one of that control's options and usable as a folder name; NULL otherwise (no
 * choice control, no answer for it, or a name the writer refuses: see
 * write_imagenet.c). The string belongs to it->answer. */
const char *tly_imagenet_class_of(const tly_export_context *ctx, const tly_export_item *it);

#endif
