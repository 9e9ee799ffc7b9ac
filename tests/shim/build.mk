# The shim's test programs (run under LD_PRELOAD by tests/shim/*.t and
# tests/bench/shim.sh) and its unit tests' extra objects.  The programs link
# the fake libcuda and find a driver at run time through LD_LIBRARY_PATH.

SHIMTEST_DIR := $(BUILD)/tests/shim
SHIMTEST_PROGS := $(SHIMTEST_DIR)/shimtest $(SHIMTEST_DIR)/shimbench $(SHIMTEST_DIR)/slicectl

$(SHIMTEST_DIR)/%.o: CFLAGS += -Ishim

$(SHIMTEST_DIR)/shimtest: $(SHIMTEST_DIR)/shimtest.o $(TAP_OBJ) $(LIB) $(FAKECUDA_LIB)
	$(CC) $(LDFLAGS) $(SHIMTEST_DIR)/shimtest.o $(TAP_OBJ) $(LIB) -o $@ \
	  -L$(FAKECUDA_DIR) -l:libcuda.so.1 -ldl -lpthread -lm

$(SHIMTEST_DIR)/shimbench: $(SHIMTEST_DIR)/shimbench.o $(LIB) $(FAKECUDA_LIB)
	$(CC) $(LDFLAGS) $(SHIMTEST_DIR)/shimbench.o $(LIB) -o $@ \
	  -L$(FAKECUDA_DIR) -l:libcuda.so.1 -lpthread -lm

$(SHIMTEST_DIR)/slicectl: $(SHIMTEST_DIR)/slicectl.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ -lpthread

# The configuration parser is the shim's own (not in libgpupool.a), so this
# unit test has its own link rule.
$(SHIMTEST_DIR)/test_config.t: $(SHIMTEST_DIR)/test_config.o $(BUILD)/shim/obj/shim/shim_config.o \
                                $(TAP_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ -lpthread -lm

TEST_PROGRAMS += $(SHIMTEST_PROGS) $(SHIM_SO)
