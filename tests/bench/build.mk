# Programs of the benchmarks (tests/bench/*.sh); load.c: what the load
# generators share.
TEST_PROGRAMS += $(BUILD)/tests/bench/placement_load

$(BUILD)/tests/bench/placement_load: $(BUILD)/tests/bench/placement_load.o \
                                      $(BUILD)/tests/bench/load.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_ETCD) $(LIBS_BASE)

TEST_PROGRAMS += $(BUILD)/tests/bench/rss_floor

$(BUILD)/tests/bench/rss_floor: $(BUILD)/tests/bench/rss_floor.o
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_HTTP) $(LIBS_ZMQ) $(LIBS_ETCD) $(LIBS_BASE)

# The WAN benchmark's load generator (tests/bench/wan.sh, tests/coordinator/wan.t).
TEST_PROGRAMS += $(BUILD)/tests/bench/wan_load

$(BUILD)/tests/bench/wan_load: $(BUILD)/tests/bench/wan_load.o $(BUILD)/tests/bench/load.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_ETCD) $(LIBS_BASE)

# What checking an agent's proposal costs per bid (tests/bench/proposal.sh).
TEST_PROGRAMS += $(BUILD)/tests/bench/proposal_check

$(BUILD)/tests/bench/proposal_check: $(BUILD)/tests/bench/proposal_check.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_ETCD) $(LIBS_BASE)
