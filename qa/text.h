/* text.h -- comparing free text and transcripts: normalisation, words, word error rate.
 *
 * Normalisation (what two texts must share to count as "the same words"):
 *   - ASCII letters are lowercased; digits are kept;
 *   - bytes >= 0x80 are kept unchanged as word characters, so UTF-8 passes through
 *     (non-ASCII letters are not case-folded: "É" and "é" stay different);
 *   - an apostrophe between two word characters is kept ("don't", "rock'n'roll");
 *   - every other byte (ASCII punctuation, symbols, whitespace, control characters,
 *     NUL) separates words: "Hello,  World!" -> "hello world", "well-known" ->
 *     "well known", "U.S." -> "u s" (the same on both sides of a comparison);
 *   - runs of separators become one space; no space at either end.
 *
 * WER(reference, hypothesis) = word-level Levenshtein distance (substitutions,
 * insertions, deletions, each 1) / number of reference words; 0 when both are
 * empty, 1 when only the reference is. It can exceed 1 (many insertions).
 * Time O(n * m), memory O(min(n, m)). A text may have at most TLY_TEXT_MAX_WORDS
 * words: TLY_E_UNPROCESSABLE "text_too_long" beyond.
 *
 * Called by qa/compare.c and qa/aggregate.c; any folder may call it.
 */
#ifndef TALLY_QA_TEXT_H
#define TALLY_QA_TEXT_H

#include "core/error.h"

#include <stddef.h>
#include <stdint.h>

#define TLY_TEXT_MAX_WORDS 10000

/* The normalised form of the len bytes at s (NUL bytes allowed), NUL-terminated, in
 * *out (caller frees). TLY_E_INTERNAL "out_of_memory" is the only failure. */
int tly_text_normalize(const char *s, size_t len, char **out, tly_error *err);

/* A normalised text split into words. Everything is owned by the struct. */
typedef struct {
    char *buf;         /* the normalised words, each NUL-terminated */
    char **word;       /* n pointers into buf */
    uint64_t *hash;    /* n hashes of the words (speeds up the distance) */
    size_t n;
} tly_words;

/* Normalises the len bytes at s and splits them into *out (release with
 * tly_words_free, also after a failure). TLY_E_UNPROCESSABLE "text_too_long" over
 * TLY_TEXT_MAX_WORDS words. */
int tly_words_split(const char *s, size_t len, tly_words *out, tly_error *err);
void tly_words_free(tly_words *w);

/* 1 when both hold the same words. */
int tly_words_equal(const tly_words *a, const tly_words *b);

/* Word-level Levenshtein distance (symmetric) into *out. */
int tly_words_distance(const tly_words *a, const tly_words *b, size_t *out, tly_error *err);

/* WER from a distance and the word counts (rules above). */
double tly_wer_from_distance(size_t distance, size_t ref_words, size_t hyp_words);

/* WER(ref, hyp) of two NUL-terminated texts, normalised first. */
int tly_wer(const char *ref, const char *hyp, double *out, tly_error *err);

#endif
