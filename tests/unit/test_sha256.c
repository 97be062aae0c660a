/* test_sha256.c: SHA-256 (lib/util/sha256.c) against the NIST example vectors.
 *
 * Expected digests are the FIPS 180-2 / NIST CSRC "SHA-256 examples" values (also produced by
 * Python's hashlib for the same messages). The million-'a' message is fed in uneven chunks so
 * that every path of the block buffering runs; sha256_file is checked against sha256_hex on a
 * file larger than its 1 MiB read buffer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/util/mem.h"
#include "lib/util/sha256.h"

static void check_hex(const char *msg, const char *want)
{
    char hex[65];
    sha256_hex(msg, strlen(msg), hex);
    assert_string_equal(hex, want);
}

static void test_nist_short_messages(void **state)
{
    (void)state;
    check_hex("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_hex("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* 448 bits: padding spills into a second block. */
    check_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* 896 bits: two full message blocks. */
    check_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmn"
              "opqrlmnopqrsmnopqrstnopqrstu",
              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

/* The accelerated (x86 SHA extensions) and portable compressions give the same digests: the
 * NIST vectors through the portable code, then every length up to 300 bytes and a 1 MiB
 * buffer through both. On a CPU without the extensions both runs take the portable path. */
static void test_portable_equals_accelerated(void **state)
{
    (void)state;
    sha256_force_portable(1);
    test_nist_short_messages(state);
    sha256_force_portable(0);
    enum { BIG = 1 << 20 };
    uint8_t *buf = malloc(BIG);
    assert_non_null(buf);
    uint32_t x = 12345;
    for (size_t i = 0; i < BIG; i++) {
        x = x * 1664525u + 1013904223u;
        buf[i] = (uint8_t)(x >> 24);
    }
    char fast[65], slow[65];
    for (size_t n = 0; n <= 300; n++) {
        sha256_hex(buf, n, fast);
        sha256_force_portable(1);
        sha256_hex(buf, n, slow);
        sha256_force_portable(0);
        assert_string_equal(fast, slow);
    }
    sha256_hex(buf, BIG, fast);
    sha256_force_portable(1);
    sha256_hex(buf, BIG, slow);
    sha256_force_portable(0);
    assert_string_equal(fast, slow);
    free(buf);
}

/* One message's digest the plain way (init, update, final), through the portable code: what
 * sha256_many must give, whichever compression it uses. */
static void digest_alone(const uint8_t *data, size_t len, uint8_t digest[32])
{
    Sha256 s;
    sha256_force_portable(1);
    sha256_init(&s);
    sha256_update(&s, data, len);
    sha256_final(&s, digest);
}

/* n messages of lens[i], each from its own offset of buf (a digest given to the wrong message
 * fails), through sha256_many against digest_alone. */
static void check_many(const uint8_t *buf, int n, const size_t *lens, int portable)
{
    const void *data[SHA256_MANY_MAX];
    uint8_t got[SHA256_MANY_MAX][32];
    uint8_t want[SHA256_MANY_MAX][32];
    for (int k = 0; k < n; k++) {
        data[k] = buf + 7 * k;
        digest_alone(data[k], lens[k], want[k]);
    }
    memset(got, 0, sizeof got);
    sha256_force_portable(portable);
    sha256_many(n, data, lens, got);
    sha256_force_portable(0);
    for (int k = 0; k < n; k++) {
        char hg[65], hw[65];
        sha256_to_hex(got[k], hg);
        sha256_to_hex(want[k], hw);
        if (strcmp(hg, hw))
            fail_msg("sha256_many n=%d message %d of %zu bytes (portable=%d): %s, want %s", n, k,
                     lens[k], portable, hg, hw);
    }
}

/* sha256_many gives each message its own digest, with the extensions and without: n = 1 to 4
 * messages, every ordered choice of lengths around the padding boundary (0, 55, 56, 63, 64, 65),
 * shorter and longer than the others (the streams drop out in every order), up to 200000 bytes;
 * then four 1 MiB messages that differ in their last byte only. */
static void test_many_equals_single(void **state)
{
    (void)state;
    enum { BIG = 1 << 20 };
    uint8_t *buf = malloc(BIG + 64);
    assert_non_null(buf);
    uint32_t x = 777;
    for (size_t i = 0; i < BIG + 64; i++) {
        x = x * 1664525u + 1013904223u;
        buf[i] = (uint8_t)(x >> 24);
    }
    static const size_t lens[] = {0, 1, 55, 56, 63, 64, 65, 1000, 200000};
    enum { N_LENS = sizeof lens / sizeof *lens };
    for (int portable = 0; portable <= 1; portable++)
        for (int n = 1; n <= SHA256_MANY_MAX; n++) {
            /* All N_LENS^n choices for n <= 2; for 3 and 4, each message's length index a
             * different multiple (1, 2, 4, 5: each prime to 9) of the combination number plus
             * its own, which runs through every length in every position. */
            int combos = n == 1 ? N_LENS : N_LENS * N_LENS;
            for (int c = 0; c < combos; c++) {
                size_t pick[SHA256_MANY_MAX];
                static const int mult[SHA256_MANY_MAX] = {1, 2, 4, 5};
                for (int k = 0; k < n; k++)
                    pick[k] = lens[n <= 2 ? (k == 0 ? c % N_LENS : c / N_LENS)
                                          : (mult[k] * c + c / N_LENS + k) % N_LENS];
                check_many(buf, n, pick, portable);
            }
        }
    uint8_t *copy[SHA256_MANY_MAX];
    const void *data[SHA256_MANY_MAX];
    size_t big[SHA256_MANY_MAX];
    for (int k = 0; k < SHA256_MANY_MAX; k++) {
        copy[k] = malloc(BIG);
        assert_non_null(copy[k]);
        memcpy(copy[k], buf, BIG);
        copy[k][BIG - 1] ^= (uint8_t)k;
        data[k] = copy[k];
        big[k] = BIG;
    }
    for (int portable = 0; portable <= 1; portable++) {
        uint8_t got[SHA256_MANY_MAX][32];
        sha256_force_portable(portable);
        sha256_many(SHA256_MANY_MAX, data, big, got);
        for (int k = 0; k < SHA256_MANY_MAX; k++) {
            uint8_t want[32];
            digest_alone(copy[k], BIG, want);
            assert_memory_equal(got[k], want, 32);
            if (k > 0)
                assert_memory_not_equal(got[k], got[0], 32);
        }
    }
    sha256_force_portable(0);
    for (int k = 0; k < SHA256_MANY_MAX; k++)
        free(copy[k]);
    free(buf);
}

/* HMAC-SHA-256, RFC 4231 test cases 1, 2, 3 and 6 (6: a key longer than the block). The
 * expected values also agree with Python's hmac module. */
static void check_hmac(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       const char *want)
{
    uint8_t mac[32];
    char hex[65];
    hmac_sha256(key, key_len, msg, msg_len, mac);
    sha256_to_hex(mac, hex);
    assert_string_equal(hex, want);
}

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    uint8_t k[131], d[50];
    memset(k, 0x0b, 20);
    check_hmac(k, 20, "Hi There", 8,
               "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    check_hmac("Jefe", 4, "what do ya want for nothing?", 28,
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(k, 0xaa, 20);
    memset(d, 0xdd, 50);
    check_hmac(k, 20, d, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    memset(k, 0xaa, 131);
    check_hmac(k, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
               "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_nist_million_a_uneven_chunks(void **state)
{
    (void)state;
    static const size_t chunks[] = {1, 63, 64, 65, 127, 3, 1000, 0, 4096, 55, 56, 57};
    char a[4096];
    memset(a, 'a', sizeof a);
    Sha256 s;
    sha256_init(&s);
    size_t left = 1000000;
    for (size_t i = 0; left > 0; i++) {
        size_t n = chunks[i % (sizeof chunks / sizeof chunks[0])];
        n = n < left ? n : left;
        sha256_update(&s, a, n);
        left -= n;
    }
    uint8_t digest[32];
    char hex[65];
    sha256_final(&s, digest);
    sha256_to_hex(digest, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Every length around the padding boundary: one update and byte-by-byte agree. */
static void test_split_agrees_with_whole(void **state)
{
    (void)state;
    char msg[200];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)(i * 7 + 1);
    for (size_t len = 0; len <= sizeof msg; len++) {
        char whole[65];
        char parts[65];
        uint8_t digest[32];
        Sha256 s;
        sha256_hex(msg, len, whole);
        sha256_init(&s);
        for (size_t i = 0; i < len; i++)
            sha256_update(&s, msg + i, 1);
        sha256_final(&s, digest);
        sha256_to_hex(digest, parts);
        assert_string_equal(whole, parts);
    }
}

static char tmpdir[4096];

static int make_tmpdir(void **state)
{
    (void)state;
    const char *base = getenv("ONFH_TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_sha256.XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    return rmdir(tmpdir);
}

static void test_file_equals_buffer(void **state)
{
    (void)state;
    size_t n = (5u << 19) + 12345; /* 2.5 MiB and a bit: three reads of the 1 MiB buffer */
    char *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 2654435761u >> 13);
    char path[4200];
    snprintf(path, sizeof path, "%s/data.bin", tmpdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);

    char want[65];
    char got[65];
    uint64_t bytes = 0;
    Err e = {0};
    size_t base = mem_bytes_in_use();
    sha256_hex(data, n, want);
    assert_int_equal(sha256_file(path, got, &bytes, &e), ERR_OK);
    assert_string_equal(got, want);
    assert_int_equal(bytes, n);
    assert_int_equal(mem_bytes_in_use(), base);

    /* No read buffer: ERR_NOMEM naming the file, and nothing leaked. */
    mem_fail_at(1);
    assert_int_equal(sha256_file(path, got, NULL, &e), ERR_NOMEM);
    mem_fail_at(0);
    assert_non_null(strstr(e.msg, path));
    assert_int_equal(mem_bytes_in_use(), base);

    free(data);
    assert_int_equal(unlink(path), 0);
}

static void test_missing_file(void **state)
{
    (void)state;
    char path[4200];
    char hex[65];
    Err e = {0};
    snprintf(path, sizeof path, "%s/no-such-file", tmpdir);
    assert_int_equal(sha256_file(path, hex, NULL, &e), ERR_IO);
    assert_int_equal(e.code, ERR_IO);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, strerror(ENOENT)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nist_short_messages),
        cmocka_unit_test(test_nist_million_a_uneven_chunks),
        cmocka_unit_test(test_split_agrees_with_whole),
        cmocka_unit_test(test_file_equals_buffer),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_portable_equals_accelerated),
        cmocka_unit_test(test_many_equals_single),
        cmocka_unit_test(test_hmac_rfc4231),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
