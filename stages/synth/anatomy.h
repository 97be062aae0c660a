/* anatomy.h: a phantom of coronal T1-weighted hip MRI with ONFH lesions, and its rendering.
 *
 * Geometry is in patient coordinates (DICOM LPS, millimetres): +x towards the patient's left,
 * +y posterior, +z head. Coronal slices are planes of constant y; a slice's pixel (r, c) sits at
 * position + c * spacing[1] * row_dir + r * spacing[0] * col_dir, with row_dir = (1, 0, 0) and
 * col_dir = (0, 0, -1) (DICOM ImageOrientationPatient 1\0\0\0\0\-1).
 *
 * The phantom is a set of solids given by signed distance functions: skin and subcutaneous fat,
 * muscle, the pelvis (iliac wings, acetabular roofs around the heads), the bladder, and per hip a
 * femur (head sphere, neck, greater trochanter, shaft), each bone a cortical shell around fatty
 * marrow. An ONFH lesion is an ellipsoid inside the femoral head, bounded by a low-signal band;
 * subchondral collapse flattens the head's superior contour by collapse_mm. The truth a test
 * or the cohort needs (does this slice show a lesion, the lesion mask) comes from the same
 * functions that paint the image. */
#ifndef ONFH_SYNTH_ANATOMY_H
#define ONFH_SYNTH_ANATOMY_H

#include <stdint.h>

#include "lib/util/philox.h"

typedef struct SynthLesion {
    int present;
    double center[3];   /* mm, inside the femoral head */
    double radii[3];    /* ellipsoid semi-axes along x, y, z, mm */
    double band_mm;     /* thickness of the low-signal band around the necrotic segment */
    double interior;    /* T1 signal of the necrotic segment relative to normal marrow (0.3..1) */
    double collapse_mm; /* subchondral collapse: depth the head's superior contour is flattened */
} SynthLesion;

typedef struct SynthHip {
    double head_center[3]; /* mm */
    double head_radius;    /* mm, 20..27 */
    double neck_angle_deg; /* neck-shaft angle, 120..140 */
    double neck_radius;    /* mm */
    double cortex_mm;      /* cortical thickness */
    SynthLesion lesion;
    double anteversion_deg; /* femoral neck anteversion: the head lies anterior of the shaft */
} SynthHip;

typedef struct SynthAnatomy {
    SynthHip hip[2];        /* 0: patient's right (x < 0), 1: left (x > 0) */
    double body_half_width; /* mm, half the body width at the hips */
    double body_half_depth; /* mm, half the antero-posterior depth */
    double fat_mm;          /* subcutaneous fat thickness */
    double pelvis_tilt_deg; /* small rotation about y */
    double bladder[3];      /* bladder semi-axes x, y, z in mm (its filling; 0: empty). A
                               cohort may change it from visit to visit. */
    uint64_t detail_seed;   /* bowel loops: a Philox key, so the same anatomy paints the same */
    double lesion_contrast; /* 0..1: how far lesion and band signals stand from marrow; 1 (what
                               anatomy_draw sets) is the textbook appearance, smaller is harder */
} SynthAnatomy;

/* T1 signal of the tissues relative to fat (1.0), before the scanner's scale. */
typedef enum SynthTissue {
    TISSUE_AIR,
    TISSUE_FAT,
    TISSUE_MUSCLE,
    TISSUE_CORTEX,
    TISSUE_MARROW,
    TISSUE_CARTILAGE,
    TISSUE_FLUID, /* bladder, joint fluid */
    TISSUE_LESION,
    TISSUE_BAND,
    TISSUE_COUNT
} SynthTissue;

typedef struct SynthScanner {
    double snr;            /* marrow signal over the noise sigma of the Rician noise */
    double scale;          /* stored value of fat signal (site-specific), e.g. 1800..3000 */
    double bias_amplitude; /* smooth multiplicative bias field: 1 +- this at most */
    double motion_mm;      /* SD of the per-slice in-plane shift */
    int supersample;       /* partial volume: samples per pixel side and through the slice */
} SynthScanner;

typedef struct SynthSlice {
    int rows;
    int columns;
    double spacing[2];  /* mm between rows, between columns */
    double position[3]; /* ImagePositionPatient: centre of pixel (0, 0) */
    double thickness;   /* mm, the through-plane extent integrated over */
} SynthSlice;

/* Slices of one series (one stack) share a bias field: it is drawn from noise_index with these
 * low bits cleared, so give the slices of a series noise indices (series << 16) | slice, as
 * synth_stream does. */
#define ANATOMY_STACK_BITS 16

/* Draws a plausible individual anatomy (both hips normal) from rng. */
void anatomy_draw(SynthAnatomy *a, Philox *rng);

/* A coronal slice at y = y_mm covering both hips: square pixels, the field of view 320..400 mm
 * wide (the body's width plus a margin of air), centred on the midline and 10 mm below the
 * femoral head centres. */
void anatomy_default_slice(const SynthAnatomy *a, int rows, int columns, double y_mm,
                           double thickness_mm, SynthSlice *s);

/* The tissue at a point (mm). Bowel wall is reported as muscle, vessels (flow voids) as fluid.
 * Each thread keeps the phantom of the last anatomy it was asked about, so probing many points
 * of one anatomy is cheap (about a microsecond each); a different anatomy rebuilds it (~50 us). */
SynthTissue anatomy_tissue_at(const SynthAnatomy *a, const double p[3]);

/* The T1 signal at a point relative to fat, before the scanner: what a noise-free, bias-free,
 * motion-free render with supersample 1 stores, divided by the scanner's scale. */
double anatomy_signal_at(const SynthAnatomy *a, const double p[3]);

/* The nominal T1 signal of a tissue relative to fat (TISSUE_LESION: that of normal marrow; a
 * lesion's own is its `interior` times this). Femoral marrow is 0.88; pelvic marrow, with more
 * red marrow, is painted at 0.82, and bowel wall at 0.42, vessels at 0.06. */
double anatomy_tissue_signal(SynthTissue t);

/* Renders one slice into pixels (rows x columns, row by row, values 0..4095). lesion_mask, when
 * not NULL, receives 1 where the pixel centre lies in a lesion (necrotic segment or band) of the
 * slice's centre plane, else 0. Noise, bias and motion are drawn from a Philox stream keyed by
 * (seed, PHILOX_SYNTH, noise_index): the same arguments give the same bytes.
 *
 * Scanner effects, in the order they act: the patient moves by a per-slice in-plane shift
 * (normal, SD motion_mm), so the anatomy is sampled at pixel - shift, and the lesion mask moves
 * with it (it marks where the lesion is in the image); each pixel averages supersample^2 samples
 * in plane times supersample planes through the thickness (partial volume); the mean signal is
 * multiplied by a smooth bias field of world position, 1 + bias_amplitude * g with |g| <= 1, whose
 * coefficients come from (seed, noise_index with its ANATOMY_STACK_BITS low bits cleared) so the
 * slices of a stack agree; then by scale; then Rician noise, sqrt((s + n1)^2 + n2^2) with sigma =
 * marrow signal * scale / snr (snr <= 0: no noise); then rounding and clamping to 0..4095.
 * The mask is empty exactly when anatomy_plane_cuts_lesion is 0 for both hips: a plane that
 * cuts a lesion in a sliver too thin to hold a pixel centre marks the pixel nearest to it (as
 * long as that pixel is in the image). */
void anatomy_render(const SynthAnatomy *a, const SynthSlice *s, const SynthScanner *sc,
                    uint64_t seed, uint64_t noise_index, uint16_t *pixels, uint8_t *lesion_mask);

/* 1 when the plane y = y_mm cuts the lesion of hip h (inside the femoral head). This is the
 * definition of a slice "showing a lesion" used for labels. */
int anatomy_plane_cuts_lesion(const SynthAnatomy *a, int h, double y_mm);

/* 1 when the plane y = y_mm cuts the femoral head of hip h. */
int anatomy_plane_cuts_head(const SynthAnatomy *a, int h, double y_mm);

#endif
