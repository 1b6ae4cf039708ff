/* acceptance.h -- customer acceptance sampling of a delivered lot of annotations.
 *
 * Attribute sampling as in ISO 2859-1 (tables identical to ANSI/ASQ Z1.4 and
 * MIL-STD-105E): single sampling plans, normal inspection. The lot size and the
 * inspection level give a sample size code letter (Table 1); the code letter and
 * the AQL give a plan (Table 2-A): inspect n items drawn at random, accept the lot
 * when at most Ac of them are defective, reject it from Re = Ac + 1 on.
 *
 * AQL: one of the standard's preferred values 0.010, 0.015, 0.025, 0.040, 0.065,
 * 0.10, 0.15, 0.25, 0.40, 0.65, 1.0, 1.5, 2.5, 4.0, 6.5, 10, 15, 25, 40, 65, 100,
 * 150, 250, 400, 650, 1000 (percent nonconforming up to 10, nonconformities per 100
 * items above). Any other value in [0.010, 1000] is snapped DOWN to the nearest
 * preferred value (the stricter plan, never a looser one: a workflow's
 * "acceptance.aql" may be any number in 0.01..100); plan.aql reports the value
 * used. Values outside that range are TLY_E_INVALID.
 *
 * TLY_INSPECTION_II is the standard's default level. Pure computation: no store,
 * no allocation.
 */
#ifndef TALLY_QA_ACCEPTANCE_H
#define TALLY_QA_ACCEPTANCE_H

#include "core/error.h"

#include <stdint.h>

typedef enum { TLY_INSPECTION_S1, TLY_INSPECTION_S2, TLY_INSPECTION_S3, TLY_INSPECTION_S4, TLY_INSPECTION_I, TLY_INSPECTION_II, TLY_INSPECTION_III } tly_inspection_level;

typedef struct {
    char code_letter;       /* from Table 1 for the lot size */
    char plan_letter;       /* after following arrows in Table 2-A */
    long sample_size;       /* n (capped at the lot size: 100% inspection) */
    int accept;             /* Ac: lot accepted when defects <= Ac */
    int reject;             /* Re = Ac + 1 for single sampling */
    double aql;
} tly_acceptance_plan;

/* lot_size >= 1 (a lot of 1 uses the first row of Table 1, 2 to 8). When the plan's
 * sample size is >= the lot size the whole lot is inspected (sample_size = lot_size)
 * and Ac/Re stay the plan's. TLY_E_INVALID for lot_size < 1, an unknown level or an
 * AQL outside [0.010, 1000] (or not a number). */
int tly_acceptance_plan_for(long lot_size, double aql, tly_inspection_level level, tly_acceptance_plan *out, tly_error *err);

/* 1 accepted, 0 rejected. */
int tly_acceptance_decide(const tly_acceptance_plan *p, long defects);

/* Picks plan->sample_size distinct indices out of [0, lot_size) uniformly at random from a seed (deterministic for the same seed; partial Fisher-Yates or Floyd's algorithm with a 64-bit PRNG such as splitmix64/xoshiro), sorted ascending, into out (caller allocates sample_size longs).
 * sample_size >= lot_size yields every index 0 .. lot_size-1 (lot_size of them);
 * sample_size <= 0 or lot_size <= 0 writes nothing. */
void tly_acceptance_sample(long lot_size, long sample_size, uint64_t seed, long *out);

#endif
