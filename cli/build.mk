# gpupool, the command-line client (cli/).
CLI_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cli/*.c))
# `gpupool plan --add --prices` uses gpupool-sim's priced plan (all of the
# simulator but its main).
CLI_SIM_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out simulations/sim_main.c,$(wildcard simulations/*.c)))
$(BUILD)/cli/plan.o: CFLAGS += -Isimulations

ifneq ($(wildcard cli/main.c),)
PROGRAMS += $(BUILD)/gpupool
endif

$(BUILD)/gpupool: $(CLI_OBJS) $(CLI_SIM_OBJS) $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_HTTP) $(LIBS_ZMQ) $(LIBS_ETCD) $(LIBS_BASE)
