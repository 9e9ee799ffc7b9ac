# gpupool-agent: the node agent.
AGENT_SRCS := $(wildcard nodeagent/*.c)
AGENT_OBJS := $(AGENT_SRCS:%.c=$(BUILD)/%.o)
AGENT_LIB_OBJS := $(filter-out $(BUILD)/nodeagent/main.o,$(AGENT_OBJS))
PROGRAMS += $(BUILD)/gpupool-agent

$(BUILD)/gpupool-agent: $(AGENT_OBJS) $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_HTTP) $(LIBS_ZMQ) $(LIBS_ETCD) $(LIBS_BASE)

# Unit tests of the agent's modules link them from an archive (so that a
# test pulls in only the modules it uses).
$(BUILD)/nodeagent/libagent.a: $(AGENT_LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/agent/%.o: CFLAGS += -Inodeagent

$(BUILD)/tests/agent/%.t: $(BUILD)/tests/agent/%.o $(TAP_OBJ) $(BUILD)/nodeagent/libagent.a $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_HTTP) $(LIBS_ZMQ) $(LIBS_ETCD) $(LIBS_BASE)
