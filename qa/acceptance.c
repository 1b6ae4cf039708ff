/* acceptance.c -- see acceptance.h.
 *
 * Both tables are data, transcribed from the published standard (ISO 2859-1 Tables 1
 * and 2-A = ANSI/ASQ Z1.4 Tables I and II-A = MIL-STD-105E Tables I and II-A) and
 * cross-checked against:
 *   - MIL-STD-105E (10 May 1989), Table I and Table II-A, "legible copy" text
 *     reproduction (page 19 of 74): every row's sequence of Ac/Re pairs;
 *   - an ANSI/ASQC Z1.4 / MIL-STD-105E / ISO 2859 chart reproduction (pdfcoffee.com,
 *     "AQL sampling chart"): Table I, all 15 lot ranges x 7 levels;
 *   - NIBS FMOC "AC-TABLE.ASC" (Table 1-A, built from MIL-STD-105E Tables I and
 *     II-A): level II, AQL 0.65..15, letters A..Q, arrows included;
 *   - Lawson's R package AQLSchemes (as forked in fjgonzalezmgt/AQLSchemesCust,
 *     R/AAZ14Single.R): the arrow-resolved n and Ac of all 16 x 26 cells and
 *     Table I. tests/unit/test_qa_acceptance.c asserts every one of those 416
 *     resolved cells.
 *
 * Table 2-A holds, per code letter and AQL column, either the acceptance number or an
 * arrow; an arrow says "use the first sampling plan below (↓) / above (↑) the arrow",
 * and the sample size then changes to that plan's code letter. The arrows are
 * resolved here by walking the column. Each 0/1 plan is followed in its row by an ↑
 * and then a ↓ cell; at the table's edges these diagonals point off the table: letter
 * A at AQL 10 is printed ↑ (the NIBS reproduction shows it) with no plan above, and
 * letter R at AQL 0.015 would be ↓ with no plan below. Both are stored as the only
 * direction that reaches a plan -- A/10 as ↓ (letter C: n=5, Ac 1), R/0.015 as ↑
 * (letter P: n=800, Ac 0) -- which is how AQLSchemes resolves them too.
 *
 * Random sample: Floyd's algorithm (Bentley & Floyd, "Programming Pearls: A Sample
 * of Brilliance", CACM 30(9), 1987) keeping the chosen set sorted, so membership is
 * a binary search and the output needs no final sort; O(k log k) compares and at most
 * O(k^2) word moves, which is nothing at the standard's n <= 2000. For samples above
 * FLOYD_MAX (callers other than a plan) Knuth's selection sampling (TAOCP vol. 2,
 * 3.4.2, Algorithm S) is used instead: O(lot) time, no moves, output born sorted.
 * Random numbers: xoshiro256** (Blackman & Vigna) seeded through splitmix64, and
 * bounded integers by rejection, so every index is exactly equally likely.
 */
#include "qa/acceptance.h"

#include <math.h>
#include <stddef.h>

/* ---- Table 1: sample size code letters ---------------------------------------------- */

#define N_RANGES 15
#define N_LEVELS 7

/* Upper bound of each lot size range; the last range is 500,001 and over. */
static const long RANGE_MAX[N_RANGES] = {8,    15,    25,    50,    90,     150,    280, 500,
                                         1200, 3200, 10000, 35000, 150000, 500000, -1};

/* Columns: S-1 S-2 S-3 S-4 I II III (the order of tly_inspection_level). */
static const char CODE_LETTER[N_RANGES][N_LEVELS + 1] = {
    "AAAAAAB", /*       2 -      8 */
    "AAAAABC", /*       9 -     15 */
    "AABBBCD", /*      16 -     25 */
    "ABBCCDE", /*      26 -     50 */
    "BBCCCEF", /*      51 -     90 */
    "BBCDDFG", /*      91 -    150 */
    "BCDEEGH", /*     151 -    280 */
    "BCDEFHJ", /*     281 -    500 */
    "CCEFGJK", /*     501 -   1200 */
    "CDEGHKL", /*    1201 -   3200 */
    "CDFGJLM", /*    3201 -  10000 */
    "CDFHKMN", /*   10001 -  35000 */
    "DEGJLNP", /*   35001 - 150000 */
    "DEGJMPQ", /*  150001 - 500000 */
    "DEHKNQR", /*  500001 and over */
};

/* ---- Table 2-A: single sampling plans for normal inspection (master table) ----------- */

#define N_LETTERS 16
#define N_AQLS 26

static const char LETTERS[N_LETTERS + 1] = "ABCDEFGHJKLMNPQR";
static const long SAMPLE_SIZE[N_LETTERS] = {2,   3,   5,   8,   13,  20,   32,   50,
                                            80,  125, 200, 315, 500, 800, 1250, 2000};
static const double AQL[N_AQLS] = {0.010, 0.015, 0.025, 0.040, 0.065, 0.10, 0.15, 0.25, 0.40,
                                   0.65,  1.0,   1.5,   2.5,   4.0,   6.5,  10,   15,   25,
                                   40,    65,    100,   150,   250,   400,  650,  1000};
#define AQL_LIST                                                                              \
    "0.010, 0.015, 0.025, 0.040, 0.065, 0.10, 0.15, 0.25, 0.40, 0.65, 1.0, 1.5, 2.5, 4.0, " \
    "6.5, 10, 15, 25, 40, 65, 100, 150, 250, 400, 650, 1000"

enum { D = -1, /* ↓ use the first sampling plan below the arrow */
       U = -2  /* ↑ use the first sampling plan above the arrow */ };

/* Ac per code letter (rows A..R) and AQL (columns as AQL[]); Re = Ac + 1. */
static const signed char MASTER[16][26] = {
    /*      .010 .015 .025 .040 .065 .10 .15 .25 .40 .65 1.0 1.5 2.5 4.0 6.5 10  15  25  40  65 100 150 250 400 650 1000 */
    /* A */ {D,  D,   D,   D,   D,   D,  D,  D,  D,  D,  D,  D,  D,  D,  0,  D,  D,  1,  2,  3,  5,  7,  10, 14, 21, 30},
    /* B */ {D,  D,   D,   D,   D,   D,  D,  D,  D,  D,  D,  D,  D,  0,  U,  D,  1,  2,  3,  5,  7,  10, 14, 21, 30, 44},
    /* C */ {D,  D,   D,   D,   D,   D,  D,  D,  D,  D,  D,  D,  0,  U,  D,  1,  2,  3,  5,  7,  10, 14, 21, 30, 44, U},
    /* D */ {D,  D,   D,   D,   D,   D,  D,  D,  D,  D,  D,  0,  U,  D,  1,  2,  3,  5,  7,  10, 14, 21, 30, 44, U,  U},
    /* E */ {D,  D,   D,   D,   D,   D,  D,  D,  D,  D,  0,  U,  D,  1,  2,  3,  5,  7,  10, 14, 21, 30, 44, U,  U,  U},
    /* F */ {D,  D,   D,   D,   D,   D,  D,  D,  D,  0,  U,  D,  1,  2,  3,  5,  7,  10, 14, 21, U,  U,  U,  U,  U,  U},
    /* G */ {D,  D,   D,   D,   D,   D,  D,  D,  0,  U,  D,  1,  2,  3,  5,  7,  10, 14, 21, U,  U,  U,  U,  U,  U,  U},
    /* H */ {D,  D,   D,   D,   D,   D,  D,  0,  U,  D,  1,  2,  3,  5,  7,  10, 14, 21, U,  U,  U,  U,  U,  U,  U,  U},
    /* J */ {D,  D,   D,   D,   D,   D,  0,  U,  D,  1,  2,  3,  5,  7,  10, 14, 21, U,  U,  U,  U,  U,  U,  U,  U,  U},
    /* K */ {D,  D,   D,   D,   D,   0,  U,  D,  1,  2,  3,  5,  7,  10, 14, 21, U,  U,  U,  U,  U,  U,  U,  U,  U,  U},
    /* L */ {D,  D,   D,   D,   0,   U,  D,  1,  2,  3,  5,  7,  10, 14, 21, U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U},
    /* M */ {D,  D,   D,   0,   U,   D,  1,  2,  3,  5,  7,  10, 14, 21, U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U},
    /* N */ {D,  D,   0,   U,   D,   1,  2,  3,  5,  7,  10, 14, 21, U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U},
    /* P */ {D,  0,   U,   D,   1,   2,  3,  5,  7,  10, 14, 21, U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U},
    /* Q */ {0,  U,   D,   1,   2,   3,  5,  7,  10, 14, 21, U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U},
    /* R */ {U,  U,   1,   2,   3,   5,  7,  10, 14, 21, U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U,  U},
};

/* Column of the largest preferred AQL <= aql (with a relative tolerance, so 0.1 or
 * 6.5 parsed from JSON land on their column), or -1 outside [0.010, 1000]. */
static int aql_column(double aql)
{
    const double tol = 1e-9;
    if (!(aql >= AQL[0] * (1 - tol)) || !(aql <= AQL[N_AQLS - 1] * (1 + tol)))
        return -1;   /* also NaN */
    int col = 0;
    for (int j = 0; j < N_AQLS; j++)
        if (AQL[j] <= aql * (1 + tol))
            col = j;
    return col;
}

int tly_acceptance_plan_for(long lot_size, double aql, tly_inspection_level level, tly_acceptance_plan *out, tly_error *err)
{
    if (lot_size < 1)
        return tly_fail(err, TLY_E_INVALID, "invalid_lot_size", "lot size must be at least 1, not %ld",
                        lot_size);
    if ((int)level < (int)TLY_INSPECTION_S1 || (int)level > (int)TLY_INSPECTION_III)
        return tly_fail(err, TLY_E_INVALID, "invalid_inspection_level", "unknown inspection level %d",
                        (int)level);
    int col = aql_column(aql);
    if (col < 0)
        return tly_fail(err, TLY_E_INVALID, "invalid_aql",
                        "AQL %g is outside the standard's range; preferred values: " AQL_LIST, aql);

    int range = 0;
    while (range < N_RANGES - 1 && lot_size > RANGE_MAX[range])
        range++;
    char code = CODE_LETTER[range][level];
    int row = 0;
    while (LETTERS[row] != code)
        row++;

    int plan_row = row;
    while (MASTER[plan_row][col] < 0) {
        plan_row += MASTER[plan_row][col] == D ? 1 : -1;
        if (plan_row < 0 || plan_row >= N_LETTERS)   /* the table has no such arrow */
            return tly_fail(err, TLY_E_INTERNAL, "internal", "Table 2-A arrow leaves the table");
    }

    out->code_letter = code;
    out->plan_letter = LETTERS[plan_row];
    out->sample_size = SAMPLE_SIZE[plan_row] < lot_size ? SAMPLE_SIZE[plan_row] : lot_size;
    out->accept = MASTER[plan_row][col];
    out->reject = out->accept + 1;
    out->aql = AQL[col];
    return 0;
}

int tly_acceptance_decide(const tly_acceptance_plan *p, long defects)
{
    return defects <= p->accept ? 1 : 0;
}

/* ---- random sample ---------------------------------------------------------------------- */

#define FLOYD_MAX 8192

typedef struct {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r)   /* xoshiro256** */
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, bound) for bound >= 1, without modulo bias. */
static uint64_t rng_below(rng *r, uint64_t bound)
{
    uint64_t threshold = (0 - bound) % bound;   /* 2^64 mod bound */
    for (;;) {
        uint64_t x = rng_next(r);
        if (x >= threshold)
            return x % bound;
    }
}

/* Index of the first element >= v in the sorted a[0..n). */
static long lower_bound(const long *a, long n, long v)
{
    long lo = 0, hi = n;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (a[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void insert_at(long *a, long n, long pos, long v)
{
    for (long i = n; i > pos; i--)
        a[i] = a[i - 1];
    a[pos] = v;
}

void tly_acceptance_sample(long lot_size, long sample_size, uint64_t seed, long *out)
{
    if (lot_size <= 0 || sample_size <= 0)
        return;
    if (sample_size >= lot_size) {
        for (long i = 0; i < lot_size; i++)
            out[i] = i;
        return;
    }
    rng r;
    rng_seed(&r, seed);
    long k = sample_size;
    if (k <= FLOYD_MAX) {
        /* Floyd: for j = N-k .. N-1, take t in [0, j]; if t is taken already, take j
         * (which cannot be). Each k-subset comes out with probability 1 / C(N, k). */
        long have = 0;
        for (long j = lot_size - k; j < lot_size; j++) {
            long t = (long)rng_below(&r, (uint64_t)j + 1);
            long pos = lower_bound(out, have, t);
            if (pos < have && out[pos] == t) {
                t = j;   /* the largest so far: goes at the end */
                pos = have;
            }
            insert_at(out, have, pos, t);
            have++;
        }
        return;
    }
    /* Algorithm S: select index t with probability (k - chosen) / (N - t). */
    long chosen = 0;
    for (long t = 0; t < lot_size && chosen < k; t++)
        if (rng_below(&r, (uint64_t)(lot_size - t)) < (uint64_t)(k - chosen))
            out[chosen++] = t;
}
