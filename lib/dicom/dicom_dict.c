/* dicom_dict.c: the small data dictionary of onfh and the VR table.
 *
 * The dictionary holds the attributes onfh writes and reads, not all of PS3.6: it lets setters
 * refuse a wrong VR (Rows as UL instead of US is a silent disaster for every reader), gives
 * messages a keyword, and will give the reader the VR of Implicit VR elements. Add an entry when
 * a new attribute is written or read; keep the table sorted by tag (a unit test checks).
 *
 * The VR table says, for each VR, how values are padded to even length (space for text, NUL for
 * UI, OB and UN: PS3.5 6.2), how many bytes form a word to swap in big endian, whether a
 * backslash separates values, and the maximum value length. */
#include <stdio.h>
#include <string.h>

#include "lib/dicom/dicom.h"
#include "lib/dicom/dicom_internal.h"

typedef struct DictEntry {
    uint32_t tag;
    uint16_t vr;
    uint16_t vr2; /* a second allowed VR, or 0 */
    const char *keyword;
} DictEntry;

#define T DICOM_TAG
static const DictEntry dict[] = {
    {T(0x0002, 0x0000), DICOM_VR_UL, 0, "FileMetaInformationGroupLength"},
    {T(0x0002, 0x0001), DICOM_VR_OB, 0, "FileMetaInformationVersion"},
    {T(0x0002, 0x0002), DICOM_VR_UI, 0, "MediaStorageSOPClassUID"},
    {T(0x0002, 0x0003), DICOM_VR_UI, 0, "MediaStorageSOPInstanceUID"},
    {T(0x0002, 0x0010), DICOM_VR_UI, 0, "TransferSyntaxUID"},
    {T(0x0002, 0x0012), DICOM_VR_UI, 0, "ImplementationClassUID"},
    {T(0x0002, 0x0013), DICOM_VR_SH, 0, "ImplementationVersionName"},
    {T(0x0002, 0x0016), DICOM_VR_AE, 0, "SourceApplicationEntityTitle"},
    {T(0x0008, 0x0005), DICOM_VR_CS, 0, "SpecificCharacterSet"},
    {T(0x0008, 0x0008), DICOM_VR_CS, 0, "ImageType"},
    {T(0x0008, 0x0012), DICOM_VR_DA, 0, "InstanceCreationDate"},
    {T(0x0008, 0x0013), DICOM_VR_TM, 0, "InstanceCreationTime"},
    {T(0x0008, 0x0016), DICOM_VR_UI, 0, "SOPClassUID"},
    {T(0x0008, 0x0018), DICOM_VR_UI, 0, "SOPInstanceUID"},
    {T(0x0008, 0x0020), DICOM_VR_DA, 0, "StudyDate"},
    {T(0x0008, 0x0021), DICOM_VR_DA, 0, "SeriesDate"},
    {T(0x0008, 0x0022), DICOM_VR_DA, 0, "AcquisitionDate"},
    {T(0x0008, 0x0023), DICOM_VR_DA, 0, "ContentDate"},
    {T(0x0008, 0x002A), DICOM_VR_DT, 0, "AcquisitionDateTime"},
    {T(0x0008, 0x0030), DICOM_VR_TM, 0, "StudyTime"},
    {T(0x0008, 0x0031), DICOM_VR_TM, 0, "SeriesTime"},
    {T(0x0008, 0x0032), DICOM_VR_TM, 0, "AcquisitionTime"},
    {T(0x0008, 0x0033), DICOM_VR_TM, 0, "ContentTime"},
    {T(0x0008, 0x0050), DICOM_VR_SH, 0, "AccessionNumber"},
    {T(0x0008, 0x0060), DICOM_VR_CS, 0, "Modality"},
    {T(0x0008, 0x0070), DICOM_VR_LO, 0, "Manufacturer"},
    {T(0x0008, 0x0080), DICOM_VR_LO, 0, "InstitutionName"},
    {T(0x0008, 0x0090), DICOM_VR_PN, 0, "ReferringPhysicianName"},
    {T(0x0008, 0x0100), DICOM_VR_SH, 0, "CodeValue"},
    {T(0x0008, 0x0102), DICOM_VR_SH, 0, "CodingSchemeDesignator"},
    {T(0x0008, 0x0104), DICOM_VR_LO, 0, "CodeMeaning"},
    {T(0x0008, 0x1030), DICOM_VR_LO, 0, "StudyDescription"},
    {T(0x0008, 0x1032), DICOM_VR_SQ, 0, "ProcedureCodeSequence"},
    {T(0x0008, 0x103E), DICOM_VR_LO, 0, "SeriesDescription"},
    {T(0x0008, 0x1090), DICOM_VR_LO, 0, "ManufacturerModelName"},
    {T(0x0008, 0x1110), DICOM_VR_SQ, 0, "ReferencedStudySequence"},
    {T(0x0008, 0x1140), DICOM_VR_SQ, 0, "ReferencedImageSequence"},
    {T(0x0008, 0x1150), DICOM_VR_UI, 0, "ReferencedSOPClassUID"},
    {T(0x0008, 0x1155), DICOM_VR_UI, 0, "ReferencedSOPInstanceUID"},
    {T(0x0010, 0x0010), DICOM_VR_PN, 0, "PatientName"},
    {T(0x0010, 0x0020), DICOM_VR_LO, 0, "PatientID"},
    {T(0x0010, 0x0030), DICOM_VR_DA, 0, "PatientBirthDate"},
    {T(0x0010, 0x0040), DICOM_VR_CS, 0, "PatientSex"},
    {T(0x0010, 0x1010), DICOM_VR_AS, 0, "PatientAge"},
    {T(0x0018, 0x0015), DICOM_VR_CS, 0, "BodyPartExamined"},
    {T(0x0018, 0x0020), DICOM_VR_CS, 0, "ScanningSequence"},
    {T(0x0018, 0x0021), DICOM_VR_CS, 0, "SequenceVariant"},
    {T(0x0018, 0x0022), DICOM_VR_CS, 0, "ScanOptions"},
    {T(0x0018, 0x0023), DICOM_VR_CS, 0, "MRAcquisitionType"},
    {T(0x0018, 0x0050), DICOM_VR_DS, 0, "SliceThickness"},
    {T(0x0018, 0x0080), DICOM_VR_DS, 0, "RepetitionTime"},
    {T(0x0018, 0x0081), DICOM_VR_DS, 0, "EchoTime"},
    {T(0x0018, 0x0082), DICOM_VR_DS, 0, "InversionTime"},
    {T(0x0018, 0x0083), DICOM_VR_DS, 0, "NumberOfAverages"},
    {T(0x0018, 0x0084), DICOM_VR_DS, 0, "ImagingFrequency"},
    {T(0x0018, 0x0087), DICOM_VR_DS, 0, "MagneticFieldStrength"},
    {T(0x0018, 0x0088), DICOM_VR_DS, 0, "SpacingBetweenSlices"},
    {T(0x0018, 0x0091), DICOM_VR_IS, 0, "EchoTrainLength"},
    {T(0x0018, 0x1030), DICOM_VR_LO, 0, "ProtocolName"},
    {T(0x0018, 0x1314), DICOM_VR_DS, 0, "FlipAngle"},
    {T(0x0018, 0x5100), DICOM_VR_CS, 0, "PatientPosition"},
    {T(0x0020, 0x000D), DICOM_VR_UI, 0, "StudyInstanceUID"},
    {T(0x0020, 0x000E), DICOM_VR_UI, 0, "SeriesInstanceUID"},
    {T(0x0020, 0x0010), DICOM_VR_SH, 0, "StudyID"},
    {T(0x0020, 0x0011), DICOM_VR_IS, 0, "SeriesNumber"},
    {T(0x0020, 0x0012), DICOM_VR_IS, 0, "AcquisitionNumber"},
    {T(0x0020, 0x0013), DICOM_VR_IS, 0, "InstanceNumber"},
    {T(0x0020, 0x0032), DICOM_VR_DS, 0, "ImagePositionPatient"},
    {T(0x0020, 0x0037), DICOM_VR_DS, 0, "ImageOrientationPatient"},
    {T(0x0020, 0x0052), DICOM_VR_UI, 0, "FrameOfReferenceUID"},
    {T(0x0020, 0x0060), DICOM_VR_CS, 0, "Laterality"},
    {T(0x0020, 0x1040), DICOM_VR_LO, 0, "PositionReferenceIndicator"},
    {T(0x0020, 0x1041), DICOM_VR_DS, 0, "SliceLocation"},
    {T(0x0028, 0x0002), DICOM_VR_US, 0, "SamplesPerPixel"},
    {T(0x0028, 0x0004), DICOM_VR_CS, 0, "PhotometricInterpretation"},
    {T(0x0028, 0x0006), DICOM_VR_US, 0, "PlanarConfiguration"},
    {T(0x0028, 0x0008), DICOM_VR_IS, 0, "NumberOfFrames"},
    {T(0x0028, 0x0010), DICOM_VR_US, 0, "Rows"},
    {T(0x0028, 0x0011), DICOM_VR_US, 0, "Columns"},
    {T(0x0028, 0x0030), DICOM_VR_DS, 0, "PixelSpacing"},
    {T(0x0028, 0x0100), DICOM_VR_US, 0, "BitsAllocated"},
    {T(0x0028, 0x0101), DICOM_VR_US, 0, "BitsStored"},
    {T(0x0028, 0x0102), DICOM_VR_US, 0, "HighBit"},
    {T(0x0028, 0x0103), DICOM_VR_US, 0, "PixelRepresentation"},
    {T(0x0028, 0x1050), DICOM_VR_DS, 0, "WindowCenter"},
    {T(0x0028, 0x1051), DICOM_VR_DS, 0, "WindowWidth"},
    {T(0x0028, 0x1052), DICOM_VR_DS, 0, "RescaleIntercept"},
    {T(0x0028, 0x1053), DICOM_VR_DS, 0, "RescaleSlope"},
    {T(0x0028, 0x1054), DICOM_VR_LO, 0, "RescaleType"},
    {T(0x0040, 0x0008), DICOM_VR_SQ, 0, "ScheduledProtocolCodeSequence"},
    {T(0x0040, 0x0009), DICOM_VR_SH, 0, "ScheduledProcedureStepID"},
    {T(0x0040, 0x0275), DICOM_VR_SQ, 0, "RequestAttributesSequence"},
    {T(0x0040, 0x1001), DICOM_VR_SH, 0, "RequestedProcedureID"},
    {T(0x7FE0, 0x0010), DICOM_VR_OW, DICOM_VR_OB, "PixelData"},
};
#undef T

static const DictEntry *dict_find(uint32_t tag)
{
    size_t lo = 0;
    size_t hi = sizeof dict / sizeof dict[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (dict[mid].tag == tag)
            return &dict[mid];
        if (dict[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *dicom_tag_keyword(uint32_t tag)
{
    const DictEntry *d = dict_find(tag);
    return d ? d->keyword : "";
}

uint16_t dicom_dict_vr(uint32_t tag)
{
    const DictEntry *d = dict_find(tag);
    return d ? d->vr : 0;
}

int dicom_dict_vr_allowed(uint32_t tag, uint16_t vr)
{
    const DictEntry *d = dict_find(tag);
    return !d || d->vr == vr || (d->vr2 && d->vr2 == vr);
}

int dicom__dict_unsorted(void)
{
    int bad = 0;
    for (size_t i = 1; i < sizeof dict / sizeof dict[0]; i++)
        bad += dict[i - 1].tag >= dict[i].tag;
    return bad;
}

DicomTagLabel dicom__tag_label(uint32_t tag)
{
    DicomTagLabel l;
    const char *kw = dicom_tag_keyword(tag);
    snprintf(l.s, sizeof l.s, "(%04X,%04X)%s%s", DICOM_GROUP(tag), DICOM_ELEMENT(tag),
             *kw ? " " : "", kw);
    return l;
}

// ---------------------------------------------------------------------------------------------
// VRs

/* kind, unit, swap, multi, pad, max_len. Text maxima are PS3.5 table 6.2-1's, in characters;
 * the "unlimited" VRs are bounded only by the 32-bit length. */
#define TEXT(v, multi, pad, max)                                                                   \
    {                                                                                              \
        DICOM_VR_##v, DICOM_VR_KIND_TEXT, 1, 1, multi, pad, max                                    \
    }
#define BIN(v, unit, swap, pad)                                                                    \
    {                                                                                              \
        DICOM_VR_##v, DICOM_VR_KIND_BINARY, unit, swap, 0, pad, 0                                  \
    }
static const DicomVrInfo vr_table[] = {
    TEXT(AE, 1, ' ', 16),  TEXT(AS, 1, ' ', 4),
    BIN(AT, 4, 2, 0),      TEXT(CS, 1, ' ', 16),
    TEXT(DA, 1, ' ', 8),   TEXT(DS, 1, ' ', 16),
    TEXT(DT, 1, ' ', 26),  BIN(FD, 8, 8, 0),
    BIN(FL, 4, 4, 0),      TEXT(IS, 1, ' ', 12),
    TEXT(LO, 1, ' ', 64),  TEXT(LT, 0, ' ', 10240),
    BIN(OB, 1, 1, 0),      BIN(OD, 8, 8, 0),
    BIN(OF, 4, 4, 0),      BIN(OL, 4, 4, 0),
    BIN(OV, 8, 8, 0),      BIN(OW, 2, 2, 0),
    TEXT(PN, 1, ' ', 64),  TEXT(SH, 1, ' ', 16),
    BIN(SL, 4, 4, 0),      TEXT(ST, 0, ' ', 1024),
    BIN(SS, 2, 2, 0),      BIN(SV, 8, 8, 0),
    TEXT(TM, 1, ' ', 14),  TEXT(UC, 1, ' ', 0),
    TEXT(UI, 1, '\0', 64), BIN(UL, 4, 4, 0),
    BIN(UN, 1, 1, 0),      TEXT(UR, 0, ' ', 0),
    BIN(US, 2, 2, 0),      TEXT(UT, 0, ' ', 0),
    BIN(UV, 8, 8, 0),      {DICOM_VR_SQ, DICOM_VR_KIND_SEQUENCE, 1, 1, 0, 0, 0},
};
#undef TEXT
#undef BIN

const DicomVrInfo *dicom__vr_info(uint16_t vr)
{
    for (size_t i = 0; i < sizeof vr_table / sizeof vr_table[0]; i++)
        if (vr_table[i].vr == vr)
            return &vr_table[i];
    return NULL;
}

void dicom_vr_str(uint16_t vr, char out[3])
{
    char a = (char)(vr >> 8);
    char b = (char)(vr & 0xFF);
    out[0] = a >= 'A' && a <= 'Z' ? a : '?';
    out[1] = b >= 'A' && b <= 'Z' ? b : '?';
    out[2] = '\0';
}

int dicom_vr_long_length(uint16_t vr)
{
    switch (vr) {
    case DICOM_VR_OB:
    case DICOM_VR_OD:
    case DICOM_VR_OF:
    case DICOM_VR_OL:
    case DICOM_VR_OV:
    case DICOM_VR_OW:
    case DICOM_VR_SQ:
    case DICOM_VR_SV:
    case DICOM_VR_UC:
    case DICOM_VR_UN:
    case DICOM_VR_UR:
    case DICOM_VR_UT:
    case DICOM_VR_UV: return 1;
    }
    return 0;
}
