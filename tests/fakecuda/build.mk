# The fake CUDA driver and NVML the shim's tests run against (no GPU needed):
# $(BUILD)/tests/fakecuda/libcuda.so.1 and libnvidia-ml.so.1.  Test programs
# link the fake libcuda and find it at run time through LD_LIBRARY_PATH, so
# that the same programs can run against a real driver.

FAKECUDA_DIR  := $(BUILD)/tests/fakecuda
FAKECUDA_LIB  := $(FAKECUDA_DIR)/libcuda.so.1
FAKENVML_LIB  := $(FAKECUDA_DIR)/libnvidia-ml.so.1

$(FAKECUDA_DIR)/%.o: CFLAGS += -Ishim -fvisibility=hidden

$(FAKECUDA_LIB): $(FAKECUDA_DIR)/fakecuda.o $(FAKECUDA_DIR)/fakestate.o
	$(CC) $(LDFLAGS) -shared -Wl,-Bsymbolic -Wl,-soname,libcuda.so.1 -o $@ $^ -lpthread

$(FAKENVML_LIB): $(FAKECUDA_DIR)/fakenvml.o $(FAKECUDA_DIR)/fakestate.o
	$(CC) $(LDFLAGS) -shared -Wl,-Bsymbolic -Wl,-soname,libnvidia-ml.so.1 -o $@ $^ -lpthread

TEST_PROGRAMS += $(FAKECUDA_LIB) $(FAKENVML_LIB)
