# Front door. `make run` and `make test` each install what they need first.
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)
LISTEN     ?= 127.0.0.1:8080
DATA       ?= ./var

.PHONY: all deps test-deps build build-asan run test test-normal test-asan bench clean

all: build

deps:
	@scripts/deps.sh

test-deps:
	@scripts/deps.sh test

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

$(BUILD_ASAN)/Makefile:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DTALLY_SANITIZE=ON >/dev/null

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps $(BUILD_ASAN)/Makefile
	cmake --build $(BUILD_ASAN) -j $(JOBS)

run: build
	@mkdir -p $(DATA)
	@echo "tallyd: listening on http://$(LISTEN), data in $(DATA); admin token in $(DATA)/admin.token"
	$(BUILD)/tallyd --data $(DATA) --listen $(LISTEN)

# Sanitizer build first, normal build last, so the output ends with ctest's summary.
test: test-deps
	$(MAKE) build-asan
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure --repeat until-pass:2 -j $(JOBS)
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure --repeat until-pass:2 -j $(JOBS)

bench: build
	tools/bench/ingest

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
