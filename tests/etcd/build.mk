# tests/etcd: the etcd client's integration test program (run by the *.t
# scripts against real etcd clusters) and its benchmark.
ETCD_TEST_BINS := $(BUILD)/tests/etcd/etcd_client_test $(BUILD)/tests/etcd/etcd_bench
TEST_PROGRAMS += $(ETCD_TEST_BINS)

$(BUILD)/tests/etcd/etcd_client_test: $(BUILD)/tests/etcd/etcd_client_test.o $(TAP_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_ETCD) $(LIBS_BASE)

$(BUILD)/tests/etcd/etcd_bench: $(BUILD)/tests/etcd/etcd_bench.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_ETCD) $(LIBS_BASE)

# A client with local endpoints writing and watching (local_endpoints.t).
TEST_PROGRAMS += $(BUILD)/tests/etcd/home_probe

$(BUILD)/tests/etcd/home_probe: $(BUILD)/tests/etcd/home_probe.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_ETCD) $(LIBS_BASE)
