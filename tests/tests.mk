# Test targets, included by the top-level Makefile.
#
#   test-unit    Criterion, host build with AddressSanitizer + UBSan: pure functions
#   test-kernel  Criterion, root: the real BPF programs on real sockets in throwaway cgroups
#   test-e2e     pytest, root: h2steerd with real gRPC servers and clients (tests/e2e)

SAN        := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_DIR   := $(BUILD)/asan
ASAN_OBJS  := $(LIB_SRCS:%=$(ASAN_DIR)/%.o)
UNIT_SRCS  := $(wildcard tests/unit/*.c)
KERN_SRCS  := $(wildcard tests/kernel/*.c)

# The same daemon under ThreadSanitizer, for the tests of more than one event loop.
TSAN       := -fsanitize=thread
TSAN_DIR   := $(BUILD)/tsan
TSAN_OBJS  := $(LIB_SRCS:%=$(TSAN_DIR)/%.o)

$(ASAN_DIR) $(TSAN_DIR):
	mkdir -p $@

$(TSAN_DIR)/%.o: user/%.c user/*.h include/*.h $(BUILD)/h2steer.skel.h | $(TSAN_DIR)
	$(CC) $(CPPFLAGS) -O1 -g $(TSAN) $(WARN) -c $< -o $@

$(TSAN_DIR)/h2steerd: $(TSAN_DIR)/h2steerd.o $(TSAN_OBJS)
	$(CC) -O1 -g $(TSAN) -o $@ $^ $(LDLIBS)

$(ASAN_DIR)/%.o: user/%.c user/*.h include/*.h $(BUILD)/h2steer.skel.h | $(ASAN_DIR)
	$(CC) $(CPPFLAGS) -O1 -g $(SAN) $(WARN) -c $< -o $@

$(BUILD)/unit-tests: $(UNIT_SRCS) tests/unit/*.h $(ASAN_OBJS)
	$(CC) $(CPPFLAGS) -Itests/unit -O1 -g $(SAN) $(WARN) -o $@ $(UNIT_SRCS) $(ASAN_OBJS) \
		$(LDLIBS) -lcriterion

$(BUILD)/kernel-tests: $(KERN_SRCS) tests/kernel/*.h $(ASAN_OBJS)
	$(CC) $(CPPFLAGS) -Itests/kernel -O1 -g $(SAN) $(WARN) -o $@ $(KERN_SRCS) $(ASAN_OBJS) \
		$(LDLIBS) -lcriterion

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

test-e2e: all $(ASAN_DIR)/h2steerd $(TSAN_DIR)/h2steerd $(BUILD)/other_lb.bpf.o
	@[ "$$(id -u)" -eq 0 ] || { echo "test-e2e needs root (sudo make test)"; exit 1; }
	$(PYTEST) -v tests/e2e

test: deps
	$(MAKE) all $(BUILD)/unit-tests $(BUILD)/kernel-tests $(ASAN_DIR)/h2steerd \
		$(TSAN_DIR)/h2steerd $(BUILD)/other_lb.bpf.o
	$(MAKE) test-unit test-kernel test-e2e

# The daemon the end-to-end tests run: sanitizers on, so a memory error or a leak at exit fails
# the test that caused it.
$(ASAN_DIR)/h2steerd: $(ASAN_DIR)/h2steerd.o $(ASAN_OBJS)
	$(CC) -O1 -g $(SAN) -o $@ $^ $(LDLIBS)
