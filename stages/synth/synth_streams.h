/* synth_streams.h: how the synthetic cohort divides its Philox streams.
 *
 * Every draw of `onfh synth` comes from Philox keyed by (run.seed, PHILOX_SYNTH, index) with
 * index = patient << 32 | kind << 24 | visit << 16 | slice, so each patient's design, noise and
 * vessels are independent of every other patient and of the rank that generates them: the
 * same seed gives a byte-identical tree on 1 or N ranks. */
#ifndef ONFH_SYNTH_STREAMS_H
#define ONFH_SYNTH_STREAMS_H

#include <stdint.h>

enum {
    SYNTH_STREAM_DESIGN = 0, /* the patient's cohort design */
    SYNTH_STREAM_T1 = 1,     /* noise of coronal T1 slices */
    SYNTH_STREAM_TREE = 2,   /* the vessel tree and its growth */
    SYNTH_STREAM_MRA = 3,    /* noise of vessel series */
    SYNTH_STREAM_FAULT = 4,  /* fault injection */
    SYNTH_STREAM_FILE = 5,   /* encodings and file names */
};

/* The plan's stream: above any patient's (patients < 2^32 - 1). */
#define COHORT_PLAN_STREAM (UINT64_C(0xFFFFFFFF) << 32)

static inline uint64_t synth_stream(int patient, int kind, int visit, int slice)
{
    return (uint64_t)(uint32_t)patient << 32 | (uint64_t)(kind & 0xFF) << 24 |
           (uint64_t)(visit & 0xFF) << 16 | (uint64_t)(slice & 0xFFFF);
}

#endif
