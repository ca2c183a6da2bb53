# h2steer — build, test, demo and bench. `make help` lists the targets.

BUILD    ?= build
CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
ARCH     := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror
CPPFLAGS := -D_GNU_SOURCE -Iinclude -Iuser -I$(BUILD)
LDLIBS   := -lbpf -lelf -lz -lnghttp2 -lcyaml -lyaml -ljansson -lcares -lresolv -lmicrohttpd -lm -pthread

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	      -Iinclude -Ivmlinux -Ibpf

# Every host object of the project; daemon and CLI link what they use, tests link all.
LIB_SRCS := addr bytequeue hash subset cgroup config conn daemon h2_server h2_upstream hdrs \
	    loader log loop maps outbuf picker registry relay cli cmd_service cmd_backend \
	    cmd_stats cmd_conn cmd_route outlier resolver resolver_file resolver_dns dns health \
	    discovery stats strbuf metrics control takeover yamlpos lifecycle cni pods cmd_pod \
	    splice workers
LIB_OBJS := $(LIB_SRCS:%=$(BUILD)/%.o)

DAEMON := $(BUILD)/h2steerd
CLI    := $(BUILD)/h2steer
CNI    := $(BUILD)/h2steer-cni
PEER   := $(BUILD)/h2s-grpc-peer

.PHONY: all deps test test-unit test-kernel test-e2e demo bench profile clean help
.DELETE_ON_ERROR:

all: $(DAEMON) $(CLI) $(CNI) $(PEER)

help:
	@echo "make deps   install the Debian packages the build, tests, demo and bench need"
	@echo "make        build BPF objects, skeleton, h2steerd, h2steer and the test peer"
	@echo "make test   unit, kernel and end-to-end tests (root)"
	@echo "make demo   one gRPC connection spread over three local backends (root)"
	@echo "make bench  h2steer vs direct, nginx, haproxy and nghttpx (root; about 3 minutes);"
	@echo "            BENCH_ARGS='--scale --publish': also the scale checks; results to tools/bench/"
	@echo "make profile  where the daemon's time goes: perf stat/record, callgrind (root; ~1 min);"
	@echo "            PROFILE_ARGS=--publish: to tools/bench/profile.md"

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

$(BUILD)/%.o: user/%.c user/*.h include/*.h $(BUILD)/h2steer.skel.h | $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c $< -o $@

$(DAEMON): $(BUILD)/h2steerd.o $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(CLI): $(BUILD)/h2steer.o $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(CNI): $(BUILD)/h2steer_cni.o $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

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

# PROFILE_ARGS: options of tools/profile.py (--publish, --quick, -n N; see --help).
profile: deps
	$(MAKE) all
	tools/profile.py $(PROFILE_ARGS)

clean:
	rm -rf $(BUILD) vmlinux/vmlinux.h
