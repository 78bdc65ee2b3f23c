# smtphook - thin wrapper around CMake presets and ctest.
#
#   make run            install deps, build, run smtphookd on 127.0.0.1:2525
#   make test           install deps, build, run every test (ctest); with CI=true
#                       also asan-test and valgrind-test (TEST_ASAN, TEST_VALGRIND)
#   make asan-test      all tests in an ASan/UBSan build (build-asan/)
#   make valgrind-test  integration tests with smtphookd under valgrind (build-valgrind/)
#                       (slow load tests skip themselves there; SMTPHOOK_QUICK=1
#                       skips them everywhere)
#   make fuzz           build the libFuzzer targets (clang) and run each FUZZ_SECONDS
#   make bench          smtphookd against Postfix's smtp-sink, Haraka and smtp-server
#                       (tests/bench/run_bench.py; BENCH_ARGS, e.g. "--pairs 5" or
#                       "--scenarios ab"); not part of test
#   make bench-peers    npm install the bench's peers (Haraka, nodemailer smtp-server,
#                       pinned in tests/bench/peers/) into build/bench-peers; optional
#   make bench-instructions  user-space instructions per message of smtphookd
#                       (callgrind, deterministic; INSTR_ARGS, e.g. "--chain default")
#   make clean          remove every build directory

SHELL := /bin/bash

CI ?=
JOBS ?= 2
PRESET ?= $(if $(filter true 1 yes,$(CI)),ci,default)
TEST_ASAN ?= $(CI)
TEST_VALGRIND ?= $(CI)
FUZZ_SECONDS ?= 60
LISTEN ?= 127.0.0.1:2525
# The default chain of SPEC §1: policy -> sizefilter -> spamfilter -> maildump.
MAILDIR ?= var/maildir
RUN_PLUGINS ?= -p 'policy:allow_ip=127.0.0.0/8;::1,reject_ip_helo=yes' \
	-p sizefilter:max=50M,max_recipients=100 \
	-p spamfilter:rules=plugins/spamfilter/default.rules,tag=5,reject=10 \
	-p maildump:dir=$(MAILDIR)
RUN_ARGS ?= --max-size 52428800 $(RUN_PLUGINS)
CTEST_ARGS ?=
BENCH_ARGS ?=
BENCH_PEERS ?= build/bench-peers
INSTR_ARGS ?=

.PHONY: print-chain all deps build run test asan-test valgrind-test fuzz bench \
	bench-peers bench-instructions clean

all: build

deps:
	@scripts/deps.sh

build: deps
	cmake --preset $(PRESET)
	cmake --build --preset $(PRESET) -j$(JOBS)

# The default chain's arguments, for tests that run exactly what `make run` runs.
print-chain:
	@echo $(RUN_ARGS)

run: build
	mkdir -p $(MAILDIR)
	exec build/bin/smtphookd -l $(LISTEN) $(RUN_ARGS)

test: build
	ctest --test-dir build --output-on-failure -j$(JOBS) $(CTEST_ARGS)
ifneq ($(filter true 1 yes,$(TEST_ASAN)),)
	$(MAKE) asan-test
endif
ifneq ($(filter true 1 yes,$(TEST_VALGRIND)),)
	$(MAKE) valgrind-test
endif

asan-test: deps
	cmake --preset asan
	cmake --build --preset asan -j$(JOBS)
	ctest --test-dir build-asan --output-on-failure -j$(JOBS) $(CTEST_ARGS)

valgrind-test: deps
	@scripts/deps.sh valgrind
	cmake --preset valgrind
	cmake --build --preset valgrind -j$(JOBS)
	ctest --test-dir build-valgrind --output-on-failure -j$(JOBS) -L integration $(CTEST_ARGS)

fuzz: deps
	@scripts/deps.sh clang libclang-rt-14-dev
	cmake --preset fuzz
	cmake --build --preset fuzz -j$(JOBS)
	@set -e; shopt -s nullglob; ran=0; \
	for f in build-fuzz/fuzz/fuzz_*; do \
		[ -x "$$f" ] || continue; \
		n=$${f##*/fuzz_}; \
		seeds=""; \
		for c in tests/fuzz/corpus/fuzz_$$n tests/fuzz/corpus/$$n; do \
			[ -d "$$c" ] && seeds="$$seeds $$c"; \
		done; \
		dict=""; [ -f tests/fuzz/fuzz_$$n.dict ] && dict="-dict=tests/fuzz/fuzz_$$n.dict"; \
		mkdir -p build-fuzz/corpus/$$n build-fuzz/artifacts; \
		echo "== fuzz_$$n for $(FUZZ_SECONDS)s (new inputs: build-fuzz/corpus/$$n)"; \
		"$$f" -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$dict \
			-artifact_prefix=build-fuzz/artifacts/$$n- \
			build-fuzz/corpus/$$n $$seeds; \
		ran=$$((ran + 1)); \
	done; \
	echo "fuzz: $$ran target(s) ran"

# Not in "test": it takes minutes and its figures need a quiet machine
# (docs/PERFORMANCE.md).  smtp-source and smtp-sink come with postfix (deps).
# The peers (Haraka, smtp-server) are optional: installed when missing or
# out of date; without node/npm or the registry the bench runs without them.
bench: build
	@$(MAKE) --no-print-directory $(BENCH_PEERS)/.installed || \
		echo "bench: could not install the peers (npm); running without Haraka and smtp-server" >&2
	python3 tests/bench/run_bench.py --build $(CURDIR)/build \
		--peers $(abspath $(BENCH_PEERS)) $(BENCH_ARGS)

bench-peers: $(BENCH_PEERS)/.installed

# npm ci from the lock file, without install scripts (none is needed: the
# only one, an optional syslog addon of a Haraka plugin, is not used).
$(BENCH_PEERS)/.installed: tests/bench/peers/package.json tests/bench/peers/package-lock.json
	@command -v npm >/dev/null && command -v node >/dev/null && \
		node -e 'process.exit(parseInt(process.versions.node, 10) >= 20 ? 0 : 1)' || \
		{ echo "bench-peers: node >= 20 and npm are needed (the pinned Haraka and smtp-server want 20; Debian 12's nodejs is 18)" >&2; exit 1; }
	mkdir -p $(BENCH_PEERS)
	cp tests/bench/peers/package.json tests/bench/peers/package-lock.json $(BENCH_PEERS)/
	cd $(BENCH_PEERS) && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# Deterministic: callgrind counts instructions, not time (valgrind: deps).
bench-instructions: build
	@scripts/deps.sh valgrind
	python3 tests/bench/instructions.py --build $(CURDIR)/build $(INSTR_ARGS)

clean:
	rm -rf build build-*
