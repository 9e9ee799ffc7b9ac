# tests/fuzz/ - libFuzzer targets for the parsers that read bytes from outside:
# the job spec, the wire message, the configuration file, the shim's
# environment, the HTTP request target, the simulator's openb and JSON-lines
# readers, an etcd watch stream's message.  Each fuzz_<t>.c defines LLVMFuzzerTestOneInput; corpus/<t>/ holds
# its seeds and every input a fuzzer once failed on.
#
#   make fuzz         build them with clang -fsanitize=fuzzer,address,undefined
#                     (into build/fuzz) and run each for FUZZ_S seconds (60);
#                     a crash, a leak or a UBSan report stops it (exit 1) and
#                     leaves the input in build/fuzz/artifacts/<t>/
#   make fuzz-smoke   the same binaries over their corpus only, no mutation
#
# The same targets are built with the project's compiler and replay.c into
# $(BUILD)/tests/fuzz/replay_<t>; tests/fuzz/replay.t runs them over the
# corpus in `make test` (and under ASan/UBSan in `make asan`).

FUZZ_TARGETS := uri jobspec wire config shimenv siminput watchmsg
FUZZ_CC      ?= clang
FUZZ_S       ?= 60
FUZZ_BUILD   := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=c11 -g -O1 -D_GNU_SOURCE -fno-omit-frame-pointer $(FUZZ_SAN) \
                -fsanitize=fuzzer-no-link -Icommon -I$(BUILD)/gen -Ishim -Isimulations -Itests/fuzz
FUZZ_LIB_SRCS := $(COMMON_SRCS) $(PB_GEN).c shim/shim_config.c simulations/sim_input.c tests/fuzz/memfile.c
FUZZ_LIB     := $(FUZZ_BUILD)/libfuzzgp.a
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/obj/common/etcd_watch.o: $(PB_GEN).h
$(FUZZ_LIB): $(FUZZ_LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer $^ -o $@ $(LIBS_HTTP) $(LIBS_ZMQ) $(LIBS_ETCD) \
	  $(LIBS_BASE)

.PHONY: fuzz fuzz-build fuzz-smoke
fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/artifacts/$$t; \
	  echo "== fuzz_$$t: $(FUZZ_S) s"; \
	  if ! $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_S) -print_final_stats=1 \
	       -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t/ \
	       $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t >$(FUZZ_BUILD)/fuzz_$$t.log 2>&1; then \
	    tail -n 40 $(FUZZ_BUILD)/fuzz_$$t.log; \
	    echo "fuzz: fuzz_$$t failed; the input is in $(FUZZ_BUILD)/artifacts/$$t/"; exit 1; \
	  fi; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_BUILD)/fuzz_$$t.log); \
	  cov=$$(grep -o 'cov: [0-9]*' $(FUZZ_BUILD)/fuzz_$$t.log | tail -n 1); \
	  echo "fuzz: fuzz_$$t execs $$execs crashes 0 $$cov corpus $$(ls $(FUZZ_BUILD)/corpus/$$t | wc -l)"; \
	done

fuzz-smoke: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_BUILD)/fuzz_$$t -runs=0 tests/fuzz/corpus/$$t >$(FUZZ_BUILD)/smoke_$$t.log 2>&1 || \
	    { tail -n 40 $(FUZZ_BUILD)/smoke_$$t.log; echo "fuzz-smoke: fuzz_$$t failed"; exit 1; }; \
	  echo "fuzz-smoke: fuzz_$$t $$(ls tests/fuzz/corpus/$$t | wc -l) inputs ok"; \
	done

# The replay build, part of make test.
FUZZ_REPLAY := $(FUZZ_TARGETS:%=$(BUILD)/tests/fuzz/replay_%)
TEST_PROGRAMS += $(FUZZ_REPLAY)

$(BUILD)/tests/fuzz/%.o: CFLAGS += -Ishim -Isimulations -Itests/fuzz

$(BUILD)/tests/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o \
                              $(BUILD)/tests/fuzz/memfile.o $(BUILD)/shim/obj/shim/shim_config.o \
                              $(BUILD)/simulations/sim_input.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_HTTP) $(LIBS_ZMQ) $(LIBS_ETCD) $(LIBS_BASE)
