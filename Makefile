# onfh: the one entry point. Build, dependencies, run, test, bench, format, install.
#
#   make            build bin/onfh (detects MPI, parallel HDF5, libyaml, oneDNN, CUDA)
#   make run        install missing packages, build, run configs/default.yaml
#   make test       install missing packages, build, run every test, check formatting
#   make test SAN=1 the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      benchmarks that print figures beside a peer (never part of make test)
#   make gpu-bundle build the GPU check's programs and the libraries a bare GPU node lacks (.gpu/)
#   make gpu-check  on a GPU node (driver, CUDA, PyTorch; nothing else): op tests, golden
#                   fixtures and training throughput beside PyTorch (tools/gpu_check.sh)
#   make format / format-check / install / clean
#
# Honoured on clusters without root: CC, MPICC, HDF5_DIR, YAML_DIR, DNNL_DIR, CUDA_HOME, PREFIX,
# GPU=0/1 (default: 1 where nvcc, cuDNN and NCCL are found), SAN=1.

VERSION := 0.1.0
PREFIX ?= /usr/local
MPICC ?= mpicc
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc
CLANG_FORMAT ?= clang-format
SAN ?= 0

# A CC given by the user is the compiler under the MPI wrapper (Open MPI and MPICH both honour these).
ifneq ($(origin CC),default)
MPI_ENV := OMPI_CC=$(CC) MPICH_CC=$(CC)
endif

# ---------------------------------------------------------------------------------------------
# Detection. Required: MPI, parallel HDF5, libyaml, zlib, libpng. Optional: oneDNN, CUDA.

pc = $(shell pkg-config $(1) $(2) 2>/dev/null)

HAVE_MPI := $(if $(shell command -v $(MPICC) 2>/dev/null),1,0)
MPI_DESC := $(shell $(MPICC) --showme:version 2>/dev/null | sed 's/^mpicc: //; s/ .Language.*//')
ifeq ($(HAVE_MPI),0)
MPI_DESC := missing
else ifeq ($(MPI_DESC),)
MPI_DESC := $(MPICC)
endif

ifdef HDF5_DIR
HDF5_CFLAGS := -I$(HDF5_DIR)/include
HDF5_LIBS := -L$(HDF5_DIR)/lib -Wl,-rpath,$(HDF5_DIR)/lib -lhdf5
HDF5_CONF := $(HDF5_DIR)/include/H5pubconf.h
else
HDF5_CFLAGS := $(call pc,--cflags,hdf5-openmpi)
HDF5_LIBS := $(call pc,--libs,hdf5-openmpi)
HDF5_CONF := $(firstword $(wildcard $(patsubst -I%,%/H5pubconf.h,$(filter -I%,$(HDF5_CFLAGS)))))
endif
HAVE_HDF5 := $(if $(HDF5_CONF),$(if $(shell grep -l 'define H5_HAVE_PARALLEL 1' $(HDF5_CONF) 2>/dev/null),1,0),0)
HDF5_DESC := $(if $(filter 1,$(HAVE_HDF5)),$(shell sed -n 's/.*define H5_VERSION "\(.*\)"/\1/p' $(HDF5_CONF)) parallel,missing)

ifdef YAML_DIR
YAML_CFLAGS := -I$(YAML_DIR)/include
YAML_LIBS := -L$(YAML_DIR)/lib -Wl,-rpath,$(YAML_DIR)/lib -lyaml
HAVE_YAML := $(if $(wildcard $(YAML_DIR)/include/yaml.h),1,0)
else
YAML_LIBS := $(call pc,--libs,yaml-0.1)
HAVE_YAML := $(if $(YAML_LIBS),1,0)
endif

PNG_CFLAGS := $(call pc,--cflags,libpng zlib)
PNG_LIBS := $(call pc,--libs,libpng zlib)
HAVE_PNG := $(if $(PNG_LIBS),1,0)

# DICOM codecs: libjpeg-turbo, OpenJPEG, CharLS (lib/dicom's decoders).
DICOM_CFLAGS := $(call pc,--cflags,libjpeg libopenjp2 charls)
DICOM_LIBS := $(call pc,--libs,libjpeg libopenjp2 charls)
HAVE_CODECS := $(if $(DICOM_LIBS),1,0)

# Optional: libdeflate does HDF5's deflate filter (lib/h5/h5deflate.c, 2.4x zlib on cohort.h5);
# without it HDF5's own zlib filter runs. The files are the same format either way.
DEFLATE_LIBS := $(call pc,--libs,libdeflate)
HAVE_LIBDEFLATE := $(if $(DEFLATE_LIBS),1,0)
DEFLATE_DESC := $(if $(filter 1,$(HAVE_LIBDEFLATE)),libdeflate $(call pc,--modversion,libdeflate),zlib (no libdeflate))

ifdef DNNL_DIR
DNNL_CFLAGS := -I$(DNNL_DIR)/include
DNNL_LIBS := -L$(DNNL_DIR)/lib -Wl,-rpath,$(DNNL_DIR)/lib -ldnnl
DNNL_H := $(wildcard $(DNNL_DIR)/include/dnnl.h)
else
DNNL_H := $(wildcard /usr/include/dnnl.h)
DNNL_LIBS := -ldnnl
endif
HAVE_DNNL := $(if $(DNNL_H),1,0)
DNNL_DESC := $(if $(DNNL_H),$(shell awk '/define DNNL_VERSION_(MAJOR|MINOR|PATCH)/{printf "%s%s", s, $$3; s="."}' $(dir $(DNNL_H))oneapi/dnnl/dnnl_version.h $(dir $(DNNL_H))dnnl_version.h 2>/dev/null),off)

HAVE_NVCC := $(if $(wildcard $(NVCC)),1,0)
CUDNN_H := $(firstword $(wildcard $(CUDA_HOME)/include/cudnn_version.h /usr/include/cudnn_version.h /usr/include/x86_64-linux-gnu/cudnn_version.h))
NCCL_H := $(firstword $(wildcard $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h))
HAVE_CUDA := $(if $(and $(filter 1,$(HAVE_NVCC)),$(CUDNN_H),$(NCCL_H)),1,0)
GPU ?= $(HAVE_CUDA)
ifeq ($(GPU),1)
ifneq ($(HAVE_CUDA),1)
$(error GPU=1 but nvcc, cudnn_version.h or nccl.h is missing under CUDA_HOME=$(CUDA_HOME))
endif
endif
CUDA_DESC := $(if $(filter 1,$(HAVE_CUDA)),nvcc $(shell $(NVCC) --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p') cudnn $(shell awk '/define CUDNN_(MAJOR|MINOR) /{printf "%s%s", s, $$3; s="."}' $(CUDNN_H)) nccl $(shell awk '/define NCCL_(MAJOR|MINOR) /{printf "%s%s", s, $$3; s="."}' $(NCCL_H)),off)

CMOCKA_LIBS := $(call pc,--libs,cmocka)

# ---------------------------------------------------------------------------------------------
# Flags

VARIANT := $(if $(filter 1,$(SAN)),san,rel)
BUILD := build/$(VARIANT)
ONFH := $(BUILD)/onfh

ifeq ($(SAN),1)
OPT := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
OPT := -O2
endif
CFLAGS ?= -g
# -Wno-format-truncation: messages are built with snprintf into bounded buffers on purpose.
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wno-format-truncation $(OPT) $(CFLAGS) \
	-I. -I$(BUILD) $(HDF5_CFLAGS) $(YAML_CFLAGS) $(PNG_CFLAGS) $(DICOM_CFLAGS) $(DNNL_CFLAGS) \
	-DONFH_HAVE_DNNL=$(HAVE_DNNL) -DONFH_HAVE_LIBDEFLATE=$(HAVE_LIBDEFLATE) -DONFH_GPU=$(GPU) -MMD -MP
LDFLAGS_ALL := $(OPT) $(LDFLAGS)
LIBS := $(HDF5_LIBS) $(YAML_LIBS) $(PNG_LIBS) $(DICOM_LIBS) $(DEFLATE_LIBS) $(if $(filter 1,$(HAVE_DNNL)),$(DNNL_LIBS)) -lpthread -lm
# The oneDNN backend's hand-written loops (lib/nn/dnnl) run on OpenMP, the runtime oneDNN is built
# with (Debian's libdnnl: libgomp), so both share one thread pool; nothing else uses -fopenmp.
# -fno-math-errno: sqrt in a loop (AdamW, RMSprop) is then one vsqrtpd, where errno's rules
# keep it a scalar call with a branch that stops the loop vectorising (AdamW ran scalar, 20 ms
# of a resnet18 step); the result is IEEE's correctly rounded square root either way.
ifeq ($(HAVE_DNNL),1)
$(BUILD)/lib/nn/dnnl/%.o: CFLAGS_ALL += -fopenmp -fno-math-errno
LIBS += -fopenmp
endif
# The vesselness filter's passes are written as plain loops over contiguous floats for the
# vectoriser, which GCC runs at -O2 only where no remainder loop is needed (its very-cheap cost
# model): -O3 lets it vectorise them (about 2x on the vessels stage, bench/vessels.sh).
$(BUILD)/lib/image/vesselness.o: CFLAGS_ALL += -O3
# The same for resample_apply's passes (ingest resamples every training slice) and the decoder's
# per-voxel loops (keep_stored_bits runs over every voxel ingest decodes).
$(BUILD)/lib/image/resample.o: CFLAGS_ALL += -O3
$(BUILD)/lib/dicom/dicom_decode.o: CFLAGS_ALL += -O3
ifeq ($(GPU),1)
CFLAGS_ALL += -I$(CUDA_HOME)/include
LIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudnn -lnccl -lcublas -lcudart -lstdc++
endif

# sm_80 (A100) and sm_90 (H100/H200) code, plus PTX for newer cards.
NVCCFLAGS ?= -O2 -std=c++17 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
	-gencode arch=compute_90,code=compute_90
NVCCFLAGS_ALL := $(NVCCFLAGS) -I. -Xcompiler -Wall,-Werror,-Wno-format-truncation,-fPIC -MMD -MP

# ---------------------------------------------------------------------------------------------
# Sources: every .c under lib/ pipeline/ stages/ is part of the library but pipeline/main.c.

SRC := $(sort $(shell find lib pipeline stages -name '*.c' 2>/dev/null))
CU_SRC := $(sort $(shell find lib stages -name '*.cu' 2>/dev/null))
LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(filter-out pipeline/main.c,$(SRC)))
CU_OBJ := $(patsubst %.cu,$(BUILD)/%.cu.o,$(CU_SRC))
LIB_A := $(BUILD)/libonfh.a
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
MPI_TEST_SRC := $(sort $(wildcard tests/mpi/*.c))
MPI_TEST_BIN := $(patsubst tests/mpi/%.c,$(BUILD)/tests/mpi/%,$(MPI_TEST_SRC))
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
FORMAT_FILES := $(sort $(shell find lib pipeline stages tests bench tools -name '*.[ch]' -o -name '*.cu' 2>/dev/null))

BANNER := onfh $(VERSION) [$(VARIANT)] | mpi: $(MPI_DESC) | hdf5: $(HDF5_DESC) | yaml: $(if $(filter 1,$(HAVE_YAML)),$(call pc,--modversion,yaml-0.1),missing) | deflate: $(DEFLATE_DESC) | onednn: $(DNNL_DESC) | cuda: $(CUDA_DESC) | GPU=$(GPU)

.PHONY: all deps run test check unit-tests bench gpu-bundle gpu-check fuzz format format-check install clean banner need-required
.DEFAULT_GOAL := all

all: banner need-required $(ONFH) $(if $(filter rel,$(VARIANT)),bin/onfh)

banner:
	@echo "$(BANNER)"

MISSING := $(if $(filter 0,$(HAVE_MPI)),MPI($(MPICC))) $(if $(filter 0,$(HAVE_HDF5)),parallel-HDF5) \
	$(if $(filter 0,$(HAVE_YAML)),libyaml) $(if $(filter 0,$(HAVE_PNG)),libpng/zlib) \
	$(if $(filter 0,$(HAVE_CODECS)),libjpeg-turbo/OpenJPEG/CharLS)
need-required:
	@if [ -n "$(strip $(MISSING))" ]; then \
	  echo "onfh: missing required libraries: $(strip $(MISSING))."; \
	  echo "  run 'tools/deps.sh' (Debian/Ubuntu, root or sudo), or point HDF5_DIR/YAML_DIR/MPICC at your installs."; \
	  exit 1; fi

# Version, commit and flags for `onfh --version`; rewritten only when they change.
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty)
BUILDINFO := \#define ONFH_VERSION "$(VERSION)"\n\#define ONFH_GIT_COMMIT "$(GIT_COMMIT)"\n\#define ONFH_BUILD_FLAGS "$(VARIANT) GPU=$(GPU) DNNL=$(HAVE_DNNL) $(subst ",,$(OPT) $(CFLAGS))"\n
$(BUILD)/buildinfo.h: FORCE
	@mkdir -p $(@D)
	@printf '$(BUILDINFO)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
FORCE:

# V=1 prints whole command lines.
Q := $(if $(filter 1,$(V)),,@)

$(BUILD)/%.o: %.c | $(BUILD)/buildinfo.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(MPI_ENV) $(MPICC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/pipeline/version.o: $(BUILD)/buildinfo.h

# CUDA sources compile wherever nvcc exists, GPU or not, so GPU code cannot rot unnoticed;
# they are linked only with GPU=1.
$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(@D)
	@$(if $(Q),echo "  NVCC    $<")
	$(Q)$(NVCC) $(NVCCFLAGS_ALL) -c $< -o $@

$(LIB_A): $(LIB_OBJ) $(if $(filter 1,$(GPU)),$(CU_OBJ))
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)ar rcs $@ $^

$(ONFH): $(BUILD)/pipeline/main.o $(LIB_A) $(if $(filter 1,$(HAVE_NVCC)),$(CU_OBJ))
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(MPI_ENV) $(MPICC) $(LDFLAGS_ALL) -o $@ $(BUILD)/pipeline/main.o $(LIB_A) $(LIBS)

bin/onfh: $(ONFH)
	@mkdir -p bin
	@# copied then renamed: a running bin/onfh (a training job) keeps its file
	@cp $(ONFH) bin/onfh.tmp && mv -f bin/onfh.tmp bin/onfh

$(BUILD)/tests/%: tests/unit/%.c $(LIB_A)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(MPI_ENV) $(MPICC) $(CFLAGS_ALL) -o $@ $< $(LIB_A) $(LIBS) $(CMOCKA_LIBS)

$(BUILD)/tests/mpi/%: tests/mpi/%.c $(LIB_A)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(MPI_ENV) $(MPICC) $(CFLAGS_ALL) -o $@ $< $(LIB_A) $(LIBS)

$(BUILD)/bench/%: bench/%.c $(LIB_A)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  BENCH   $@")
	$(Q)$(MPI_ENV) $(MPICC) $(CFLAGS_ALL) -o $@ $< $(LIB_A) $(LIBS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------------------------------------
# Entry points. deps runs first, then a fresh make re-detects what deps installed.

deps:
	@tools/deps.sh build

# One rank per core (nproc, which would count OMP_NUM_THREADS instead), one thread per rank
# (mpirun binds a rank to a socket above 2 ranks, where OpenMP would start a thread per core in
# every rank); Open MPI refuses root unless told
# (toolchain.md). The last line printed is the report's path; `bin/onfh status runs/default`
# shows the stages and training tasks meanwhile.
RUN_CONFIG := configs/default.yaml
run:
	@tools/deps.sh build
	@$(MAKE) --no-print-directory all
	@if [ "$$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi; \
	  np=$$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc); export OMP_NUM_THREADS=1; \
	  dir=$$(bin/onfh config get $(RUN_CONFIG) run.output_root)/$$(bin/onfh config get $(RUN_CONFIG) run.name); \
	  start=$$(date +%s); \
	  echo "mpirun -q -np $$np bin/onfh run $(RUN_CONFIG)    (progress: bin/onfh status $$dir)"; \
	  mpirun -q -np $$np bin/onfh run $(RUN_CONFIG); rc=$$?; \
	  if [ $$rc -eq 4 ]; then echo "make run: the synthetic cohort's planted faults were skipped as they should be: see $$dir/ingest_report.csv"; \
	  elif [ $$rc -ne 0 ]; then exit $$rc; fi; \
	  s=$$(($$(date +%s) - start)); \
	  echo "make run: every stage finished in $$((s / 60)) min $$((s % 60)) s; the report:"; \
	  case $$dir in /*) echo "$$dir/report/index.html" ;; *) echo "$$PWD/$$dir/report/index.html" ;; esac

test:
	@tools/deps.sh test
	@$(MAKE) --no-print-directory check

check: all $(UNIT_BIN) $(MPI_TEST_BIN) $(BENCH_BIN) # bench programs are built, not run: they cannot rot
	@tests/run.sh $(BUILD)

unit-tests: $(UNIT_BIN) $(MPI_TEST_BIN)

bench:
	@tools/deps.sh bench
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@bench/run.sh $(BUILD) $(BENCH)

# The GPU check runs where none of our Debian packages are: its programs are built here without
# oneDNN (the check compares cuda with ref) into build/gpu, and packed with the libraries they
# need (tools/gpu_bundle.sh). The node reuses the CUDA libraries of its PyTorch install.
GPU_PROGRAMS := tests/test_nn_model tests/test_nn_backend tests/test_nn_lstm_device \
	tests/test_nn_nccl bench/bench_train bench/bench_progression
gpu-bundle:
	@$(MAKE) --no-print-directory BUILD=build/gpu DNNL_DIR=/nonexistent GPU=1 $(addprefix build/gpu/,$(GPU_PROGRAMS))
	@tools/gpu_bundle.sh build/gpu .gpu

gpu-check:
	@tools/gpu_check.sh .gpu

# libFuzzer on the DICOM reader: FUZZ_SECONDS (600) from a corpus of synthetic and fixture
# files; a crash leaves its input in build/fuzz/ (copy it to tests/fixtures/dicom/fuzz/).
FUZZ_SECONDS ?= 600
FUZZ_SRC := tests/fuzz/fuzz_dicom_read.c $(wildcard lib/dicom/*.c) $(wildcard lib/util/*.c)
fuzz:
	@tools/deps.sh test
	@mkdir -p build/fuzz/corpus
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I. $(DICOM_CFLAGS) \
	  $(HDF5_CFLAGS) -o build/fuzz/fuzz_dicom_read $(FUZZ_SRC) $(DICOM_LIBS) -lz -lm -lmpi \
	  $(filter -L%,$(HDF5_LIBS))
	@cp tests/fixtures/dicom/*.dcm build/fuzz/corpus/ 2>/dev/null || true
	@if [ -d runs/default/raw ]; then find runs/default/raw -type f | head -200 | \
	  while read -r f; do cp "$$f" build/fuzz/corpus/$$(echo "$$f" | sha256sum | cut -c1-16); done; fi
	cd build/fuzz && ./fuzz_dicom_read -max_total_time=$(FUZZ_SECONDS) -max_len=262144 \
	  -timeout=10 -rss_limit_mb=2048 corpus

format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check:
	@$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES) && echo "format-check: $(words $(FORMAT_FILES)) files clean"

install: all
	install -D -m 755 bin/onfh $(DESTDIR)$(PREFIX)/bin/onfh

clean:
	rm -rf build bin .gpu
