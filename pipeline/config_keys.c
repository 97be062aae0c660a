/* config_keys.c: the schema of onfh's YAML config, declared once.
 *
 * One row per key: path, type, default (as YAML), range or choices, one-line doc. `onfh config
 * doc` prints this table; every load validates against it; unknown keys are errors. A stage that
 * reads a key adds its row here, in its own section (DESIGN.md section 3a). */
#include "pipeline/config_keys.h"

const CfgKey onfh_config_keys[] = {
    {"run.name", CFG_NAME, NULL,
     .doc = "run name; the run directory is <output_root>/<name> (unset: the config file's name)"},
    {"run.seed", CFG_INT, "1", CFG_RANGE(0, 4294967295.0),
     .doc = "seed of every random draw in the run (Philox key), so a run repeats bit for bit"},
    {"run.output_root", CFG_STR, "\"runs\"",
     .doc = "directory that holds run directories (relative to the working directory)"},
    {"run.log_level", CFG_ENUM, "info", .choices = "debug|info|warn|error",
     .doc = "least severe message that is logged"},
    {"run.log_all_ranks", CFG_BOOL, "false",
     .doc = "print every MPI rank's messages on stderr, not only rank 0's (errors always print)"},
    {"run.progress", CFG_ENUM, "auto", .choices = "auto|bar|lines|off",
     .doc = "progress display: a bar on a terminal, periodic log lines otherwise (auto)"},
    {"run.progress_interval_s", CFG_NUM, "10", CFG_ABOVE(0),
     .doc = "seconds between progress log lines when not drawing a bar"},

    {"synth.patients", CFG_INT, "30", CFG_RANGE(1, 1000000), .doc = "patients in the cohort"},
    {"synth.bilateral_fraction", CFG_NUM, "0.7", CFG_RANGE(0, 1),
     .doc = "fraction of patients with ONFH in both hips (the paper: 21 of 30)"},
    {"synth.sites", CFG_INT, "3", CFG_RANGE(1, 8),
     .doc = "scanning sites; each has its own manufacturer, matrix, intensity scale and SNR"},
    {"synth.visits_min", CFG_INT, "3", CFG_RANGE(1, 12), .doc = "fewest MRI visits per patient"},
    {"synth.visits_max", CFG_INT, "5", CFG_RANGE(1, 12), .doc = "most MRI visits per patient"},
    {"synth.followup_days", CFG_INT, "730", CFG_RANGE(60, 7300),
     .doc = "days from the first to about the last visit"},
    {"synth.slices_per_patient", CFG_INT, "40", CFG_RANGE(3, 1000),
     .doc = "coronal T1 slices per series"},
    {"synth.labelled_slices", CFG_INT, "30", CFG_RANGE(3, 1000),
     .doc = "of those, slices that cut a femoral head and are labelled at baseline"},
    {"synth.lesion_slice_fraction", CFG_NUM, "0.75", CFG_RANGE(0, 1), .min_excl = 1,
     .doc = "fraction of labelled baseline slices that show a lesion (the paper: 675 of 900)"},
    {"synth.matrix", CFG_LIST, "[256, 320, 384]", CFG_RANGE(1, 8),
     .choices = "128|160|192|224|256|320|384|448|512",
     .doc = "acquisition matrix of each site, in turn (site k uses item k mod n)"},
    {"synth.fov_mm", CFG_NUM, "380", CFG_RANGE(200, 600),
     .doc = "coronal field of view, mm (pixel spacing = fov / matrix)"},
    {"synth.snr", CFG_NUM, "22", CFG_ABOVE(0),
     .doc = "marrow signal over noise SD (Rician), before site variation of +-20%"},
    {"synth.lesion_contrast", CFG_NUM, "1", CFG_RANGE(0, 1), .min_excl = 1,
     .doc = "difficulty: 1 = textbook lesion and band, smaller = closer to normal marrow"},
    {"synth.supersample", CFG_INT, "2", CFG_RANGE(1, 4),
     .doc = "samples per pixel side and through the slice (partial volume)"},
    {"synth.encodings", CFG_LIST, "[explicit-le, implicit-le, explicit-be, deflated, rle]",
     CFG_RANGE(1, 5), .choices = "explicit-le|implicit-le|explicit-be|deflated|rle",
     .doc = "transfer syntaxes drawn for each series"},
    {"synth.vessel_matrix", CFG_INT, "64", CFG_RANGE(16, 256),
     .doc = "in-plane voxels of each vessel (MRA) series"},
    {"synth.vessel_slices", CFG_INT, "40", CFG_RANGE(4, 256),
     .doc = "slices of each vessel series"},
    {"synth.vessel_voxel_mm", CFG_NUM, "0.6", CFG_ABOVE(0),
     .doc = "isotropic voxel size of vessel series, mm"},
    {"synth.treated_fraction", CFG_NUM, "1", CFG_RANGE(0, 1),
     .doc = "fraction of patients grafted (vascularized bone graft) after the first visit"},
    {"synth.progression_fraction", CFG_NUM, "0.5", CFG_RANGE(0, 1),
     .doc = "fraction of affected hips that progress (stage increase or collapse) by the end"},
    {"synth.vessel_length_change_mm", CFG_NUM, "12.4",
     .doc = "mean change in vessel length after grafting, mm (the paper: 12.4)"},
    {"synth.vessel_length_change_sd_mm", CFG_NUM, "3.2", CFG_AT_LEAST(0),
     .doc = "SD of the change in vessel length, mm"},
    {"synth.vessel_branch_change", CFG_NUM, "2.7",
     .doc = "mean change in branch count after grafting (the paper: 2.7)"},
    {"synth.vessel_branch_change_sd", CFG_NUM, "1.1", CFG_AT_LEAST(0),
     .doc = "SD of the change in branch count"},
    {"synth.fault_fraction", CFG_NUM, "0.001", CFG_RANGE(0, 0.5),
     .doc = "faulty files to add, as a fraction of the clean DICOM files (0 = none)"},
    {"synth.preview", CFG_BOOL, "false",
     .doc = "also write synth_preview.png, a montage to judge realism (onfh synth --preview)"},

    {"ingest.dicom_dir", CFG_STR, "\"raw\"",
     .doc = "the DICOM tree to ingest (relative paths are taken from the run directory)"},
    {"ingest.labels_csv", CFG_STR, "\"labels.csv\"", .nullable = 1,
     .doc = "slice labels keyed by SOPInstanceUID (null: none; relative to the run directory)"},
    {"ingest.clinical_csv", CFG_STR, "\"clinical.csv\"", .nullable = 1,
     .doc = "clinical rows by patient, hip and visit (null: none; relative to the run directory)"},
    {"ingest.training_series", CFG_STR, "\"T1\"",
     .doc = "series whose SeriesDescription matches this extended regex (any case) give training "
            "slices"},
    {"ingest.vessel_series", CFG_STR, "\"MRA|TOF|ANGIO\"",
     .doc = "series whose SeriesDescription matches this regex are kept at native resolution for "
            "the vessels stage"},
    {"ingest.grid_size", CFG_INT, "224", CFG_RANGE(16, 2048),
     .doc = "training slices are resampled to this square grid (pixels), keeping aspect ratio"},
    {"ingest.clip_low", CFG_NUM, "0.005", CFG_RANGE(0, 0.5),
     .doc = "per series, intensities are clipped to these quantiles, then z-scored"},
    {"ingest.clip_high", CFG_NUM, "0.995", CFG_RANGE(0.5, 1), .doc = "upper clipping quantile"},
    {"ingest.site_key_env", CFG_STR, "\"ONFH_SITE_KEY\"",
     .doc = "environment variable holding the site key of the patient pseudonyms (HMAC-SHA-256)"},
    {"ingest.site_key", CFG_STR, NULL,
     .doc = "the site key itself, for synthetic data only: a real key belongs in the environment, "
            "since the resolved config is saved in the run directory"},
    {"ingest.deflate", CFG_INT, "1", CFG_RANGE(0, 9),
     .doc = "deflate level (after shuffle) of cohort.h5's pixel datasets (0: none); on the "
            "default cohort level 4 saves 2% of the file for 7% more CPU time, and compressing "
            "at all costs about as much CPU as the rest of ingest"},

    {"split.folds", CFG_INT, "5", CFG_RANGE(2, 64),
     .doc =
         "cross-validation folds; every patient's labelled slices land in exactly one test fold"},
    {"split.val_fraction", CFG_NUM, "0.15", CFG_RANGE(0.01, 0.9),
     .doc = "share of each fold's training slices set apart (by patient) for validation and early "
            "stopping"},
    {"split.level", CFG_ENUM, "patient", .choices = "patient|slice",
     .doc = "patient: grouped folds (default); slice: the paper's leaky slice-level protocol, "
            "only to show how much it inflates the metrics"},

    {"train.archs", CFG_LIST, "[mobilenet_v3_large]", CFG_RANGE(1, 16),
     .doc = "architectures to train, torchvision builder names (`onfh model list`)"},
    {"train.backend", CFG_ENUM, "auto", .choices = "auto|ref|refdev|dnnl|cuda",
     .doc = "compute backend: auto picks the GPU (cuda) where built and one is visible, else "
            "oneDNN where built, else ref; ref is the plain-C oracle (slow); refdev is ref on "
            "memory treated as a device's (a test of the GPU path's transfers)"},
    {"train.precision", CFG_ENUM, "fp32", .choices = "fp32|tf32",
     .doc = "fp32: float32 arithmetic throughout, on every backend; tf32: the cuda backend's "
            "convolutions and matrix products round their inputs to TF32 on tensor cores "
            "(sm_80 and newer; resnet50 trains 2x faster on an H200, README), the CPU backends "
            "refuse it. bf16 mixed precision is not there yet"},
    {"train.image_size", CFG_INT, "0", CFG_RANGE(0, 2048),
     .doc = "side of the images the model sees, pixels (0: cohort.h5's grid_size, no resampling)"},
    {"train.channels", CFG_INT, "1", CFG_RANGE(1, 3),
     .doc = "input planes (copies of the slice); an init_checkpoint's own count overrides it"},
    {"train.init_checkpoint", CFG_STR, NULL,
     .doc = "start from these weights (tools/torch_to_onfh.py converts ImageNet ones; tensors of "
            "another shape, such as a 1000-class head, keep onfh's initialisation)"},
    {"train.epochs", CFG_INT, "30", CFG_RANGE(1, 100000), .doc = "most epochs to train"},
    {"train.batch_size", CFG_INT, "32", CFG_RANGE(2, 4096),
     .doc = "images per optimizer step (the last incomplete batch of an epoch is dropped)"},
    {"train.optimizer", CFG_ENUM, "adamw", .choices = "adamw|sgd|rmsprop",
     .doc = "optimizer, with PyTorch's update rules"},
    {"train.lr", CFG_NUM, "0.001", CFG_ABOVE(0), .doc = "peak learning rate"},
    {"train.weight_decay", CFG_NUM, "0.0001", CFG_AT_LEAST(0),
     .doc = "weight decay of convolution and linear weights (never of BN parameters or biases)"},
    {"train.momentum", CFG_NUM, "0.9", CFG_RANGE(0, 1),
     .doc = "SGD momentum (Nesterov) and RMSprop momentum"},
    {"train.warmup_epochs", CFG_NUM, "1", CFG_AT_LEAST(0),
     .doc =
         "linear warm-up of the learning rate, then cosine decay to 0 over the remaining epochs"},
    {"train.patience", CFG_INT, "5", CFG_RANGE(0, 100000),
     .doc = "stop after this many epochs without a lower validation loss (0: never)"},
    {"train.class_weights", CFG_ENUM, "balanced", .choices = "balanced|none",
     .doc = "balanced: cross-entropy weights n / (2 n_class) from the training partition (3:1 "
            "lesion:normal in the paper)"},
    {"train.bn_momentum", CFG_NUM, "0.1", CFG_RANGE(0, 1),
     .doc = "batch-norm running-statistics momentum (0: the architecture's own; torchvision's "
            "MobileNetV3 uses 0.01, tuned for ImageNet's 40,000 steps per epoch: on a cohort's "
            "few hundred steps its running statistics lag so far that eval mode collapses)"},
    {"train.cache_mib", CFG_INT, "2048", CFG_RANGE(0, 1048576),
     .doc = "keep each partition's decoded slices in memory when they fit in this many MiB, so "
            "epochs after the first read nothing from cohort.h5 (0: read every epoch)"},
    {"train.ranks_per_model", CFG_INT, "0", CFG_RANGE(0, 1048576),
     .doc = "ranks that train one (architecture, fold) together, data-parallel; 0: all ranks, "
            "tasks one after another; k: the ranks form groups of k, tasks shared round-robin "
            "over the groups (1: one whole task per rank)"},
    {"train.comm", CFG_ENUM, "auto", .choices = "auto|mpi|nccl",
     .doc = "gradient all-reduce transport across a model's ranks: mpi (host memory; a GPU's "
            "gradients pass through the host), nccl (on the GPUs, cuda backend only), auto (nccl "
            "for the cuda backend on several ranks with a GPU each, else mpi)"},
    {"train.bucket_mib", CFG_NUM, "25", CFG_RANGE(0.001, 4096),
     .doc = "gradients are all-reduced in buckets of about this size, each started as soon as "
            "backward has finished its gradients (MiB)"},
    {"train.label_smoothing", CFG_NUM, "0", CFG_RANGE(0, 0.5), .doc = "label smoothing"},
    {"train.augment", CFG_BOOL, "true",
     .doc = "augment training slices (flip, rotation, scale, intensity), keyed by seed, epoch and "
            "slice"},
    {"train.augment_rotation_deg", CFG_NUM, "10", CFG_RANGE(0, 180),
     .doc = "largest rotation, degrees"},
    {"train.augment_scale", CFG_NUM, "0.1", CFG_RANGE(0, 0.5),
     .doc = "largest relative zoom in or out"},
    {"train.augment_flip", CFG_BOOL, "true", .doc = "left-right flips (the two hips mirror)"},
    {"train.augment_intensity", CFG_NUM, "0.1", CFG_RANGE(0, 1),
     .doc = "largest relative gain change and offset (z units) of the intensities"},

    {"evaluate.bootstrap_resamples", CFG_INT, "9999", CFG_RANGE(1, 10000000),
     .doc = "patient-level bootstrap resamples for every CI (scipy.stats.bootstrap's default)"},
    {"evaluate.confidence_level", CFG_NUM, "0.95", CFG_RANGE(0.5, 0.999),
     .doc = "coverage of the BCa and percentile intervals"},
    {"evaluate.select_metric", CFG_ENUM, "roc_auc",
     .choices = "roc_auc|pr_auc|accuracy|sensitivity|specificity|f1|brier",
     .doc = "pooled out-of-fold metric that selects the architecture (ties: evaluation.json "
            "states the rule)"},
    {"evaluate.baselines", CFG_BOOL, "true",
     .doc = "evaluate a majority-class and an intensity-feature logistic-regression baseline "
            "beside the CNNs"},
    {"evaluate.calibration_bins", CFG_INT, "10", CFG_RANGE(2, 100),
     .doc = "equal-width bins of the calibration curves in evaluation.h5"},
    {"evaluate.compare_run", CFG_STR, NULL,
     .doc = "run directory of the same cohort trained with split.level: slice (the paper's "
            "protocol), evaluated side by side so that the inflation from leakage is reported"},

    {"vessels.sigmas_mm", CFG_LIST, "[0.3, 0.5, 0.7, 0.9]", CFG_RANGE(1, 16),
     .doc = "Frangi scales, mm (converted per axis from each series' voxel spacing)"},
    {"vessels.frangi_alpha", CFG_NUM, "0.5", CFG_ABOVE(0),
     .doc = "Frangi's plate-like suppression (Ra term)"},
    {"vessels.frangi_beta", CFG_NUM, "0.5", CFG_ABOVE(0),
     .doc = "Frangi's blob-like suppression (Rb term)"},
    {"vessels.frangi_c", CFG_NUM, "0", CFG_AT_LEAST(0),
     .doc = "Frangi's structureness scale (0: half the largest Hessian norm of the series at "
            "each scale, Frangi's suggestion)"},
    {"vessels.threshold_low", CFG_NUM, "0.05", CFG_RANGE(0, 1),
     .doc = "hysteresis: vessel mask = components of vesselness > low that reach > high"},
    {"vessels.threshold_high", CFG_NUM, "0.2", CFG_RANGE(0, 1),
     .doc = "hysteresis upper threshold on the vesselness (0..1)"},
    {"vessels.min_object_mm3", CFG_NUM, "1", CFG_AT_LEAST(0),
     .doc = "mask components smaller than this (mm^3) are dropped before thinning"},
    {"vessels.prune_mm", CFG_NUM, "2", CFG_AT_LEAST(0),
     .doc = "skeleton spurs (end-end or junction-end branches) shorter than this are pruned "
            "(the synthetic trees' shortest branch is 3 mm)"},
    {"vessels.end_extension_max_mm", CFG_NUM, "3", CFG_AT_LEAST(0),
     .doc = "end points are continued to the vessel mask's edge, less its half-width, by at "
            "most this (0: no extension)"},
    {"vessels.junction_line_mm", CFG_LIST, "[1, 3.5]", CFG_RANGE(2, 2),
     .doc = "junctions: the stretch of each branch, mm of path from the junction, whose straight "
            "line is continued to where the branches' lines meet (skelgraph.h)"},
    {"vessels.junction_shift_max_mm", CFG_NUM, "3", CFG_AT_LEAST(0),
     .doc = "junctions move to where the branches' lines meet when that is at most this far "
            "(0: no junction correction)"},
    {"vessels.bootstrap_resamples", CFG_INT, "9999", CFG_RANGE(1, 10000000),
     .doc = "patient-level bootstrap resamples of the treatment response's mean change"},
    {"vessels.confidence_level", CFG_NUM, "0.95", CFG_RANGE(0.5, 0.999),
     .doc = "coverage of the treatment response's t and bootstrap intervals"},
    {"vessels.overlays", CFG_BOOL, "true",
     .doc = "write vessel_overlays/: per series, the MIP with the pruned skeleton (PNG)"},

    {"progression.cutoff_days", CFG_INT, "365", CFG_RANGE(0, 36500),
     .doc = "forecast cut-off: the models see only visits up to this many days after baseline; "
            "patients without a visit after it are left out (their outcome is not a forecast)"},
    {"progression.slice_threshold", CFG_NUM, "0.5", CFG_RANGE(0, 1),
     .doc = "a slice counts as showing a lesion when the CNN's probability is >= this "
            "(feature frac_above)"},
    {"progression.features", CFG_LIST,
     "[p_mean, p_max, frac_above, extent_mm, vessel_length_mm, vessel_branches]", CFG_RANGE(1, 6),
     .choices = "p_mean|p_max|frac_above|extent_mm|vessel_length_mm|vessel_branches",
     .doc = "per-visit features the LSTM and the logistic regression see, each once "
            "(progression.h5 keeps all six either way)"},
    {"progression.hidden", CFG_INT, "16", CFG_RANGE(1, 4096), .doc = "LSTM hidden size"},
    {"progression.layers", CFG_INT, "1", CFG_RANGE(1, 2), .doc = "stacked LSTM layers"},
    {"progression.dropout", CFG_NUM, "0", CFG_RANGE(0, 0.9),
     .doc = "dropout between LSTM layers (training only; needs layers: 2)"},
    {"progression.epochs", CFG_INT, "300", CFG_RANGE(1, 100000),
     .doc = "LSTM training epochs (passes over the training patients of a fold)"},
    {"progression.batch_size", CFG_INT, "64", CFG_RANGE(1, 1048576),
     .doc = "patients per LSTM optimizer step"},
    {"progression.lr", CFG_NUM, "0.01", CFG_ABOVE(0), .doc = "AdamW learning rate of the LSTM"},
    {"progression.weight_decay", CFG_NUM, "0.01", CFG_AT_LEAST(0),
     .doc = "AdamW weight decay of the LSTM weights (biases are not decayed)"},
    {"progression.folds", CFG_INT, "5", CFG_RANGE(2, 100),
     .doc = "patient-level cross-validation folds, stratified by outcome"},
    {"progression.backend", CFG_ENUM, "auto", .choices = "auto|ref|dnnl|refdev|cuda",
     .doc = "backend of the CNN scoring the slices and of the LSTM (auto: dnnl when built with "
            "oneDNN, else ref; cuda only when asked: its cuDNN LSTM has not yet run on a GPU; "
            "refdev checks the device path on CPUs)"},
    {"progression.bootstrap_resamples", CFG_INT, "9999", CFG_RANGE(1, 10000000),
     .doc = "patient bootstrap resamples of the AUC intervals"},
    {"progression.confidence_level", CFG_NUM, "0.95", CFG_RANGE(0.5, 0.999),
     .doc = "coverage of the AUC intervals"},
    {"progression.calibration_bins", CFG_INT, "5", CFG_RANGE(2, 100),
     .doc = "equal-width bins of the calibration table in progression.json"},
};

const int onfh_config_n_keys = (int)(sizeof onfh_config_keys / sizeof onfh_config_keys[0]);
