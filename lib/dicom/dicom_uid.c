/* dicom_uid.c: deterministic DICOM UIDs under the 2.25 (UUID) root, and UID syntax checks.
 *
 * Why 2.25: a UID under 2.25 is the decimal form of a UUID (ITU-T X.667 / ISO 9834-8, named in
 * PS3.5 B.2), so onfh needs no registered org root and its UIDs cannot collide with a vendor's.
 * Why SHA-256 of a seed: synthetic cohorts must be reproducible byte for byte, so a UID is a pure
 * function of a caller string such as "<run seed>/patient/17/study". The UUID is a name-based
 * one in the RFC 9562 sense: the first 16 bytes of the SHA-256, with the version nibble set to 8
 * (custom) and the variant bits to 10, leaving 122 hash bits, plenty against collisions.
 *
 * The 128-bit integer becomes decimal by long division on four 32-bit limbs (no __int128, which
 * is not C11). A UUID integer has at most 39 digits, so a UID is at most 5 + 39 = 44 characters,
 * within the 64 of PS3.5 9.1; and the variant bits make it non-zero, so there is no leading zero.
 */
#include <string.h>

#include "lib/dicom/dicom.h"
#include "lib/util/sha256.h"

void dicom_uid_from_seed(const char *seed, char uid[DICOM_UID_MAX + 1])
{
    Sha256 s;
    uint8_t digest[32];
    sha256_init(&s);
    sha256_update(&s, seed, strlen(seed));
    sha256_final(&s, digest);
    digest[6] = (uint8_t)((digest[6] & 0x0F) | 0x80); /* version 8 */
    digest[8] = (uint8_t)((digest[8] & 0x3F) | 0x80); /* variant 10 */

    uint32_t limb[4]; /* big endian: limb[0] most significant */
    for (int i = 0; i < 4; i++)
        limb[i] = (uint32_t)digest[4 * i] << 24 | (uint32_t)digest[4 * i + 1] << 16 |
                  (uint32_t)digest[4 * i + 2] << 8 | digest[4 * i + 3];
    char rev[40];
    int n = 0;
    while (limb[0] | limb[1] | limb[2] | limb[3]) {
        uint64_t rem = 0;
        for (int i = 0; i < 4; i++) {
            uint64_t cur = rem << 32 | limb[i];
            limb[i] = (uint32_t)(cur / 10);
            rem = cur % 10;
        }
        rev[n++] = (char)('0' + rem);
    }
    memcpy(uid, DICOM_UID_ROOT ".", sizeof DICOM_UID_ROOT);
    size_t k = sizeof DICOM_UID_ROOT; /* after "2.25." */
    while (n > 0)
        uid[k++] = rev[--n];
    uid[k] = '\0';
}

int dicom_uid_check(const char *uid, Err *e)
{
    size_t n = strlen(uid);
    if (n == 0 || n > DICOM_UID_MAX)
        return err_set(e, ERR_FORMAT, "UID \"%s\" has %zu characters, 1-64 allowed", uid, n);
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && uid[i] >= '0' && uid[i] <= '9')
            continue;
        if (i < n && uid[i] != '.')
            return err_set(e, ERR_FORMAT, "UID \"%s\": character '%c' at %zu is not a digit or dot",
                           uid, uid[i], i);
        if (i == start)
            return err_set(e, ERR_FORMAT, "UID \"%s\": empty component at %zu", uid, i);
        if (uid[start] == '0' && i - start > 1)
            return err_set(e, ERR_FORMAT, "UID \"%s\": component at %zu has a leading zero", uid,
                           start);
        start = i + 1;
    }
    return ERR_OK;
}
