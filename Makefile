# gpupool — top-level build.
#
#   make            build everything into $(BUILD) (default build/)
#   make test       install missing Debian packages, build, run every test with prove
#   make asan       the same tests built with AddressSanitizer + UBSan (into build/asan)
#   make bench      every benchmark; make bench-<part> one of them (tests/bench/<part>.sh)
#   make chaos      the chaos suite with every fault (tests/chaos/chaos.t)
#   make soak       the soak test at full length (tests/soak/soak.t)
#   make fuzz       libFuzzer targets (clang) for every parser of outside input,
#                   FUZZ_S seconds each (tests/fuzz/build.mk)
#   make demo       bring up a local multi-region pool and run a sample workload
#   make ui-shots   screenshots of every page of the web console, in $(BUILD)/ui-shots
#   make deps       install the Debian packages gpupool needs, when missing
#
# Each part adds its own rules in <folder>/build.mk (and tests/<part>/build.mk);
# this file holds what they share.  Unit tests are tests/<part>/test_*.c, each
# built to $(BUILD)/tests/<part>/test_*.t and run directly by prove; shell
# integration tests are tests/<part>/*.t.

BUILD    ?= build
SAN      ?=
CC       ?= cc
CFLAGS   := -std=c11 -Wall -Wextra -Werror -O2 -g -D_GNU_SOURCE -fPIC \
            -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
            -Icommon -I$(BUILD)/gen -Itests -MMD -MP
LDFLAGS  :=
ifeq ($(SAN),1)
CFLAGS   += -fsanitize=address,undefined -fno-sanitize-recover=undefined \
            -fno-omit-frame-pointer -O1
LDFLAGS  += -fsanitize=address,undefined
endif

# Libraries, by what a program needs of them.
LIBS_ETCD := -lcurl -ljansson -lssl -lcrypto -lprotobuf-c
LIBS_ZMQ  := -lzmq
LIBS_HTTP := -lmicrohttpd -lgnutls
LIBS_BASE := -lpthread -lm -ldl

DEB_PACKAGES := etcd-server etcd-client libcurl4-openssl-dev libjansson-dev \
                libprotobuf-c-dev protobuf-c-compiler \
                libssl-dev libzmq3-dev libmicrohttpd-dev libgnutls28-dev gnuplot-nox \
                libtest-harness-perl openssl curl iproute2 procps gcc make python3 \
                gcc-aarch64-linux-gnu libc6-arm64-cross qemu-user podman runc docker-registry \
                python3-yaml python3-zmq chromium chromium-driver python3-selenium prometheus

LIB      := $(BUILD)/libgpupool.a
COMMON_SRCS := $(wildcard common/*.c)
COMMON_OBJS := $(COMMON_SRCS:%.c=$(BUILD)/%.o)
# etcd's watch messages, in C by protoc-c from common/etcd_watch.proto.
PB_GEN   := $(BUILD)/gen/etcd_watch.pb-c
COMMON_OBJS += $(PB_GEN).o
TAP_OBJ  := $(BUILD)/tests/tap.o

# Filled in by the parts' build.mk files.
PROGRAMS :=
TEST_PROGRAMS :=

UNIT_SRCS := $(wildcard tests/*/test_*.c)
UNIT_TESTS := $(UNIT_SRCS:tests/%.c=$(BUILD)/tests/%.t)
TEST_PROGRAMS += $(UNIT_TESTS)

.SECONDARY:
.PHONY: all test asan bench chaos soak demo deps clean check-tests ui-shots
all:

include $(sort $(wildcard */build.mk tests/*/build.mk))

all: $(LIB) $(PROGRAMS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(PB_GEN).c: common/etcd_watch.proto
	@mkdir -p $(@D)
	protoc-c --c_out=$(@D) --proto_path=common $<
$(PB_GEN).h: $(PB_GEN).c ;
$(PB_GEN).o: $(PB_GEN).c
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/common/etcd_watch.o: $(PB_GEN).h

$(LIB): $(COMMON_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

# A unit test links the whole library and every library it may need; the
# linker keeps only what the test uses.
$(BUILD)/tests/%.t: $(BUILD)/tests/%.o $(TAP_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_HTTP) $(LIBS_ZMQ) $(LIBS_ETCD) $(LIBS_BASE)

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing $$missing"; \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

check-tests: all $(TEST_PROGRAMS)

# Tests that judge how a limiter shares the machine's time between its own
# programs run after the others, alone: beside another test on two cores
# (under the sanitizers above all) their programs are not scheduled evenly,
# and the split they measure is the scheduler's, not the shim's.
ALONE_TESTS := tests/shim/share.t
PAR_TESTS = $(filter-out $(ALONE_TESTS),$(sort $(wildcard tests/*/*.t)))
# run_tests BUILD ENV UNIT_TESTS: both parts, failing if either failed
run_tests = GP_BUILD=$(abspath $(1)) $(2) prove -j2 $(3) $(PAR_TESTS); st=$$?; \
	GP_BUILD=$(abspath $(1)) $(2) prove $(ALONE_TESTS) && exit $$st

test: deps
	$(MAKE) check-tests
	$(call run_tests,$(BUILD),,$(abspath $(UNIT_TESTS)))

asan: deps
	$(MAKE) BUILD=build/asan SAN=1 check-tests
	$(call run_tests,build/asan,GP_SAN=1,$(abspath $(UNIT_SRCS:tests/%.c=build/asan/tests/%.t)))

bench: deps all $(TEST_PROGRAMS)
	@for b in $(sort $(wildcard tests/bench/*.sh)); do \
	  echo "== $$b"; GP_BUILD=$(abspath $(BUILD)) bash $$b || exit 1; done

bench-%: deps all $(TEST_PROGRAMS)
	GP_BUILD=$(abspath $(BUILD)) bash tests/bench/$*.sh

bench-live-vs-sim: bench-live_vs_sim ; @:

# Every fault of the chaos suite (make test runs three of them).
chaos: deps all $(TEST_PROGRAMS)
	GP_BUILD=$(abspath $(BUILD)) CHAOS_FAULTS=all prove -v tests/chaos/chaos.t

# The soak test at full length (make test runs 4,000 jobs).
soak: deps all $(TEST_PROGRAMS)
	GP_BUILD=$(abspath $(BUILD)) SOAK_JOBS=$${SOAK_JOBS:-200000} SOAK_RATE=$${SOAK_RATE:-200} \
	  prove -v tests/soak/soak.t

# The web console's pages in headless Chromium (tests/ui/console.t), as PNGs.
ui-shots: deps all
	GP_BUILD=$(abspath $(BUILD)) GP_UI_SHOTS=$(abspath $(BUILD))/ui-shots prove -v tests/ui/console.t
	@echo "ui-shots: $(abspath $(BUILD))/ui-shots"

demo: deps all
	GP_BUILD=$(abspath $(BUILD)) bash deploy/local-pool.sh demo

clean:
	rm -rf $(BUILD) build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
