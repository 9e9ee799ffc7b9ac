# The pool invariant checker used by the coordinator's integration tests.
TEST_PROGRAMS += $(BUILD)/tests/coordinator/pool_check

$(BUILD)/tests/coordinator/pool_check: $(BUILD)/tests/coordinator/pool_check.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_ETCD) $(LIBS_BASE)

# A TCP relay that partition tests stop and resume.
TEST_PROGRAMS += $(BUILD)/tests/coordinator/tcpproxy

$(BUILD)/tests/coordinator/tcpproxy: $(BUILD)/tests/coordinator/tcpproxy.o
	$(CC) $(LDFLAGS) $^ -o $@

# The receiving end of $NOTIFY_SOCKET, for the daemons' sd_notify messages.
TEST_PROGRAMS += $(BUILD)/tests/coordinator/notify_listen

$(BUILD)/tests/coordinator/notify_listen: $(BUILD)/tests/coordinator/notify_listen.o
	$(CC) $(LDFLAGS) $^ -o $@

# Sends raw ZeroMQ frames to a coordinator (malformed messages).
TEST_PROGRAMS += $(BUILD)/tests/coordinator/wiresend

$(BUILD)/tests/coordinator/wiresend: $(BUILD)/tests/coordinator/wiresend.o
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_ZMQ)

# An agent that bids for a job it was not asked about.
TEST_PROGRAMS += $(BUILD)/tests/coordinator/bidspoof

$(BUILD)/tests/coordinator/bidspoof: $(BUILD)/tests/coordinator/bidspoof.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_ZMQ) $(LIBS_ETCD) $(LIBS_BASE)

# The bid round's decisions, tested alone (coordinator/decide.h).
$(BUILD)/tests/coordinator/test_round.o: CFLAGS += -Icoordinator
$(BUILD)/tests/coordinator/test_round.t: $(BUILD)/coordinator/decide.o
