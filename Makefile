# Thin wrapper over CMake: make run | test | bench | fuzz | install
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CONF       ?= config/dialogue.conf

.PHONY: all deps build run test test-asan bench fuzz install clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@mkdir -p var
	exec $(BUILD)/dialogued -c $(CONF)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	bench/ingest $(BUILD)
	bench/fanout $(BUILD)
	bench/web $(BUILD)

fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFUZZ=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@echo "fuzzers built in $(FUZZ_BUILD)/: run e.g. $(FUZZ_BUILD)/fuzz_smtp_cmd fuzz/corpus-out fuzz/corpus/smtp_cmd"

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
