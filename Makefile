# h2steer — build, test, demo and bench. `make help` lists the targets.

BUILD    ?= build
CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
ARCH     := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror
# -MMD: each object's header dependencies, read back below (a change to a header rebuilds
# exactly the objects that include it).
CPPFLAGS := -D_GNU_SOURCE -Iinclude -MMD -MP

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	      -Iinclude -Ivmlinux -Ibpf

# The layers of user/ (DESIGN.md 4a, README "Working on h2steer"), lowest first. A layer's
# code is compiled with its own folder and the folders of USES_<layer> on the include path,
# nothing else: an #include of a header from a layer above (or beside) fails to build. Each
# layer is one static archive; a binary links the archives of its layer and of those it uses.
LAYERS         := common kernel balance config proxy discovery daemon cli cni
USES_common    :=
USES_kernel    := common
USES_balance   := kernel common
USES_config    := balance kernel common
USES_proxy     := config balance kernel common
USES_discovery := proxy config balance kernel common
USES_daemon    := discovery proxy config balance kernel common
USES_cli       := kernel common
USES_cni       := kernel common
# What each layer's code calls outside the project.
LIBS_common    :=
LIBS_kernel    := -lbpf -lelf -lz -ljansson
LIBS_balance   := -lm
LIBS_config    := -lcyaml -lyaml
LIBS_proxy     := -lnghttp2
LIBS_discovery := -lcares -lresolv -lcurl -ljansson
LIBS_daemon    := -lmicrohttpd -ljansson -pthread
LIBS_cli       := -ljansson
LIBS_cni       := -ljansson
# The programs' main files (not in their layer's archive).
MAINS          := daemon/h2steerd cli/h2steer cni/h2steer_cni

layer_inc  = -Iuser/$(1) $(foreach u,$(USES_$(1)),-Iuser/$(u))
layer_srcs = $(filter-out $(MAINS:%=user/%.c),$(wildcard user/$(1)/*.c))
# A layer and every layer below it that it uses, highest first (static link order).
layer_deps = $(1) $(USES_$(1))
layer_libs = $(foreach l,$(call layer_deps,$(1)),$(LIBS_$(l)))
# Every include path of user/, for the tests (they reach into any layer).
ALL_INC    := $(foreach l,$(LAYERS),-Iuser/$(l))

# One build variant: objects and archives under $(1), compiled with the flags $(2).
#   $(1)/<layer>/<file>.o, $(1)/libh2s_<layer>.a
define variant
$(1)/%.o: user/%.c | $(BUILD)/h2steer.skel.h
	@mkdir -p $$(@D)
	$$(CC) $$(CPPFLAGS) -I$(BUILD) $$(call layer_inc,$$(firstword $$(subst /, ,$$*))) \
		$(2) $$(WARN) -c $$< -o $$@
$(foreach l,$(LAYERS),
$(1)/libh2s_$(l).a: $$(patsubst user/%.c,$(1)/%.o,$$(call layer_srcs,$(l)))
	@rm -f $$@
	$$(AR) rcs $$@ $$^
)
endef
# An archive list for linking: the layers $(2) of variant $(1).
archives = $(foreach l,$(2),$(1)/libh2s_$(l).a)

OBJ := $(BUILD)/obj
$(eval $(call variant,$(OBJ),$(CFLAGS)))

DAEMON := $(BUILD)/h2steerd
CLI    := $(BUILD)/h2steer
CNI    := $(BUILD)/h2steer-cni
PEER   := $(BUILD)/h2s-grpc-peer

.PHONY: all deps test test-unit test-kernel test-e2e test-walls demo bench bench-kube profile soak clean help
.DELETE_ON_ERROR:

all: $(DAEMON) $(CLI) $(CNI) $(PEER)

help:
	@echo "make deps   install the Debian packages the build, tests, demo and bench need"
	@echo "make        build BPF objects, skeleton, h2steerd, h2steer and the test peer"
	@echo "make test   the layer walls, unit, fuzz-corpus, kernel and end-to-end tests (root)"
	@echo "make fuzz   each libFuzzer harness for FUZZ_SECONDS (60); FUZZ_TARGETS='dns cni': some"
	@echo "make demo   one gRPC connection spread over three local backends (root)"
	@echo "make bench  h2steer vs direct, nginx, haproxy and nghttpx (root; about 3 minutes);"
	@echo "            BENCH_ARGS='--scale --publish': also the scale checks; results to tools/bench/"
	@echo "make profile  where the daemon's time goes: perf stat/record, callgrind (root; ~1 min);"
	@echo "            PROFILE_ARGS=--publish: to tools/bench/profile.md"
	@echo "make soak   SOAK_MINUTES (30) of mixed load, backend churn and attacks; RSS, fds and"
	@echo "            failed RPCs checked (root); figures to build/soak/soak.json"

deps:
	@tools/deps.sh

vmlinux/vmlinux.h:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD):
	mkdir -p $@

$(BUILD)/h2steer.bpf.o: bpf/h2steer.bpf.c bpf/h2s_maps.bpf.h include/*.h vmlinux/vmlinux.h | $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/h2steer.skel.h: $(BUILD)/h2steer.bpf.o
	$(BPFTOOL) gen skeleton $< name h2steer_bpf > $@.tmp && mv $@.tmp $@

# program $(1) from main file $(2) in layer $(3), variant dir $(4), extra link flags $(5)
define program
$(1): $(4)/$(2).o $(call archives,$(4),$(call layer_deps,$(3)))
	$$(CC) $(5) -o $$@ $$^ $(call layer_libs,$(3))
endef
$(eval $(call program,$(DAEMON),daemon/h2steerd,daemon,$(OBJ),$(CFLAGS)))
$(eval $(call program,$(CLI),cli/h2steer,cli,$(OBJ),$(CFLAGS)))
$(eval $(call program,$(CNI),cni/h2steer_cni,cni,$(OBJ),$(CFLAGS)))

# The Go test peer (gRPC server and client used by tests, demo and bench), built offline
# against Debian's golang-google-grpc-dev.
$(PEER): tests/grpc/peer/*.go | $(BUILD)
	cd tests/grpc/peer && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= \
		GOCACHE=$(CURDIR)/$(BUILD)/gocache go build -o $(CURDIR)/$@ .

include tests/tests.mk

demo: deps
	$(MAKE) all
	tools/demo.py

# BENCH_ARGS: options of tools/bench.py (--scale, --publish, --quick, -r N; see --help).
bench: deps
	$(MAKE) all
	tools/bench.py $(BENCH_ARGS)

# The Kubernetes source at scale (tools/bench_kube.py --help): sync time, RSS, CPU per event.
bench-kube: deps
	$(MAKE) all
	tools/bench_kube.py $(BENCH_KUBE_ARGS)

# PROFILE_ARGS: options of tools/profile.py (--publish, --quick, -n N; see --help).
profile: deps
	$(MAKE) all
	tools/profile.py $(PROFILE_ARGS)

# SOAK_MINUTES (30): length of the load; SOAK_ARGS: other options of tools/soak.py (--help).
# The release daemon (build/h2steerd): RSS and CPU are the daemon's, not a sanitizer's.
SOAK_MINUTES ?= 30
soak: deps
	$(MAKE) all
	tools/soak.py --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

clean:
	rm -rf $(BUILD) vmlinux/vmlinux.h

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
