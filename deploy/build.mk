# make install / make uninstall: the programs, the shim, the systemd units,
# the example configurations and the documentation, in the layout the units,
# the example configurations and the agent's defaults expect when PREFIX is /usr:
#
#   $(PREFIX)/bin/              gpupool gpupool-coordinator gpupool-agent gpupool-sim
#   $(PREFIX)/lib/gpupool/      libgpupool-shim.so (the agent's default `shim`)
#   $(SYSTEMDDIR)/              gpupool-coordinator.service gpupool-agent.service
#   $(DOCDIR)/                  README.md, the example configurations, the openb trace
#
# DESTDIR stages the tree (packaging); nothing is written under /etc, the
# configuration is the operator's: copy an example to /etc/gpupool/.
# uninstall removes exactly what install wrote (the list in INSTALLED below).

PREFIX     ?= /usr/local
SYSTEMDDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/gpupool

INSTALL_BINS  := gpupool gpupool-coordinator gpupool-agent gpupool-sim
INSTALL_UNITS := gpupool-coordinator.service gpupool-agent.service
INSTALL_DOCS  := README.md deploy/coordinator.conf.example deploy/agent.conf.example
INSTALL_DATA  := $(wildcard simulations/data/openb/*)

INSTALLED := $(INSTALL_BINS:%=$(PREFIX)/bin/%) \
             $(PREFIX)/lib/gpupool/libgpupool-shim.so \
             $(INSTALL_UNITS:%=$(SYSTEMDDIR)/%) \
             $(foreach f,$(INSTALL_DOCS),$(DOCDIR)/$(notdir $(f))) \
             $(foreach f,$(INSTALL_DATA),$(DOCDIR)/openb/$(notdir $(f)))

# Installed copies of the units and example configurations name the
# installed paths (the sources name PREFIX=/usr's); the agent's example sets
# `shim` to the installed shim, so any PREFIX works without editing.
INSTALL_SED := -e 's|/usr/bin/|$(PREFIX)/bin/|g' \
               -e 's|/usr/lib/gpupool/|$(PREFIX)/lib/gpupool/|g' \
               -e 's|/usr/share/doc/gpupool/|$(DOCDIR)/|g' \
               -e 's|^\#shim = |shim = |'

# $(call s_install_edited,SOURCE,DEST,MODE): SOURCE through INSTALL_SED, written
# to a temporary name and renamed, so that a failed install leaves no half file.
s_install_edited = sed $(INSTALL_SED) $(1) > $(2).tmp && chmod $(3) $(2).tmp && mv $(2).tmp $(2)

.PHONY: install uninstall
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/gpupool \
	  $(DESTDIR)$(SYSTEMDDIR) $(DESTDIR)$(DOCDIR)/openb
	install -m 0755 $(INSTALL_BINS:%=$(BUILD)/%) $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 $(BUILD)/libgpupool-shim.so $(DESTDIR)$(PREFIX)/lib/gpupool/
	$(foreach u,$(INSTALL_UNITS),$(call s_install_edited,deploy/systemd/$(u),$(DESTDIR)$(SYSTEMDDIR)/$(u),0644) &&) true
	$(foreach f,$(INSTALL_DOCS),$(call s_install_edited,$(f),$(DESTDIR)$(DOCDIR)/$(notdir $(f)),0644) &&) true
	install -m 0644 $(INSTALL_DATA) $(DESTDIR)$(DOCDIR)/openb/

uninstall:
	rm -f $(INSTALLED:%=$(DESTDIR)%)
	-rmdir $(DESTDIR)$(PREFIX)/lib/gpupool $(DESTDIR)$(DOCDIR)/openb $(DESTDIR)$(DOCDIR) 2>/dev/null

# make image: the container image deploy/kubernetes runs, from
# deploy/container/Containerfile (needs a container runtime and the Debian
# mirror; the manifests' image names are checked against IMAGE by
# tests/deploy/manifests.t).
IMAGE_NAME        ?= registry.example.com/gpupool/gpupool
IMAGE             ?= $(IMAGE_NAME):$(shell sed -n 's/^\#define GP_VERSION "\(.*\)"/\1/p' common/daemon.h)
CONTAINER_RUNTIME ?= podman

.PHONY: image
image:
	$(CONTAINER_RUNTIME) build -t $(IMAGE) -f deploy/container/Containerfile .
