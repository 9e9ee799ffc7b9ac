# libgpupool-shim.so: the LD_PRELOAD library that enforces a slice.
#
# It links no part of libgpupool.a (no jansson or curl in a job's process):
# the few common modules it needs are compiled into it, and everything but
# the interposed entry points is hidden (-fvisibility=hidden; GP_EXPORT
# marks the exports).  -Bsymbolic keeps the shim's own references inside it.

SHIM_SRCS   := shim/shim.c shim/shim_config.c shim/memory.c shim/vmm.c shim/pools.c \
               shim/context.c shim/graph.c shim/meminfo.c shim/compute.c shim/share.c shim/alloc_table.c
SHIM_COMMON := common/slice_region.c common/err.c common/util.c common/log.c
SHIM_OBJS   := $(patsubst %.c,$(BUILD)/shim/obj/%.o,$(SHIM_SRCS) $(SHIM_COMMON))
SHIM_SO     := $(BUILD)/libgpupool-shim.so

$(BUILD)/shim/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fvisibility=hidden -Ishim -c $< -o $@

$(SHIM_SO): $(SHIM_OBJS)
	$(CC) $(LDFLAGS) -shared -Wl,-Bsymbolic -Wl,-soname,libgpupool-shim.so -o $@ $^ \
	  -ldl -lpthread

PROGRAMS += $(SHIM_SO)
