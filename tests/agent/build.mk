# Test programs of the node agent's integration tests.
TEST_PROGRAMS += $(BUILD)/tests/agent/bidprobe

$(BUILD)/tests/agent/bidprobe: $(BUILD)/tests/agent/bidprobe.o $(TAP_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_ZMQ) $(LIBS_ETCD) $(LIBS_BASE)
