# Programs of the benchmarks (tests/bench/*.sh).
TEST_PROGRAMS += $(BUILD)/tests/bench/placement_load

$(BUILD)/tests/bench/placement_load: $(BUILD)/tests/bench/placement_load.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_ETCD) $(LIBS_BASE)
