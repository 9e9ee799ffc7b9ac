# gpupool-coordinator, the regional coordinator.
COORD_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard coordinator/*.c))

# The web console's files, compiled into the coordinator: embed.sh turns
# them into a C table (ui_assets.h), so the binary needs nothing installed.
UI_ASSETS := $(sort $(wildcard coordinator/ui/*.html coordinator/ui/*.css coordinator/ui/*.js \
                               coordinator/ui/*.svg))
COORD_OBJS += $(BUILD)/coordinator/ui_assets.o

ifneq ($(wildcard coordinator/main.c),)
PROGRAMS += $(BUILD)/gpupool-coordinator
endif

$(BUILD)/gpupool-coordinator: $(COORD_OBJS) $(LIB)
	$(CC) $(LDFLAGS) $^ -o $@ $(LIBS_HTTP) $(LIBS_ZMQ) $(LIBS_ETCD) $(LIBS_BASE)

$(BUILD)/coordinator/ui_assets.c: $(UI_ASSETS) coordinator/ui/embed.sh
	@mkdir -p $(@D)
	sh coordinator/ui/embed.sh $(UI_ASSETS) >$@.tmp && mv $@.tmp $@
$(BUILD)/coordinator/ui_assets.o: $(BUILD)/coordinator/ui_assets.c coordinator/ui_assets.h
	$(CC) $(CFLAGS) -Icoordinator -c $< -o $@
