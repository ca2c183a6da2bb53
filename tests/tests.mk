# Test targets, included by the top-level Makefile.
#
#   test-unit    Criterion, host build with AddressSanitizer + UBSan: pure functions
#   test-kernel  Criterion, root: the real BPF programs on real sockets in throwaway cgroups
#   test-e2e     pytest, root: h2steerd with real gRPC servers and clients (tests/e2e)
#   test-walls   the layers of user/: no folder can include a header of one it may not use
#   test-fuzz    every libFuzzer harness over its committed corpus (tests/fuzz.mk; make fuzz)

SAN        := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_DIR   := $(BUILD)/asan
UNIT_SRCS  := $(wildcard tests/unit/*.c)
KERN_SRCS  := $(wildcard tests/kernel/*.c)
# The tests see every layer (they test each one), and link all of them.
TEST_LIBS  := $(call archives,$(ASAN_DIR),daemon discovery proxy config balance cli cni kernel common)
TEST_LDLIBS := $(sort $(foreach l,$(LAYERS),$(LIBS_$(l)))) -lcriterion

# The same daemon under ThreadSanitizer, for the tests of more than one event loop.
TSAN       := -fsanitize=thread
TSAN_DIR   := $(BUILD)/tsan

$(eval $(call variant,$(ASAN_DIR),-O1 -g $(SAN)))
$(eval $(call variant,$(TSAN_DIR),-O1 -g $(TSAN)))
# The daemon the end-to-end tests run: sanitizers on, so a memory error or a leak at exit fails
# the test that caused it.
$(eval $(call program,$(ASAN_DIR)/h2steerd,daemon/h2steerd,daemon,$(ASAN_DIR),-O1 -g $(SAN)))
$(eval $(call program,$(TSAN_DIR)/h2steerd,daemon/h2steerd,daemon,$(TSAN_DIR),-O1 -g $(TSAN)))

$(BUILD)/unit-tests: $(UNIT_SRCS) tests/unit/*.h include/*.h $(TEST_LIBS)
	$(CC) -D_GNU_SOURCE -Iinclude $(ALL_INC) -I$(BUILD) -Itests/unit -O1 -g $(SAN) $(WARN) -o $@ \
		$(UNIT_SRCS) $(TEST_LIBS) $(TEST_LDLIBS)

$(BUILD)/kernel-tests: $(KERN_SRCS) tests/kernel/*.h include/*.h $(TEST_LIBS)
	$(CC) -D_GNU_SOURCE -Iinclude $(ALL_INC) -I$(BUILD) -Itests/kernel -O1 -g $(SAN) $(WARN) -o $@ \
		$(KERN_SRCS) $(TEST_LIBS) $(TEST_LDLIBS)

# One kube informer against a real (test) API server, printing what it sees
# (tests/e2e/test_kube_informer.py): the discovery layer and those below it, sanitizers on.
KUBE_PROBE := $(BUILD)/kube-informer-probe
KUBE_PROBE_LAYERS := $(call layer_deps,discovery)
$(KUBE_PROBE): tests/kube/informer_probe.c $(call archives,$(ASAN_DIR),$(KUBE_PROBE_LAYERS))
	$(CC) -D_GNU_SOURCE -Iinclude $(ALL_INC) -I$(BUILD) -O1 -g $(SAN) $(WARN) -o $@ $^ \
		$(call layer_libs,discovery)

PYTEST := /usr/bin/python3 -m pytest -p no:cacheprovider

# A sanitizer report at a test process's exit (a leak, say) does not always fail the test under
# Criterion, so any report in the output fails the run.
SANITIZER_GATE = 2>&1 | tee $(BUILD)/$@.log; rc=$${PIPESTATUS[0]}; \
	if grep -q 'Sanitizer\|runtime error:' $(BUILD)/$@.log; then \
		echo "$@: sanitizer report above"; exit 1; fi; exit $$rc

test-unit: SHELL := /bin/bash
test-unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests --jobs 2 $(SANITIZER_GATE)

test-kernel: SHELL := /bin/bash
test-kernel: $(BUILD)/kernel-tests
	@[ "$$(id -u)" -eq 0 ] || { echo "test-kernel needs root (sudo make test)"; exit 1; }
	$(BUILD)/kernel-tests --jobs 1 $(SANITIZER_GATE)

# A stand-in for another connect-time balancer (the coexistence test loads it with bpftool).
$(BUILD)/other_lb.bpf.o: tests/bpf/other_lb.bpf.c vmlinux/vmlinux.h | $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

comma := ,
empty :=
space := $(empty) $(empty)
WALLS := $(foreach l,$(LAYERS),$(l):$(subst $(space),$(comma),$(strip $(USES_$(l)))))

test-walls: $(BUILD)/h2steer.skel.h
	WALLS="$(WALLS)" CC="$(CC)" BUILD="$(BUILD)" tests/walls/check_walls.sh

test-e2e: all $(ASAN_DIR)/h2steerd $(TSAN_DIR)/h2steerd $(BUILD)/other_lb.bpf.o $(KUBE_PROBE)
	@[ "$$(id -u)" -eq 0 ] || { echo "test-e2e needs root (sudo make test)"; exit 1; }
	$(PYTEST) -v tests/e2e

test: deps
	$(MAKE) all $(BUILD)/unit-tests $(BUILD)/kernel-tests $(ASAN_DIR)/h2steerd \
		$(TSAN_DIR)/h2steerd $(BUILD)/other_lb.bpf.o $(KUBE_PROBE) $(FUZZ_BINS)
	$(MAKE) test-walls test-unit test-fuzz test-kernel test-e2e

include tests/fuzz.mk
