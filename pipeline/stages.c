/* stages.c: the stage table. A stage is added here when it really works (no placeholders):
 * its entry function lives in stages/<name>/, and its keys in pipeline/config_keys.c. */
#include "pipeline/stages.h"

#include "stages/synth/synth.h"

const Stage onfh_stages[] = {
    {"synth", "write the synthetic ONFH cohort as DICOM, with clinical data, labels and truth",
     synth_run, "--preview", "synth.preview=true",
     "also write synth_preview.png, a montage of slices and vessels to judge realism"},
    {.name = NULL}, /* sentinel: C has no empty arrays */
};

const int onfh_n_stages = (int)(sizeof onfh_stages / sizeof onfh_stages[0]) - 1;
