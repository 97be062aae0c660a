/* sha256.h: SHA-256 (FIPS 180-4) for config hashes, manifests and provenance.
 * Checked against the NIST example vectors. */
#ifndef ONFH_SHA256_H
#define ONFH_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/err.h"

typedef struct Sha256 {
    uint32_t h[8];
    uint64_t bytes; /* message length so far */
    uint8_t block[64];
    size_t fill; /* bytes waiting in block */
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
void sha256_final(Sha256 *s, uint8_t digest[32]);

/* Up to SHA256_MANY_MAX messages at once, of any lengths, digest[k] for data[k] (len[k] bytes);
 * the same digests as one at a time. With the x86 SHA extensions their rounds interleave (one
 * message's rounds wait on each other; the others' fill the gaps): measured on Zen, 4 messages
 * hash at about 1.75x the rate of one, 1.2x that of two. What hashes many files, four at a
 * time, goes faster; the gain lasts while all have blocks left, so like lengths suit it best. */
#define SHA256_MANY_MAX 4
void sha256_many(int n, const void *const *data, const size_t *len, uint8_t (*digest)[32]);

/* One call: hex digest (64 lowercase hex digits + NUL) of a buffer. */
void sha256_hex(const void *data, size_t n, char hex[65]);
/* Hex digest of a file's contents; bytes (may be NULL) receives its size. */
int sha256_file(const char *path, char hex[65], uint64_t *bytes, Err *e);
/* HMAC-SHA-256 (RFC 2104; checked against RFC 4231): keyed pseudonyms, such as a patient's
 * identifier under a site key, that cannot be reversed or recomputed without the key. */
void hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len, uint8_t mac[32]);

/* Uses the x86 SHA extensions where the CPU has them; on = 1 forces the portable code (tests
 * check both give the same digests; the benchmark compares them). */
void sha256_force_portable(int on);
/* 32 bytes -> 64 hex digits + NUL. */
void sha256_to_hex(const uint8_t digest[32], char hex[65]);

#endif
