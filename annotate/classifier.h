/* classifier.h -- the learning code behind the built-in "image-classifier" model
 * (prelabel_classifier.c): compact image features, a multinomial logistic regression
 * and its calibration. Pure computation: no store, no blobs, no threads.
 *
 * Features (TLY_CLS_DIM floats per image) come from a grayscale copy of the image
 * resampled to TLY_CLS_SIDE x TLY_CLS_SIDE (area average, aspect not kept):
 *   - the pixels averaged 2 x 2 (14 x 14 = 196 values in [0,1]): coarse shape;
 *   - a HOG-like descriptor: gradient orientations (9 unsigned bins, magnitude
 *     weighted, linearly split between neighbouring bins) over 4 x 4-pixel cells,
 *     normalised per 2 x 2-cell block (L2, clipped at 0.2, renormalised -- "L2-Hys"),
 *     6 x 6 blocks x 36 = 1,296 values: edges and texture, robust to brightness.
 * They are cheap (~70 us an image on this VM) and small enough to cache per item.
 *
 * The model is softmax regression on standardised features (mean / scale learned on
 * the training rows), fitted by mini-batch SGD with momentum and L2 weight decay in a
 * fixed, seeded order (a fit is reproducible). Its probabilities are then calibrated
 * by temperature scaling: one scalar T dividing the logits, chosen on labelled rows
 * the fit never saw to minimise the log loss of the top probability as a forecast
 * of "the top class is right"; then Platt scaling maps the top probability to the
 * score (sigmoid(A logit(p) + B), fitted on the same rows): temperature alone cannot
 * fix a crowd's label noise, which caps how often even a sure answer agrees. A
 * calibrated score s means "right about s of the time", which is what confidence
 * routing needs.
 */
#ifndef TALLY_ANNOTATE_CLASSIFIER_H
#define TALLY_ANNOTATE_CLASSIFIER_H

#include "core/buf.h"
#include "core/error.h"

#include <stddef.h>
#include <stdint.h>

#define TLY_CLS_SIDE 28
#define TLY_CLS_PIXELS 196                 /* 14 x 14 */
#define TLY_CLS_HOG 1296                   /* 6 x 6 blocks x 4 cells x 9 bins */
#define TLY_CLS_DIM (TLY_CLS_PIXELS + TLY_CLS_HOG)
#define TLY_CLS_FEATURES_VERSION 1         /* bump when the features change (cached rows) */
#define TLY_CLS_MAX_CLASSES 1000

/* Features of a grayscale image (w x h bytes, row-major, stride w) into out[TLY_CLS_DIM]. */
void tly_cls_features_gray(const unsigned char *gray, int w, int h, float *out);
/* Decodes a JPEG (grayscale, DCT-scaled down when large) and computes its features.
 * TLY_E_UNPROCESSABLE when the bytes are not a decodable JPEG. */
int tly_cls_features_jpeg(const void *jpeg, size_t len, float *out, tly_error *err);

typedef struct {
    int dim, k;
    float *mean, *scale;       /* dim each: x' = (x - mean) * scale */
    float *w;                  /* k rows of dim weights + 1 bias */
    double temperature;        /* logits are divided by it (1 before calibration) */
    double platt_a, platt_b;   /* score of the top class = sigmoid(a logit(p) + b) (1, 0 before) */
} tly_cls_model;

typedef struct {
    double l2;                 /* weight decay; 0: 0.2 (strong: crowd labels are noisy) */
    int epochs;                /* 0: chosen from n */
    uint64_t seed;
} tly_cls_train_opts;

void tly_cls_model_clear(tly_cls_model *m);
/* Fits m on x (n rows of dim floats) with labels y[i] in [0,k). n >= 1. */
int tly_cls_train(const float *x, const int *y, size_t n, int dim, int k, const tly_cls_train_opts *opts,
                  tly_cls_model *m, tly_error *err);
/* Class probabilities of one row (prob[k]), with m->temperature applied. */
void tly_cls_predict(const tly_cls_model *m, const float *x, double *prob);
/* The best class of one row, its calibrated score in *score (prob[k] as above). */
int tly_cls_classify(const tly_cls_model *m, const float *x, double *prob, double *score);
/* Fits m->temperature and the score's Platt scaling on held-out rows (n may be 0: T stays 1). Returns the mean
 * log loss of the top probability after calibration; accuracy (may be NULL) gets the rows'
 * accuracy. */
double tly_cls_calibrate(tly_cls_model *m, const float *x, const int *y, size_t n, double *accuracy);
/* A model as bytes (native float layout, with a magic and its sizes) and back. */
int tly_cls_serialize(const tly_cls_model *m, tly_buf *out, tly_error *err);
int tly_cls_deserialize(const void *data, size_t len, tly_cls_model *m, tly_error *err);

#endif
