# simulations/ - gpupool-sim, the capacity-planning simulator.
SIM_SRCS := $(wildcard simulations/*.c)
SIM_OBJS := $(SIM_SRCS:%.c=$(BUILD)/%.o)

$(SIM_OBJS): CFLAGS += -Isimulations

$(BUILD)/gpupool-sim: $(SIM_OBJS) $(LIB)
	$(CC) $(LDFLAGS) $(SIM_OBJS) $(LIB) -o $@ $(LIBS_ETCD) $(LIBS_BASE)

PROGRAMS += $(BUILD)/gpupool-sim
