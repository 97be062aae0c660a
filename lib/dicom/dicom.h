/* dicom.h: DICOM datasets in memory, and writing them as DICOM Part 10 files.
 *
 * The data model is shared by the writer (this issue) and the reader (a later one):
 *
 *   DicomDataset   a sorted array of DicomElement, one per tag (no duplicates).
 *   DicomElement   tag, VR, and one of three payloads:
 *                    - value bytes (everything but SQ and encapsulated pixel data),
 *                    - items (SQ: an array of item datasets, each a DicomDataset),
 *                    - fragments (encapsulated pixel data: fragments[0] is the Basic Offset
 *                      Table, then the compressed fragments, as they sit in the file).
 *
 * Value bytes are kept in one canonical form whatever the transfer syntax: little endian, as
 * Explicit VR Little Endian would carry them, without the trailing pad byte the encoder adds
 * (a reader that keeps the pad byte is fine too: an even value is written as is). So US 512 is
 * the bytes 00 02, and "MR" is the two bytes 'M' 'R'. The byte order of a transfer syntax is an
 * encoding matter only: the writer swaps on the way out, the reader swaps on the way in.
 *
 * The writer produces, on request (DicomWriteOptions):
 *   - the transfer syntaxes Implicit VR LE, Explicit VR LE, Explicit VR BE (retired, still met
 *     in the wild), Deflated Explicit VR LE, and RLE Lossless (pixel data encapsulated, one
 *     fragment per frame, PS3.5 Annex G);
 *   - sequences and items of defined length, or of undefined length with delimitation items;
 *   - three file forms: a standard Part 10 file (128-byte preamble, "DICM", file meta group), the
 *     meta group and data set without preamble or "DICM", and the bare data set (see
 *     DicomFileForm for why the two non-standard forms exist).
 *
 * Setters validate what they store against the VR (characters, value lengths, value counts)
 * and, for the attributes in the small dictionary (dicom_dict.c), the VR itself, so a bad value
 * is refused where it is made, with the tag named, rather than written into thousands of files.
 *
 * UIDs: dicom_uid_from_seed makes "2.25.<decimal of a 128-bit integer>" (PS3.5 B.2, ITU-T X.667)
 * from SHA-256 of a caller-given string, so a seed gives the same UIDs byte for byte.
 *
 * All allocation goes through lib/util/mem.h; every function that can fail returns 0 or a
 * negative ERR_* code and fills the Err with a message naming the tag (and file, where there is
 * one). */
#ifndef ONFH_DICOM_H
#define ONFH_DICOM_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/err.h"

// ---------------------------------------------------------------------------------------------
// Tags and VRs

#define DICOM_TAG(group, element) ((uint32_t)(((uint32_t)(group) << 16) | (uint32_t)(element)))
#define DICOM_GROUP(tag)          ((uint16_t)((tag) >> 16))
#define DICOM_ELEMENT(tag)        ((uint16_t)((tag)&0xFFFFu))

/* A VR is its two ASCII characters packed big-endian-wise into 16 bits ('U' 'S' -> 0x5553), so
 * an unknown VR read from a file is still representable and prints back as itself. */
#define DICOM_VR(a, b) ((uint16_t)(((unsigned)(a) << 8) | (unsigned)(b)))

enum {
    DICOM_VR_AE = DICOM_VR('A', 'E'),
    DICOM_VR_AS = DICOM_VR('A', 'S'),
    DICOM_VR_AT = DICOM_VR('A', 'T'),
    DICOM_VR_CS = DICOM_VR('C', 'S'),
    DICOM_VR_DA = DICOM_VR('D', 'A'),
    DICOM_VR_DS = DICOM_VR('D', 'S'),
    DICOM_VR_DT = DICOM_VR('D', 'T'),
    DICOM_VR_FD = DICOM_VR('F', 'D'),
    DICOM_VR_FL = DICOM_VR('F', 'L'),
    DICOM_VR_IS = DICOM_VR('I', 'S'),
    DICOM_VR_LO = DICOM_VR('L', 'O'),
    DICOM_VR_LT = DICOM_VR('L', 'T'),
    DICOM_VR_OB = DICOM_VR('O', 'B'),
    DICOM_VR_OD = DICOM_VR('O', 'D'),
    DICOM_VR_OF = DICOM_VR('O', 'F'),
    DICOM_VR_OL = DICOM_VR('O', 'L'),
    DICOM_VR_OV = DICOM_VR('O', 'V'),
    DICOM_VR_OW = DICOM_VR('O', 'W'),
    DICOM_VR_PN = DICOM_VR('P', 'N'),
    DICOM_VR_SH = DICOM_VR('S', 'H'),
    DICOM_VR_SL = DICOM_VR('S', 'L'),
    DICOM_VR_SQ = DICOM_VR('S', 'Q'),
    DICOM_VR_SS = DICOM_VR('S', 'S'),
    DICOM_VR_ST = DICOM_VR('S', 'T'),
    DICOM_VR_SV = DICOM_VR('S', 'V'),
    DICOM_VR_TM = DICOM_VR('T', 'M'),
    DICOM_VR_UC = DICOM_VR('U', 'C'),
    DICOM_VR_UI = DICOM_VR('U', 'I'),
    DICOM_VR_UL = DICOM_VR('U', 'L'),
    DICOM_VR_UN = DICOM_VR('U', 'N'),
    DICOM_VR_UR = DICOM_VR('U', 'R'),
    DICOM_VR_US = DICOM_VR('U', 'S'),
    DICOM_VR_UT = DICOM_VR('U', 'T'),
    DICOM_VR_UV = DICOM_VR('U', 'V'),
};

/* Tags onfh writes or reads by name. Keywords as in PS3.6. */
enum {
    DICOM_TAG_SPECIFIC_CHARACTER_SET = DICOM_TAG(0x0008, 0x0005),
    DICOM_TAG_IMAGE_TYPE = DICOM_TAG(0x0008, 0x0008),
    DICOM_TAG_SOP_CLASS_UID = DICOM_TAG(0x0008, 0x0016),
    DICOM_TAG_SOP_INSTANCE_UID = DICOM_TAG(0x0008, 0x0018),
    DICOM_TAG_STUDY_DATE = DICOM_TAG(0x0008, 0x0020),
    DICOM_TAG_SERIES_DATE = DICOM_TAG(0x0008, 0x0021),
    DICOM_TAG_ACQUISITION_DATE = DICOM_TAG(0x0008, 0x0022),
    DICOM_TAG_CONTENT_DATE = DICOM_TAG(0x0008, 0x0023),
    DICOM_TAG_STUDY_TIME = DICOM_TAG(0x0008, 0x0030),
    DICOM_TAG_SERIES_TIME = DICOM_TAG(0x0008, 0x0031),
    DICOM_TAG_ACQUISITION_TIME = DICOM_TAG(0x0008, 0x0032),
    DICOM_TAG_CONTENT_TIME = DICOM_TAG(0x0008, 0x0033),
    DICOM_TAG_ACCESSION_NUMBER = DICOM_TAG(0x0008, 0x0050),
    DICOM_TAG_MODALITY = DICOM_TAG(0x0008, 0x0060),
    DICOM_TAG_MANUFACTURER = DICOM_TAG(0x0008, 0x0070),
    DICOM_TAG_REFERRING_PHYSICIAN_NAME = DICOM_TAG(0x0008, 0x0090),
    DICOM_TAG_STUDY_DESCRIPTION = DICOM_TAG(0x0008, 0x1030),
    DICOM_TAG_SERIES_DESCRIPTION = DICOM_TAG(0x0008, 0x103E),
    DICOM_TAG_MANUFACTURER_MODEL_NAME = DICOM_TAG(0x0008, 0x1090),
    DICOM_TAG_PATIENT_NAME = DICOM_TAG(0x0010, 0x0010),
    DICOM_TAG_PATIENT_ID = DICOM_TAG(0x0010, 0x0020),
    DICOM_TAG_PATIENT_BIRTH_DATE = DICOM_TAG(0x0010, 0x0030),
    DICOM_TAG_PATIENT_SEX = DICOM_TAG(0x0010, 0x0040),
    DICOM_TAG_SCANNING_SEQUENCE = DICOM_TAG(0x0018, 0x0020),
    DICOM_TAG_SEQUENCE_VARIANT = DICOM_TAG(0x0018, 0x0021),
    DICOM_TAG_SCAN_OPTIONS = DICOM_TAG(0x0018, 0x0022),
    DICOM_TAG_MR_ACQUISITION_TYPE = DICOM_TAG(0x0018, 0x0023),
    DICOM_TAG_SLICE_THICKNESS = DICOM_TAG(0x0018, 0x0050),
    DICOM_TAG_REPETITION_TIME = DICOM_TAG(0x0018, 0x0080),
    DICOM_TAG_ECHO_TIME = DICOM_TAG(0x0018, 0x0081),
    DICOM_TAG_NUMBER_OF_AVERAGES = DICOM_TAG(0x0018, 0x0083),
    DICOM_TAG_IMAGING_FREQUENCY = DICOM_TAG(0x0018, 0x0084),
    DICOM_TAG_MAGNETIC_FIELD_STRENGTH = DICOM_TAG(0x0018, 0x0087),
    DICOM_TAG_SPACING_BETWEEN_SLICES = DICOM_TAG(0x0018, 0x0088),
    DICOM_TAG_ECHO_TRAIN_LENGTH = DICOM_TAG(0x0018, 0x0091),
    DICOM_TAG_PROTOCOL_NAME = DICOM_TAG(0x0018, 0x1030),
    DICOM_TAG_FLIP_ANGLE = DICOM_TAG(0x0018, 0x1314),
    DICOM_TAG_PATIENT_POSITION = DICOM_TAG(0x0018, 0x5100),
    DICOM_TAG_BODY_PART_EXAMINED = DICOM_TAG(0x0018, 0x0015),
    DICOM_TAG_LATERALITY = DICOM_TAG(0x0020, 0x0060),
    DICOM_TAG_STUDY_INSTANCE_UID = DICOM_TAG(0x0020, 0x000D),
    DICOM_TAG_SERIES_INSTANCE_UID = DICOM_TAG(0x0020, 0x000E),
    DICOM_TAG_STUDY_ID = DICOM_TAG(0x0020, 0x0010),
    DICOM_TAG_SERIES_NUMBER = DICOM_TAG(0x0020, 0x0011),
    DICOM_TAG_INSTANCE_NUMBER = DICOM_TAG(0x0020, 0x0013),
    DICOM_TAG_IMAGE_POSITION_PATIENT = DICOM_TAG(0x0020, 0x0032),
    DICOM_TAG_IMAGE_ORIENTATION_PATIENT = DICOM_TAG(0x0020, 0x0037),
    DICOM_TAG_FRAME_OF_REFERENCE_UID = DICOM_TAG(0x0020, 0x0052),
    DICOM_TAG_POSITION_REFERENCE_INDICATOR = DICOM_TAG(0x0020, 0x1040),
    DICOM_TAG_SLICE_LOCATION = DICOM_TAG(0x0020, 0x1041),
    DICOM_TAG_SAMPLES_PER_PIXEL = DICOM_TAG(0x0028, 0x0002),
    DICOM_TAG_PHOTOMETRIC_INTERPRETATION = DICOM_TAG(0x0028, 0x0004),
    DICOM_TAG_PLANAR_CONFIGURATION = DICOM_TAG(0x0028, 0x0006),
    DICOM_TAG_NUMBER_OF_FRAMES = DICOM_TAG(0x0028, 0x0008),
    DICOM_TAG_ROWS = DICOM_TAG(0x0028, 0x0010),
    DICOM_TAG_COLUMNS = DICOM_TAG(0x0028, 0x0011),
    DICOM_TAG_PIXEL_SPACING = DICOM_TAG(0x0028, 0x0030),
    DICOM_TAG_BITS_ALLOCATED = DICOM_TAG(0x0028, 0x0100),
    DICOM_TAG_BITS_STORED = DICOM_TAG(0x0028, 0x0101),
    DICOM_TAG_HIGH_BIT = DICOM_TAG(0x0028, 0x0102),
    DICOM_TAG_PIXEL_REPRESENTATION = DICOM_TAG(0x0028, 0x0103),
    DICOM_TAG_WINDOW_CENTER = DICOM_TAG(0x0028, 0x1050),
    DICOM_TAG_WINDOW_WIDTH = DICOM_TAG(0x0028, 0x1051),
    DICOM_TAG_RESCALE_INTERCEPT = DICOM_TAG(0x0028, 0x1052),
    DICOM_TAG_RESCALE_SLOPE = DICOM_TAG(0x0028, 0x1053),
    DICOM_TAG_PIXEL_DATA = DICOM_TAG(0x7FE0, 0x0010),
    /* Items and delimiters: never dataset elements, only structure in the byte stream. */
    DICOM_TAG_ITEM = DICOM_TAG(0xFFFE, 0xE000),
    DICOM_TAG_ITEM_DELIMITATION = DICOM_TAG(0xFFFE, 0xE00D),
    DICOM_TAG_SEQUENCE_DELIMITATION = DICOM_TAG(0xFFFE, 0xE0DD),
};

/* The PS3.6 keyword of a tag in onfh's dictionary ("PatientID"), or "" when not there. */
const char *dicom_tag_keyword(uint32_t tag);
/* The VR the dictionary gives a tag (the first when it allows two, e.g. OW for PixelData), or 0
 * when the tag is not in it (private tags, rare attributes). The reader uses it for Implicit VR. */
uint16_t dicom_dict_vr(uint32_t tag);
/* 1 if the dictionary allows vr for tag, or does not know the tag. */
int dicom_dict_vr_allowed(uint32_t tag, uint16_t vr);
/* "US" from DICOM_VR_US; out must hold 3 bytes. Unprintable VR bytes print as '?'. */
void dicom_vr_str(uint16_t vr, char out[3]);
/* 1 for the VRs that take the 4-byte length form in Explicit VR (OB, OD, OF, OL, OV, OW, SQ, SV,
 * UC, UN, UR, UT, UV; PS3.5 7.1.2), 0 for those with a 2-byte length. */
int dicom_vr_long_length(uint16_t vr);

// ---------------------------------------------------------------------------------------------
// The in-memory dataset

typedef struct DicomDataset DicomDataset;

typedef struct DicomFragment {
    uint8_t *data; /* NULL when length is 0 */
    uint32_t length;
} DicomFragment;

typedef struct DicomElement {
    uint32_t tag;
    uint16_t vr;
    /* Reader: 1 when the file gave this SQ (or encapsulated element) an undefined length. The
     * writer ignores it; DicomWriteOptions decides. */
    uint8_t undefined_length;
    /* Reader: 1 when value points into the bytes given to dicom_read_mem (borrow_pixel_data)
     * and is not the element's to free. */
    uint8_t borrowed;
    uint8_t *value; /* canonical little-endian value bytes; NULL when length is 0 */
    uint32_t length;
    DicomDataset **items; /* SQ only: n_items item datasets, owned */
    uint32_t n_items;
    DicomFragment *fragments; /* encapsulated pixel data only; [0] is the Basic Offset Table */
    uint32_t n_fragments;
} DicomElement;

struct DicomDataset {
    DicomElement *elements; /* sorted by tag, tags unique */
    size_t count;
    size_t cap;
};

int dicom_dataset_new(DicomDataset **out, Err *e);
/* Frees the dataset, its values, items (recursively) and fragments. NULL is fine. */
void dicom_dataset_free(DicomDataset *ds);

/* The element with this tag, or NULL (binary search). */
const DicomElement *dicom_find(const DicomDataset *ds, uint32_t tag);
/* Removes the element with this tag if there is one. */
void dicom_remove(DicomDataset *ds, uint32_t tag);

/* Setters. Each replaces an element with the same tag. Tags of group 0000, 0002 (the file meta
 * group is written by dicom_write_*), FFFE, odd groups 0001-0007 and FFFF, group lengths
 * (gggg,0000), and private tags of a block with no private creator are refused. */

/* A string of a text VR (AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT), stored without
 * padding. For VRs that allow several values, s may hold them separated by backslashes; each
 * value is checked (character repertoire, maximum length, DA/TM/UI syntax). "" is an empty
 * (type 2) value. */
int dicom_set_str(DicomDataset *ds, uint32_t tag, uint16_t vr, const char *s, Err *e);
/* n values joined with backslashes; a value containing a backslash is refused. n = 0 stores an
 * empty value. */
int dicom_set_strs(DicomDataset *ds, uint32_t tag, uint16_t vr, const char *const *values, size_t n,
                   Err *e);
/* Decimal String: each value printed by %g at the highest precision (up to 16 significant
 * digits) whose text fits the 16 characters of a DS value; %g drops trailing zeros, so 0.5 is
 * "0.5" and -0.7071067811865476 is "-0.7071067811865". NaN and infinities are refused. At most
 * 16 values. */
int dicom_set_ds(DicomDataset *ds, uint32_t tag, const double *values, size_t n, Err *e);
/* Integer String: each value within the IS range (-2^31 .. 2^31-1). */
int dicom_set_is(DicomDataset *ds, uint32_t tag, const long *values, size_t n, Err *e);
/* Binary numbers, n values each. */
int dicom_set_us(DicomDataset *ds, uint32_t tag, const uint16_t *values, size_t n, Err *e);
int dicom_set_ss(DicomDataset *ds, uint32_t tag, const int16_t *values, size_t n, Err *e);
int dicom_set_ul(DicomDataset *ds, uint32_t tag, const uint32_t *values, size_t n, Err *e);
int dicom_set_fl(DicomDataset *ds, uint32_t tag, const float *values, size_t n, Err *e);
int dicom_set_fd(DicomDataset *ds, uint32_t tag, const double *values, size_t n, Err *e);
/* Raw value bytes of any non-SQ VR, already in canonical little-endian order; len must be a
 * multiple of the VR's unit (2 for US/SS/OW/AT, 4 for UL/SL/FL/OF/OL, 8 for FD/OD/SV/UV/OV).
 * Text VRs are not checked here: this is the escape hatch (and the reader's door). */
int dicom_set_bytes(DicomDataset *ds, uint32_t tag, uint16_t vr, const void *data, size_t len,
                    Err *e);
/* Native 16-bit Pixel Data (7FE0,0010) as OW: count samples (rows x columns x samples x frames).
 * The pixel module attributes (Rows, BitsAllocated 16, ...) are the caller's to set. */
int dicom_set_pixels16(DicomDataset *ds, const uint16_t *pixels, size_t count, Err *e);
/* Encapsulated pixel data (VR OB): frags[0] is the Basic Offset Table (may be empty), the rest
 * the fragments, each of even length. Written as is under RLE Lossless; refused by the writer
 * under a native transfer syntax. */
int dicom_set_encapsulated(DicomDataset *ds, uint32_t tag, const DicomFragment *frags, size_t n,
                           Err *e);
/* An SQ element with no items (replacing any element with this tag). */
int dicom_set_sequence(DicomDataset *ds, uint32_t tag, Err *e);
/* Appends an empty item to the sequence tag (created if absent) and returns it in *item; the
 * item belongs to ds. */
int dicom_add_item(DicomDataset *ds, uint32_t tag, DicomDataset **item, Err *e);

/* Private tags (PS3.5 7.8.1). Finds the block of group (odd, 0009..FFFD) reserved by creator, or
 * reserves the first free one by writing creator as LO at (group,00xx); returns in *tag the tag
 * (group, xx00 | element_offset) for element_offset in 0x00..0xFF. Example: the first call with
 * (0x0029, "ONFH SYNTH", 0x10) writes (0029,0010) "ONFH SYNTH" and returns (0029,1010). */
int dicom_private_tag(DicomDataset *ds, uint16_t group, const char *creator, uint8_t element_offset,
                      uint32_t *tag, Err *e);

// ---------------------------------------------------------------------------------------------
// UIDs

#define DICOM_UID_MAX 64
/* Root of every UID onfh makes: the ITU-T X.667 / ISO 9834-8 UUID arc (PS3.5 B.2). No
 * registration is needed, and uniqueness rests on the 122 random-looking bits of the UUID. */
#define DICOM_UID_ROOT "2.25"
/* onfh's Implementation Class UID (0002,0012) = dicom_uid_from_seed("onfh implementation class
 * uid"); a unit test checks the two agree. Implementation Version Name (0002,0013): names the
 * writer's encoding, not the package release; change it when the bytes written change. */
#define DICOM_IMPLEMENTATION_CLASS_UID "2.25.259052174030082935457724974407852256604"
#define DICOM_IMPLEMENTATION_VERSION   "ONFH_DICOM_1"

/* UID = "2.25." + the decimal of the 128-bit big-endian integer made from the first 16 bytes of
 * SHA-256(seed) with the RFC 9562 version-8 and variant bits set (a name-based UUID, as X.667
 * asks for the 2.25 arc). At most 44 characters; the same seed gives the same UID. */
void dicom_uid_from_seed(const char *seed, char uid[DICOM_UID_MAX + 1]);
/* 0 if uid is a valid UID (1-64 characters, digits and dots, no empty component, no leading zero
 * in a component of more than one digit), else ERR_FORMAT with the reason. e may be NULL. */
int dicom_uid_check(const char *uid, Err *e);

// ---------------------------------------------------------------------------------------------
// Writing

typedef enum DicomTransferSyntax {
    DICOM_TS_EXPLICIT_LE = 0, /* 1.2.840.10008.1.2.1 */
    DICOM_TS_IMPLICIT_LE,     /* 1.2.840.10008.1.2 */
    DICOM_TS_EXPLICIT_BE,     /* 1.2.840.10008.1.2.2 (retired) */
    DICOM_TS_DEFLATED_LE,     /* 1.2.840.10008.1.2.1.99 */
    DICOM_TS_RLE,             /* 1.2.840.10008.1.2.5 */
    DICOM_TS_COUNT
} DicomTransferSyntax;

const char *dicom_ts_uid(DicomTransferSyntax ts);
/* Short name for file names and logs: "explicit-le", "implicit-le", "explicit-be", "deflated",
 * "rle". */
const char *dicom_ts_name(DicomTransferSyntax ts);

typedef enum DicomFileForm {
    /* PS3.10 file: 128 zero bytes, "DICM", the file meta group (Explicit VR LE), the data set. */
    DICOM_FILE_PART10 = 0,
    /* The meta group and data set with no preamble and no "DICM": what some old tools wrote.
     * Not conformant; readers must sniff the leading (0002,0000) Explicit VR LE element. */
    DICOM_FILE_NO_PREAMBLE,
    /* The bare data set, no meta group (ACR-NEMA style, pydicom's no_meta.dcm): what "without
     * preamble" mostly means in the wild. Readers must guess the transfer syntax, so only the
     * three uncompressed ones are allowed. */
    DICOM_FILE_DATASET_ONLY,
} DicomFileForm;

typedef struct DicomWriteOptions {
    DicomTransferSyntax ts;
    DicomFileForm form;
    /* 1: every SQ and item gets undefined length and a delimitation item; 0: defined lengths.
     * Except, in Implicit VR, private sequences (and what they hold), which keep defined lengths
     * so that a reader without their dictionary need not guess they are sequences. */
    int undefined_length;
    /* NULL, or a TransferSyntaxUID to put in the file meta instead of ts's own while the data set
     * is still encoded as ts: how test data makes a file in a syntax a reader must refuse
     * (e.g. MPEG-2, 1.2.840.10008.1.2.4.100). Must be a valid UID. */
    const char *meta_ts_uid;
} DicomWriteOptions;

/* Encodes ds into a new buffer (*data, freed by the caller with mem_free). opt NULL means
 * Explicit VR LE, Part 10, defined lengths. The file meta takes MediaStorageSOPClassUID and
 * MediaStorageSOPInstanceUID from SOPClassUID (0008,0016) and SOPInstanceUID (0008,0018), which
 * must be present unless form is DICOM_FILE_DATASET_ONLY. Under RLE, native Pixel Data is
 * encoded per frame from Rows, Columns, SamplesPerPixel, BitsAllocated, PlanarConfiguration and
 * NumberOfFrames. */
int dicom_write_mem(const DicomDataset *ds, const DicomWriteOptions *opt, uint8_t **data,
                    size_t *len, Err *e);
/* dicom_write_mem, then an atomic write to path (temp name + rename). */
int dicom_write_file(const char *path, const DicomDataset *ds, const DicomWriteOptions *opt,
                     Err *e);

// ---------------------------------------------------------------------------------------------
// RLE Lossless (PS3.5 Annex G)

/* Encodes one frame: rows x columns pixels of samples samples of bytes_per_sample bytes, little
 * endian, interleaved (planar 0: R G B R G B ...) or by plane (planar 1: R R ... G G ... B B).
 * Output: the 64-byte RLE header (segment count, 15 offsets) and one segment per sample byte,
 * most significant byte first, each row encoded on its own, each segment padded to even length.
 * samples x bytes_per_sample must be 1..15. *out is freed with mem_free. */
int dicom_rle_encode_frame(const uint8_t *frame, uint32_t rows, uint32_t columns, unsigned samples,
                           unsigned bytes_per_sample, unsigned planar, uint8_t **out, size_t *len,
                           Err *e);

// ---------------------------------------------------------------------------------------------
// MR Image Storage

#define DICOM_SOP_CLASS_MR_IMAGE "1.2.840.10008.5.1.4.1.1.4"

/* Everything an MR Image Storage instance carries. dicom_mr_defaults fills the acquisition
 * fields with a plausible 3 T T1-weighted spin echo and the strings with ""; the caller sets
 * identity, UIDs, geometry and pixels. Strings are copied; NULL means "". */
typedef struct DicomMrImage {
    /* Patient (PS3.3 C.7.1.1) */
    const char *patient_name;       /* PN, e.g. "SYNTH^P0001" */
    const char *patient_id;         /* LO */
    const char *patient_birth_date; /* DA YYYYMMDD or "" */
    const char *patient_sex;        /* CS: M, F, O or "" */
    /* Study, series, equipment */
    const char *study_uid;  /* required */
    const char *series_uid; /* required */
    const char *sop_instance_uid;
    const char *frame_of_reference_uid;
    const char *study_date; /* DA; also SeriesDate and ContentDate */
    const char *study_time; /* TM; also SeriesTime and ContentTime */
    const char *acquisition_date;
    const char *acquisition_time;
    const char *study_id; /* SH */
    const char *accession_number;
    const char *study_description;
    const char *series_description;
    const char *protocol_name;
    const char *manufacturer;
    const char *manufacturer_model_name;
    const char *image_type;         /* CS, backslash separated; default "ORIGINAL\PRIMARY\OTHER" */
    const char *patient_position;   /* CS; default "HFS" */
    const char *body_part_examined; /* CS; default "HIP"; "" leaves it out */
    /* CS: R or L for one hip; "" (the default) when the series covers both, which the IOD
     * allows for a paired body part of unknown side (type 2C; dciodvfy warns, does not fail). */
    const char *laterality;
    long series_number;
    long instance_number;
    /* Image plane (C.7.6.2), millimetres, patient coordinates (LPS) */
    double image_position[3];    /* centre of the first transmitted pixel */
    double image_orientation[6]; /* row direction cosines, then column direction cosines */
    double pixel_spacing[2];     /* between rows (vertical), between columns (horizontal) */
    double slice_thickness;
    double spacing_between_slices;
    /* Pixels: MONOCHROME2, BitsAllocated 16, BitsStored 12, HighBit 11, unsigned */
    uint16_t rows;
    uint16_t columns;
    const uint16_t *pixels; /* rows x columns stored values, row by row, each <= 4095 */
    double rescale_slope;
    double rescale_intercept;
    double window_center;
    double window_width;
    /* MR acquisition (C.8.3.1) */
    const char *scanning_sequence;   /* CS: SE, IR, GR, EP, RM */
    const char *sequence_variant;    /* CS: SK, MTC, SS, TRSS, SP, MP, OSP, NONE */
    const char *scan_options;        /* CS, may be "" */
    const char *mr_acquisition_type; /* CS: 2D or 3D */
    double repetition_time_ms;
    double echo_time_ms;
    double inversion_time_ms; /* written when scanning_sequence includes IR */
    long echo_train_length;
    double magnetic_field_strength_t;
    double imaging_frequency_mhz;
    double flip_angle_deg;
    double number_of_averages;
} DicomMrImage;

void dicom_mr_defaults(DicomMrImage *p);
/* A new dataset holding a complete MR Image Storage instance (SOP class
 * 1.2.840.10008.5.1.4.1.1.4): the Patient, General Study, General Series, Frame of Reference,
 * General Equipment, General Acquisition, General Image, Image Plane, Image Pixel, MR Image,
 * VOI LUT and SOP Common modules, plus Rescale Slope/Intercept. Checks the parameters (UIDs,
 * a non-zero pixel spacing, unit orientation vectors, pixel values within BitsStored). */
int dicom_mr_image_new(const DicomMrImage *p, DicomDataset **out, Err *e);

// ---------------------------------------------------------------------------------------------
// Reading
//
// dicom_read_mem / dicom_read_file parse a file into a DicomFile: its file meta group and its
// data set, in the same structures the writer takes, values in the canonical little-endian form
// (big endian is swapped on the way in; the pad byte of an odd value is kept, as the file has
// it). Accepted: PS3.10 files (preamble + "DICM"), the meta group without preamble, and the
// bare data set (its syntax guessed among Implicit VR LE, Explicit VR LE and Explicit VR BE);
// Implicit and Explicit VR, little and big endian, Deflated Explicit VR LE; sequences and items
// of defined and undefined length, nested; UN (and, in Implicit VR, unknown tags) holding a
// sequence are parsed as sequences in Implicit VR LE when the bytes are items (PS3.5 6.2.2);
// encapsulated pixel data (fragments[0] is the Basic Offset Table, empty or not).
//
// Bad input gives ERR_FORMAT naming the file, the tag and the byte offset, and never reads out
// of bounds: every length is checked against what remains before it is used, nesting is
// limited to DICOM_MAX_DEPTH, items, fragments and sequences of odd length are refused (PS3.5
// 7.1.1; odd-length values are read as they are, as dcmtk and pydicom do, because real files
// have them), a deflated data set may not inflate beyond DICOM_MAX_INFLATED bytes, and a data
// set with hundreds of elements out of tag order is refused (reading it would take quadratic
// time). Codec streams are checked against the data set's image size before they are decoded.
//
// Pixels: dicom_decode_frame gives one frame as 16-bit samples (uint16; int16 bit patterns when
// PixelRepresentation is 1), interleaved when there are three samples per pixel, whatever the
// transfer syntax, through the decoder the support matrix names. Values are the stored values:
// bits above BitsStored are cleared (unsigned) or copies of the sign bit (signed); nothing else
// (rescale, VOI, colour conversion) is applied: colour comes out in the colour space the
// PhotometricInterpretation names (YBR_FULL stays YBR_FULL), except for JPEG 2000 YBR_RCT and
// YBR_ICT, which OpenJPEG itself turns into RGB.

#define DICOM_MAX_DEPTH       64                /* sequences nested deeper are refused */
#define DICOM_MAX_INFLATED    ((size_t)1 << 30) /* bytes a deflated data set may inflate to */
#define DICOM_MAX_PIXEL_BYTES ((size_t)1 << 31) /* decoded bytes of one image, all frames */

/* Tags the reader uses beyond those above. */
enum {
    DICOM_TAG_FILE_META_GROUP_LENGTH = DICOM_TAG(0x0002, 0x0000),
    DICOM_TAG_TRANSFER_SYNTAX_UID = DICOM_TAG(0x0002, 0x0010),
    DICOM_TAG_EXTENDED_OFFSET_TABLE = DICOM_TAG(0x7FE0, 0x0001),
    DICOM_TAG_EXTENDED_OFFSET_TABLE_LENGTHS = DICOM_TAG(0x7FE0, 0x0002),
    DICOM_TAG_SHARED_FUNCTIONAL_GROUPS = DICOM_TAG(0x5200, 0x9229),
    DICOM_TAG_PER_FRAME_FUNCTIONAL_GROUPS = DICOM_TAG(0x5200, 0x9230),
    DICOM_TAG_PIXEL_MEASURES_SEQUENCE = DICOM_TAG(0x0028, 0x9110),
    DICOM_TAG_PLANE_POSITION_SEQUENCE = DICOM_TAG(0x0020, 0x9113),
    DICOM_TAG_PLANE_ORIENTATION_SEQUENCE = DICOM_TAG(0x0020, 0x9116),
    DICOM_TAG_PIXEL_VALUE_TRANSFORMATION_SEQUENCE = DICOM_TAG(0x0028, 0x9145),
    DICOM_TAG_FRAME_CONTENT_SEQUENCE = DICOM_TAG(0x0020, 0x9111),
};

#define DICOM_SOP_CLASS_ENHANCED_MR_IMAGE "1.2.840.10008.5.1.4.1.1.4.1"

/* The transfer-syntax support matrix: one row per syntax the reader knows (dicom_ts.c). The
 * reader takes each file's encoding from it, dicom_decode_frame its decoder, and the README's
 * table is printed from it (dicom_ts_table). */
typedef enum DicomCodec {
    DICOM_CODEC_NATIVE = 0,    /* uncompressed, in the data set */
    DICOM_CODEC_NATIVE_FRAMES, /* uncompressed frames in fragments (1.2.840.10008.1.2.1.98) */
    DICOM_CODEC_RLE,           /* own: dicom_rle_decode.c (PS3.5 Annex G) */
    DICOM_CODEC_JPEG_LOSSLESS, /* own: dicom_jpegll.c (ITU T.81 process 14) */
    DICOM_CODEC_JPEG,          /* libjpeg-turbo: baseline and extended, 8-bit samples */
    DICOM_CODEC_JPEG_LS,       /* CharLS */
    DICOM_CODEC_J2K,           /* OpenJPEG */
    DICOM_CODEC_NONE,          /* refused: the header is read, the pixels are not decoded */
} DicomCodec;

typedef struct DicomTsInfo {
    const char *uid;
    const char *name;    /* PS3.6 table A-1 name */
    uint8_t explicit_vr; /* data set encoding */
    uint8_t big_endian;
    uint8_t deflated;
    uint8_t encapsulated; /* pixel data in fragments */
    uint8_t supported;    /* 1: dicom_decode_frame decodes it; 0: refused */
    DicomCodec codec;
    const char *decoder; /* who decodes it, or why it is refused */
} DicomTsInfo;

/* The whole table, *n rows. */
const DicomTsInfo *dicom_ts_table(size_t *n);
/* The row of uid (trailing spaces ignored), or NULL for a syntax not in the table. */
const DicomTsInfo *dicom_ts_find(const char *uid);

typedef struct DicomReadOptions {
    /* 1: stop at the top-level (7FE0,0010) PixelData, which is neither read nor kept; a fast
     * header scan (dicom_read_file then reads the file in growing chunks, not all of it). */
    int stop_before_pixels;
    /* With stop_before_pixels: also check, reading only element and item headers, that the
     * PixelData element (each item of it, when encapsulated) ends within the file (or the
     * buffer, for dicom_read_mem), so a file cut inside its pixels fails with "(truncated)" as
     * a full read would. Deflated data sets are inflated whole anyway, which checks them. */
    int check_pixel_extent;
    /* dicom_read_mem only: the top-level PixelData's value is not copied where the bytes hold
     * it as it is kept (native, little endian, not inflated) but points into them (the
     * element's borrowed flag), so those bytes must outlive the DicomFile. For a caller that
     * reads a file into a buffer of its own to decode it: one copy of the pixels fewer. */
    int borrow_pixel_data;
} DicomReadOptions;

typedef struct DicomFile {
    char *name;         /* the path, or the name given to dicom_read_mem: for messages */
    DicomFileForm form; /* as found */
    DicomDataset *meta; /* the file meta group (group 0002); empty when the file has none */
    DicomDataset *ds;   /* the data set */
    char ts_uid[DICOM_UID_MAX + 1]; /* (0002,0010), or the guessed syntax's UID */
    const DicomTsInfo *ts;          /* its row of the support matrix; NULL for a syntax not in it */
    int ts_guessed;     /* 1: no TransferSyntaxUID, the encoding was guessed from the bytes */
    int pixels_skipped; /* 1: stop_before_pixels stopped at PixelData */
    /* stop_before_pixels: byte offset of the PixelData element in the file, and its encoding;
     * 0 when the data set was inflated (the offset would be into the inflated bytes). */
    uint64_t pixel_offset;
    uint8_t pixel_big;
    uint8_t pixel_explicit_vr;
} DicomFile;

/* Parses len bytes (not kept: the DicomFile owns copies of what it holds). name is used in
 * messages (NULL: "<memory>"); opt NULL means defaults. A syntax that is not in the matrix or is
 * refused is still parsed, its encoding guessed from the bytes, so a header can be reported. */
int dicom_read_mem(const void *data, size_t len, const char *name, const DicomReadOptions *opt,
                   DicomFile **out, Err *e);
int dicom_read_file(const char *path, const DicomReadOptions *opt, DicomFile **out, Err *e);
void dicom_file_free(DicomFile *f);
/* 1 when e holds a read error caused by the data ending early, inside an element, item or
 * deflate stream (a truncated file: the message ends with "(truncated)"); 0 for other errors.
 * A buffer that is not DICOM at all says "not a DICOM file". */
int dicom_error_truncated(const Err *e);

/* Values. Messages name the tag, not the file (the caller prefixes it); an absent tag is
 * ERR_FORMAT "absent", so test with dicom_find first when a tag is optional. */

/* The text of a string VR (all but the binary VRs) without trailing spaces and NULs (and without
 * leading spaces for the VRs where they are insignificant: AE CS DA DS DT IS TM UI), into out
 * of cap bytes, NUL-terminated. Too long for cap: ERR_FORMAT. */
int dicom_get_string(const DicomDataset *ds, uint32_t tag, char *out, size_t cap, Err *e);
/* Numeric values: DS and IS parsed from their backslash-separated text; US SS UL SL FL FD SV UV
 * OF OD read as binary. The first min(max, count) go to out; *n (may be NULL) gets the count.
 * An unparsable DS/IS value is ERR_FORMAT naming it. */
int dicom_get_numbers(const DicomDataset *ds, uint32_t tag, double *out, size_t max, size_t *n,
                      Err *e);
/* The first value as a double, or as an integer (which must be integral and fit a long). */
int dicom_get_number(const DicomDataset *ds, uint32_t tag, double *v, Err *e);
int dicom_get_long(const DicomDataset *ds, uint32_t tag, long *v, Err *e);

/* The image pixel module of a file, checked: Rows, Columns, SamplesPerPixel (1 or 3),
 * BitsAllocated, BitsStored (1..BitsAllocated), HighBit, PixelRepresentation,
 * PlanarConfiguration, NumberOfFrames (1 when absent), PhotometricInterpretation. */
typedef struct DicomImageInfo {
    uint32_t rows;
    uint32_t columns;
    uint32_t frames;
    unsigned samples_per_pixel;
    unsigned bits_allocated;
    unsigned bits_stored;
    unsigned high_bit;
    unsigned pixel_representation; /* 1: signed; the uint16 samples hold int16 values */
    unsigned planar_configuration;
    char photometric[17];
} DicomImageInfo;

int dicom_image_info(const DicomFile *f, DicomImageInfo *info, Err *e);
/* Decodes frame (0-based) into out, which holds count >= rows x columns x samples values (samples
 * interleaved). A syntax that is refused or unknown is ERR_FORMAT "refused: transfer syntax
 * <uid> (<name>) ..."; so are BitsAllocated other than 8 and 16, and 12-bit JPEG (.51) with this
 * 8-bit libjpeg. */
int dicom_decode_frame(const DicomFile *f, uint32_t frame, uint16_t *out, size_t count, Err *e);
/* Every frame, into a new buffer (*pixels, frames x rows x columns x samples, mem_free). */
int dicom_decode_pixels(const DicomFile *f, DicomImageInfo *info, uint16_t **pixels, Err *e);

/* RLE Lossless, the inverse of dicom_rle_encode_frame: decodes one frame's fragment (64-byte
 * header, then segments) into out, rows x columns x samples x bytes_per_sample bytes laid out as
 * the encoder takes them (little-endian samples, interleaved or planar). A frame whose segment
 * count disagrees, an offset out of range or a segment that decodes short is ERR_FORMAT. */
int dicom_rle_decode_frame(const uint8_t *data, size_t len, uint32_t rows, uint32_t columns,
                           unsigned samples, unsigned bytes_per_sample, unsigned planar,
                           uint8_t *out, Err *e);

/* Enhanced multi-frame images (Enhanced MR, 1.2.840.10008.5.1.4.1.1.4.1): what a frame's
 * functional groups say, looked up in its Per-frame Functional Groups item, then the Shared
 * Functional Groups item, then (for classic single-frame images) the data set itself. */
typedef struct DicomFrameGeometry {
    int has_position;
    double position[3]; /* ImagePositionPatient (0020,9113)>(0020,0032) */
    int has_orientation;
    double orientation[6]; /* ImageOrientationPatient (0020,9116)>(0020,0037) */
    int has_spacing;
    double spacing[2]; /* PixelSpacing (0028,9110)>(0028,0030), row then column spacing */
    int has_thickness;
    double slice_thickness; /* SliceThickness (0028,9110)>(0018,0050) */
    int has_rescale;
    double rescale_slope; /* (0028,9145)>(0028,1053) and >(0028,1052); 1 and 0 when absent */
    double rescale_intercept;
} DicomFrameGeometry;

/* frame is 0-based; past the Per-frame sequence's items is ERR_FORMAT. Attributes absent from
 * every level leave their has_ flag 0; a present but malformed one is ERR_FORMAT. */
int dicom_frame_geometry(const DicomDataset *ds, uint32_t frame, DicomFrameGeometry *g, Err *e);

#endif
