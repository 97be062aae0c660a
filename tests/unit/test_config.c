/* test_config.c: YAML config loading and validation (pipeline/config.c).
 *
 * A schema made for the test exercises every type; each fault gets its exact one-line
 * message (file:line:column: key: expected ..., got ...). Then onfh's own schema is checked:
 * unique two-level keys, valid defaults, docs present. Last, every allocation of a load is made
 * to fail in turn: each failure is ERR_NOMEM with nothing leaked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/util/mem.h"
#include "pipeline/config.h"
#include "pipeline/config_keys.h"

static const CfgKey keys[] = {
    {"run.name", CFG_NAME, NULL, .doc = "name"},
    {"run.seed", CFG_INT, "1", CFG_RANGE(0, 100), .doc = "seed"},
    {"train.lr", CFG_NUM, "0.001", CFG_ABOVE(0), .doc = "learning rate"},
    {"train.epochs", CFG_INT, "3", CFG_AT_LEAST(1), .doc = "epochs"},
    {"train.amp", CFG_BOOL, "false", .doc = "mixed precision"},
    {"train.optimizer", CFG_ENUM, "adamw", .choices = "adamw|sgd|rmsprop", .doc = "optimizer"},
    {"train.archs", CFG_LIST, "[resnet18, vgg16_bn]", CFG_RANGE(1, 10),
     .choices = "resnet18|vgg16_bn|densenet121", .doc = "architectures"},
    {"ingest.labels_csv", CFG_STR, NULL, .doc = "labels (optional)"},
    {"ingest.dicom_dir", CFG_STR, "\"raw\"", .doc = "DICOM tree"},
};
enum { N_KEYS = sizeof keys / sizeof keys[0] };

/* Loads text as file "t.yaml" with optional --set overrides; returns the status. */
static int load(Config *c, const char *text, char **sets, int n_sets, Err *e)
{
    return config_load(c, keys, N_KEYS, "t.yaml", text, strlen(text), sets, n_sets, e);
}

static void expect_error(const char *text, int code, const char *msg)
{
    Config c;
    Err e = {0};
    size_t base = mem_bytes_in_use();
    assert_int_equal(load(&c, text, NULL, 0, &e), code);
    assert_string_equal(e.msg, msg);
    assert_null(c.values); /* nothing left to free */
    assert_int_equal(mem_bytes_in_use(), base);
}

static void test_defaults_and_values(void **state)
{
    (void)state;
    Config c;
    Err e = {0};
    const char *text = "run:\n  seed: 42\ntrain:\n  lr: 3e-4\n  amp: true\n"
                       "  archs: [densenet121]\ningest:\n  labels_csv: labels.csv\n";
    assert_int_equal(load(&c, text, NULL, 0, &e), 0);
    assert_int_equal(config_int(&c, "run.seed"), 42);
    assert_true(config_num(&c, "train.lr") == 3e-4);
    assert_int_equal(config_int(&c, "train.epochs"), 3);
    assert_true(config_num(&c, "train.epochs") == 3.0); /* integers read as numbers too */
    assert_int_equal(config_bool(&c, "train.amp"), 1);
    assert_string_equal(config_str(&c, "train.optimizer"), "adamw");
    char *const *archs;
    assert_int_equal(config_list(&c, "train.archs", &archs), 1);
    assert_string_equal(archs[0], "densenet121");
    assert_string_equal(config_str(&c, "ingest.labels_csv"), "labels.csv");
    assert_string_equal(config_str(&c, "ingest.dicom_dir"), "raw");
    assert_null(config_str(&c, "run.name"));
    assert_false(config_is_set(&c, "run.name"));
    assert_string_equal(config_where(&c, "run.seed"), "t.yaml:2:9");
    assert_string_equal(config_where(&c, "train.epochs"), "default");
    config_free(&c);
}

static void test_empty_file_gives_defaults(void **state)
{
    (void)state;
    Config c;
    Err e = {0};
    assert_int_equal(load(&c, "", NULL, 0, &e), 0);
    assert_int_equal(config_int(&c, "run.seed"), 1);
    char *const *archs;
    assert_int_equal(config_list(&c, "train.archs", &archs), 2);
    config_free(&c);
    assert_int_equal(load(&c, "# only a comment\ntrain:\n", NULL, 0, &e), 0);
    config_free(&c);
}

static void test_the_six_faults(void **state)
{
    (void)state;
    /* bad YAML syntax */
    expect_error("run:\n  seed: [1, 2\n", ERR_FORMAT,
                 "t.yaml:3:1: YAML syntax error: did not find expected ',' or ']' while parsing a "
                 "flow sequence");
    /* unknown key, close to a real one */
    expect_error("train:\n  epoch: 3\n", ERR_CONFIG,
                 "t.yaml:2:3: train.epoch: unknown key (did you mean train.epochs?)");
    /* unknown key, nothing close */
    expect_error("train:\n  colour: blue\n", ERR_CONFIG,
                 "t.yaml:2:3: train.colour: unknown key ('onfh config doc' lists every key)");
    /* unknown section */
    expect_error("trian:\n  lr: 1\n", ERR_CONFIG,
                 "t.yaml:1:1: trian: unknown section (did you mean train?)");
    /* wrong type: the issue's own example */
    expect_error("train:\n  lr: fast\n", ERR_CONFIG,
                 "t.yaml:2:7: train.lr: expected a number > 0, got \"fast\"");
    /* out of range */
    expect_error("run:\n  seed: 101\n", ERR_CONFIG,
                 "t.yaml:2:9: run.seed: expected an integer in [0, 100], got \"101\"");
    expect_error("train:\n  lr: 0\n", ERR_CONFIG,
                 "t.yaml:2:7: train.lr: expected a number > 0, got \"0\"");
    /* duplicate key */
    expect_error("train:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n", ERR_CONFIG,
                 "t.yaml:4:3: train.lr: duplicate key (first given at line 2)");
    expect_error("train:\n  lr: 0.1\ntrain:\n  epochs: 2\n", ERR_CONFIG,
                 "t.yaml:3:1: train: duplicate key (first given at line 1)");
}

static void test_type_checks(void **state)
{
    (void)state;
    expect_error("train:\n  epochs: 2.5\n", ERR_CONFIG,
                 "t.yaml:2:11: train.epochs: expected an integer >= 1, got \"2.5\"");
    expect_error("train:\n  epochs: \"2\"\n", ERR_CONFIG,
                 "t.yaml:2:11: train.epochs: expected an integer >= 1, got \"2\" (quoted: a "
                 "string)");
    expect_error("train:\n  amp: yes\n", ERR_CONFIG,
                 "t.yaml:2:8: train.amp: expected true or false, got \"yes\"");
    expect_error("train:\n  optimizer: adam\n", ERR_CONFIG,
                 "t.yaml:2:14: train.optimizer: expected one of: adamw, sgd, rmsprop, got "
                 "\"adam\" (did you mean adamw?)");
    expect_error("train:\n  archs: resnet18\n", ERR_CONFIG,
                 "t.yaml:2:10: train.archs: expected a list of: resnet18, vgg16_bn, densenet121, "
                 "got \"resnet18\"");
    expect_error("train:\n  archs: [resnet18, resnet19]\n", ERR_CONFIG,
                 "t.yaml:2:10: train.archs: item \"resnet19\" is not allowed (did you mean "
                 "resnet18?); expected a list of: resnet18, vgg16_bn, densenet121");
    expect_error("train:\n  archs: []\n", ERR_CONFIG,
                 "t.yaml:2:10: train.archs: expected 1 to 10 items, got 0");
    expect_error("train:\n  lr: ~\n", ERR_CONFIG,
                 "t.yaml:2:7: train.lr: expected a number > 0, got null");
    expect_error("train:\n  lr: {a: 1}\n", ERR_CONFIG,
                 "t.yaml:2:7: train.lr: expected a number > 0, got a mapping");
    expect_error("train: 3\n", ERR_CONFIG,
                 "t.yaml:1:8: train: expected a mapping of keys (a config section)");
    expect_error("- a\n- b\n", ERR_CONFIG,
                 "t.yaml:1:1: expected a mapping of sections (run:, ...)");
    expect_error("run:\n  name: \"a b\"\n", ERR_CONFIG,
                 "t.yaml:2:9: run.name: expected a name of letters, digits, '.', '_' or '-', got "
                 "\"a b\"");
    expect_error("train:\n  lr: inf\n", ERR_CONFIG,
                 "t.yaml:2:7: train.lr: expected a number > 0, got \"inf\"");
    expect_error("train:\n  lr: 0x10\n", ERR_CONFIG,
                 "t.yaml:2:7: train.lr: expected a number > 0, got \"0x10\"");
    expect_error("run:\n  seed: 1\n---\nrun:\n  seed: 2\n", ERR_FORMAT,
                 "t.yaml:4:1: expected one YAML document, found another");
}

static void test_optional_null_and_anchors(void **state)
{
    (void)state;
    Config c;
    Err e = {0};
    /* an optional key can be explicitly unset; aliases resolve */
    const char *text = "ingest:\n  labels_csv: ~\n  dicom_dir: &d data/raw\n"
                       "run:\n  name: &n site-A.v2\n";
    assert_int_equal(load(&c, text, NULL, 0, &e), 0);
    assert_null(config_str(&c, "ingest.labels_csv"));
    assert_string_equal(config_str(&c, "ingest.dicom_dir"), "data/raw");
    assert_string_equal(config_str(&c, "run.name"), "site-A.v2");
    config_free(&c);
}

static void test_set_overrides(void **state)
{
    (void)state;
    Config c;
    Err e = {0};
    char *sets[] = {"train.epochs=7", "train.archs=[vgg16_bn, densenet121]", "run.seed=0",
                    "ingest.labels_csv=", "train.epochs=8"};
    assert_int_equal(load(&c, "train:\n  epochs: 2\n  lr: 0.5\n", sets, 5, &e), 0);
    assert_int_equal(config_int(&c, "train.epochs"), 8); /* later --set wins */
    assert_string_equal(config_where(&c, "train.epochs"), "--set train.epochs=8");
    char *const *archs;
    assert_int_equal(config_list(&c, "train.archs", &archs), 2);
    assert_string_equal(archs[1], "densenet121");
    assert_int_equal(config_int(&c, "run.seed"), 0);
    assert_true(config_num(&c, "train.lr") == 0.5);
    assert_null(config_str(&c, "ingest.labels_csv"));
    config_free(&c);

    char *bad1[] = {"train.epoch=3"};
    assert_int_equal(load(&c, "", bad1, 1, &e), ERR_CONFIG);
    assert_string_equal(e.msg, "--set train.epoch=3: train.epoch: unknown key (did you mean "
                               "train.epochs?)");
    char *bad2[] = {"train.lr=fast"};
    assert_int_equal(load(&c, "", bad2, 1, &e), ERR_CONFIG);
    assert_string_equal(e.msg,
                        "--set train.lr=fast: train.lr: expected a number > 0, got \"fast\"");
    char *bad3[] = {"train"};
    assert_int_equal(load(&c, "", bad3, 1, &e), ERR_USAGE);
    assert_string_equal(e.msg, "--set train: expected KEY=VALUE, e.g. --set train.epochs=3");
    char *bad4[] = {"train=3"};
    assert_int_equal(load(&c, "", bad4, 1, &e), ERR_CONFIG);
    assert_string_equal(e.msg, "--set train=3: train is a section; set its keys one by one");
}

static void test_canonical_yaml_and_hash(void **state)
{
    (void)state;
    Config a, b;
    Err e = {0};
    /* same meaning, different spelling: same canonical text and hash */
    assert_int_equal(load(&a, "train:\n  lr: 0.0010\n  amp: True\nrun:\n  seed: 5\n", NULL, 0, &e),
                     0);
    char *sets[] = {"run.seed=5", "train.amp=true"};
    assert_int_equal(load(&b, "{train: {lr: 1e-3}}", sets, 2, &e), 0);
    char *ya, *yb, ha[65], hb[65], hs[65];
    assert_int_equal(config_to_yaml(&a, NULL, &ya, &e), 0);
    assert_int_equal(config_to_yaml(&b, NULL, &yb, &e), 0);
    assert_string_equal(ya, yb);
    assert_string_equal(ya, "run:\n  name: null\n  seed: 5\ntrain:\n  lr: 0.001\n  epochs: 3\n"
                            "  amp: true\n  optimizer: adamw\n  archs: [resnet18, vgg16_bn]\n"
                            "ingest:\n  labels_csv: null\n  dicom_dir: \"raw\"\n");
    assert_int_equal(config_hash(&a, NULL, ha, &e), 0);
    assert_int_equal(config_hash(&b, NULL, hb, &e), 0);
    assert_string_equal(ha, hb);
    char *sec;
    assert_int_equal(config_to_yaml(&a, "ingest", &sec, &e), 0);
    assert_string_equal(sec, "ingest:\n  labels_csv: null\n  dicom_dir: \"raw\"\n");
    assert_int_equal(config_hash(&a, "ingest", hs, &e), 0);
    assert_string_not_equal(hs, ha);
    /* the canonical text reads back to the same config */
    Config c;
    char *yc;
    assert_int_equal(load(&c, ya, NULL, 0, &e), 0);
    assert_int_equal(config_to_yaml(&c, NULL, &yc, &e), 0);
    assert_string_equal(ya, yc);
    mem_free(ya);
    mem_free(yb);
    mem_free(yc);
    mem_free(sec);
    config_free(&a);
    config_free(&b);
    config_free(&c);
}

static void test_set_string_and_quoting(void **state)
{
    (void)state;
    Config c;
    Err e = {0};
    assert_int_equal(load(&c, "ingest:\n  dicom_dir: 'a \"b\"\\c'\n", NULL, 0, &e), 0);
    char *y;
    assert_int_equal(config_to_yaml(&c, "ingest", &y, &e), 0);
    assert_string_equal(y, "ingest:\n  labels_csv: null\n  dicom_dir: \"a \\\"b\\\"\\\\c\"\n");
    mem_free(y);
    assert_int_equal(config_set_string(&c, "run.name", "derived", "the file name", &e), 0);
    assert_string_equal(config_str(&c, "run.name"), "derived");
    assert_int_equal(config_set_string(&c, "run.name", "no spaces", "x", &e), ERR_CONFIG);
    config_free(&c);
}

static void test_doc(void **state)
{
    (void)state;
    char *text;
    Err e = {0};
    assert_int_equal(config_doc(keys, N_KEYS, &text, &e), 0);
    assert_non_null(strstr(text, "train.lr: a number > 0; default 0.001\n    learning rate\n"));
    assert_non_null(strstr(text, "ingest.labels_csv: a string; default unset\n"));
    mem_free(text);
}

/* onfh's own schema: every key is section.key, unique, documented, and its default valid. */
static void test_onfh_schema(void **state)
{
    (void)state;
    for (int i = 0; i < onfh_config_n_keys; i++) {
        const char *p = onfh_config_keys[i].path;
        const char *dot = strchr(p, '.');
        assert_non_null(dot);
        assert_null(strchr(dot + 1, '.'));
        assert_true(onfh_config_keys[i].doc && onfh_config_keys[i].doc[0]);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(p, onfh_config_keys[j].path);
    }
    Config c;
    Err e = {0};
    assert_int_equal(
        config_load(&c, onfh_config_keys, onfh_config_n_keys, "empty.yaml", "", 0, NULL, 0, &e), 0);
    config_free(&c);
    /* keys with a default that also accept null (no labels, no clinical data) */
    const char *nul = "ingest:\n  labels_csv: null\n  clinical_csv: ~\n";
    assert_int_equal(config_load(&c, onfh_config_keys, onfh_config_n_keys, "n.yaml", nul,
                                 strlen(nul), NULL, 0, &e),
                     0);
    assert_null(config_str(&c, "ingest.labels_csv"));
    assert_null(config_str(&c, "ingest.clinical_csv"));
    config_free(&c);
    const char *bad = "train:\n  lr: null\n";
    assert_int_not_equal(config_load(&c, onfh_config_keys, onfh_config_n_keys, "b.yaml", bad,
                                     strlen(bad), NULL, 0, &e),
                         0);
    assert_non_null(strstr(e.msg, "train.lr"));
    Config d;
    assert_int_equal(config_load_file(&d, onfh_config_keys, onfh_config_n_keys,
                                      "no/such/config.yaml", NULL, 0, &e),
                     ERR_IO);
    assert_non_null(strstr(e.msg, "no/such/config.yaml"));
}

static void test_allocation_failures_unwind(void **state)
{
    (void)state;
    const char *text = "run:\n  seed: 4\ntrain:\n  archs: [resnet18, densenet121]\n";
    char *sets[] = {"train.lr=0.5"};
    size_t base = mem_bytes_in_use();
    int failures = 0;
    for (long n = 1; n < 10000; n++) {
        Config c;
        Err e = {0};
        mem_fail_at(n);
        int rc = load(&c, text, sets, 1, &e);
        mem_fail_at(0);
        if (rc == 0) {
            config_free(&c);
            assert_int_equal(mem_bytes_in_use(), base);
            break;
        }
        assert_int_equal(rc, ERR_NOMEM);
        assert_int_equal(mem_bytes_in_use(), base);
        failures++;
    }
    assert_true(failures > 10); /* the loop really reached the allocations */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values),
        cmocka_unit_test(test_empty_file_gives_defaults),
        cmocka_unit_test(test_the_six_faults),
        cmocka_unit_test(test_type_checks),
        cmocka_unit_test(test_optional_null_and_anchors),
        cmocka_unit_test(test_set_overrides),
        cmocka_unit_test(test_canonical_yaml_and_hash),
        cmocka_unit_test(test_set_string_and_quoting),
        cmocka_unit_test(test_doc),
        cmocka_unit_test(test_onfh_schema),
        cmocka_unit_test(test_allocation_failures_unwind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
