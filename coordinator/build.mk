# gpupool-coordinator (the regional coordinator) and gpupool (the CLI).
COORD_SRCS := $(filter-out coordinator/cli%.c,$(wildcard coordinator/*.c))
CLI_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard coordinator/cli*.c))
COORD_OBJS := $(COORD_SRCS:%.c=$(BUILD)/%.o)

ifneq ($(wildcard coordinator/main.c),)
PROGRAMS += $(BUILD)/gpupool-coordinator
endif
ifneq ($(wildcard coordinator/cli.c),)
PROGRAMS += $(BUILD)/gpupool
endif

$(BUILD)/gpupool-coordinator: $(COORD_OBJS) $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_HTTP) $(LIBS_ZMQ) $(LIBS_ETCD) $(LIBS_BASE)

$(BUILD)/gpupool: $(CLI_OBJS) $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_HTTP) $(LIBS_ZMQ) $(LIBS_ETCD) $(LIBS_BASE)
