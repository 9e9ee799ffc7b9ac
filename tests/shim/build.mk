# The shim's test programs (run under LD_PRELOAD by tests/shim/*.t and
# tests/bench/shim.sh) and its unit tests' extra objects.  The programs link
# the fake libcuda and find a driver at run time through LD_LIBRARY_PATH.

SHIMTEST_DIR := $(BUILD)/tests/shim
SHIMTEST_PROGS := $(SHIMTEST_DIR)/shimtest $(SHIMTEST_DIR)/shimbench $(SHIMTEST_DIR)/slicectl \
                  $(SHIMTEST_DIR)/dlopentest $(SHIMTEST_DIR)/O0/libgpupool-shim.so \
                  $(SHIMTEST_DIR)/lockorder $(SHIMTEST_DIR)/libctorlib.so

$(SHIMTEST_DIR)/%.o: CFLAGS += -Ishim

$(SHIMTEST_DIR)/shimtest: $(SHIMTEST_DIR)/shimtest.o $(TAP_OBJ) $(LIB) $(FAKECUDA_LIB)
	$(CC) $(LDFLAGS) $(SHIMTEST_DIR)/shimtest.o $(TAP_OBJ) $(LIB) -o $@ \
	  -L$(FAKECUDA_DIR) -l:libcuda.so.1 -ldl -lpthread -lm

$(SHIMTEST_DIR)/shimbench: $(SHIMTEST_DIR)/shimbench.o $(LIB) $(FAKECUDA_LIB)
	$(CC) $(LDFLAGS) $(SHIMTEST_DIR)/shimbench.o $(LIB) -o $@ \
	  -L$(FAKECUDA_DIR) -l:libcuda.so.1 -lpthread -lm

# links no libcuda: it opens one by path
$(SHIMTEST_DIR)/dlopentest: $(SHIMTEST_DIR)/dlopentest.o $(TAP_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ -ldl -lpthread -lm

# a driver call from a library constructor while the shim loads the driver
$(SHIMTEST_DIR)/lockorder: $(SHIMTEST_DIR)/lockorder.o $(TAP_OBJ) $(FAKECUDA_LIB)
	$(CC) $(LDFLAGS) -rdynamic $(SHIMTEST_DIR)/lockorder.o $(TAP_OBJ) -o $@ \
	  -L$(FAKECUDA_DIR) -l:libcuda.so.1 -ldl -lpthread

$(SHIMTEST_DIR)/libctorlib.so: $(SHIMTEST_DIR)/ctorlib.o
	$(CC) $(LDFLAGS) -shared -o $@ $^ -ldl

# The shim built without optimisation (tests/shim/noopt.t): nothing in it
# may depend on what the optimiser does (a tail call in dlsym).
SHIM_O0_OBJS := $(patsubst %.c,$(SHIMTEST_DIR)/O0/obj/%.o,$(SHIM_SRCS) $(SHIM_COMMON))

$(SHIMTEST_DIR)/O0/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -O0 -fvisibility=hidden -Ishim -c $< -o $@

$(SHIMTEST_DIR)/O0/libgpupool-shim.so: $(SHIM_O0_OBJS)
	$(CC) $(LDFLAGS) -shared -Wl,-Bsymbolic -Wl,-soname,libgpupool-shim.so -o $@ $^ -ldl -lpthread

$(SHIMTEST_DIR)/slicectl: $(SHIMTEST_DIR)/slicectl.o $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ -lpthread

# The configuration parser is the shim's own (not in libgpupool.a), so this
# unit test has its own link rule.
$(SHIMTEST_DIR)/test_config.t: $(SHIMTEST_DIR)/test_config.o $(BUILD)/shim/obj/shim/shim_config.o \
                                $(TAP_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ -lpthread -lm

TEST_PROGRAMS += $(SHIMTEST_PROGS) $(SHIM_SO)
