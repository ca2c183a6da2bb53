# Fuzzing, included by tests/tests.mk: a libFuzzer harness per parser of outside input
# (tests/fuzz/fuzz_<target>.c), each with its committed seed corpus (tests/fuzz/corpus/<target>/).
#
#   make fuzz              each harness for FUZZ_SECONDS (60) in turn, growing its working corpus
#                          (build/fuzz/corpus/<target>); per harness: execs, exec/s, crashes,
#                          corpus size. FUZZ_TARGETS="h2_server dns" picks some.
#   make test-fuzz         every harness over its committed corpus once (part of make test): a
#                          crashing input committed there fails the build
#
# The layers are built once more, by clang with the fuzzer's coverage instrumentation and the
# sanitizers (ASan with LeakSanitizer, UBSan aborting), into $(FUZZ_OBJ); a harness links them
# like the unit tests do. Debian's libclang-rt-14-dev supplies libFuzzer.

FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_OBJ     := $(BUILD)/fuzz-obj
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
		-fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)
FUZZ_LIBS    := $(call archives,$(FUZZ_OBJ),daemon discovery proxy config balance cli cni kernel common)
FUZZ_LDLIBS  := $(sort $(foreach l,$(LAYERS),$(LIBS_$(l))))

$(eval $(call variant,$(FUZZ_OBJ),$(FUZZ_CFLAGS)))
$(FUZZ_OBJ)/%.o: CC := $(CLANG)

$(FUZZ_BINS): $(FUZZ_DIR)/%: tests/fuzz/fuzz_%.c tests/fuzz/*.h tests/unit/h2mem.h include/*.h \
		$(FUZZ_LIBS)
	@mkdir -p $(@D)
	$(CLANG) -D_GNU_SOURCE -Iinclude $(ALL_INC) -I$(BUILD) -Itests/fuzz -Itests/unit \
		$(FUZZ_CFLAGS) -fsanitize=fuzzer $(WARN) -o $@ $< $(FUZZ_LIBS) $(FUZZ_LDLIBS)

.PHONY: fuzz test-fuzz
fuzz: $(FUZZ_BINS)
	tools/fuzz.sh run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

test-fuzz: $(FUZZ_BINS)
	tools/fuzz.sh check $(FUZZ_TARGETS)
