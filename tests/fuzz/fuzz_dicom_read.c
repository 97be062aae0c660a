/* fuzz_dicom_read.c: libFuzzer target for the DICOM reader and decoders (`make fuzz`).
 *
 * Every input is parsed as a file (lib/dicom/dicom_read.c) and, when that succeeds, every frame
 * the header declares is decoded through the support matrix's decoder. Bad input must give an
 * error, never a crash, a hang, a leak or an out-of-bounds access (ASan + UBSan watch). Inputs
 * that found bugs are kept in tests/fixtures/dicom/fuzz/, which test_dicom_read replays. */
#include <stddef.h>
#include <stdint.h>

#include "lib/dicom/dicom.h"
#include "lib/util/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    DicomFile *f = NULL;
    Err e = {0};
    if (dicom_read_mem(data, size, "fuzz", NULL, &f, &e) == 0) {
        DicomImageInfo info;
        uint16_t *pixels = NULL;
        /* Bound the work per input: the fuzzer is after crashes, not big images. */
        if (dicom_image_info(f, &info, &e) == 0 &&
            (uint64_t)info.rows * info.columns * info.frames * info.samples_per_pixel <=
                (1u << 22) &&
            dicom_decode_pixels(f, &info, &pixels, &e) == 0)
            mem_free(pixels);
        dicom_file_free(f);
    }
    return 0;
}
