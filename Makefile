# x0x — see README.md. `make test` and `make demo` do all their own set-up.
GO        ?= go
BUILD     := build
GOTEST    := $(GO) test -count=1
# Packages whose tests run under the race detector (the core library).
CORE_PKGS := ./core/...

.PHONY: all build capi node-addon tools lint test test-core test-other test-capi test-node test-python fuzz sim-check natlab soak soak-smoke demo bench clean

all: build

build:
	$(GO) build -o $(BUILD)/ ./cmd/...

# The C ABI: build/lib/libx0x.so.0 (+ libx0x.a) and build/x0x.pc.
capi:
	./scripts/build-capi.sh

# The Node addon (with libx0x.a linked in): bindings/node/npm/<platform>/x0x.node.
node-addon:
	./scripts/test-node.sh --build-only

tools:
	./scripts/install-tools.sh

lint: tools
	./scripts/lint.sh

test-core:
	$(GOTEST) -race -timeout 20m $(CORE_PKGS)

test-other:
	$(GOTEST) -timeout 10m $$($(GO) list ./... | grep -v '/core/')

# Symbols, header, and the C test program under AddressSanitizer.
test-capi:
	./scripts/test-capi.sh

# The Node binding: tsc, node --test (incl. npm pack + install), and the
# same tests against an AddressSanitizer build of the addon.
test-node:
	./scripts/test-node.sh --asan

# The Python package: builds the wheel, installs it into a fresh venv and
# runs pytest against it.
test-python:
	./scripts/test-python.sh

fuzz:
	./scripts/fuzz-smoke.sh

# The overlay's targets on the simulator (issue 13): 1,000 nodes x 1,000
# messages on two seeds (p99 <= 600 ms, at most 12 hops; the first signs and
# verifies every message with ML-DSA-65, as real nodes do), with 5% loss and
# with 10% churn (p99 <= 900 ms), a 50/50 partition that heals; 200 nodes x
# 200 messages; and connection resets that lose the frames in flight. Each
# run prints its JSON figures (with wall_seconds) and fails if delivery <
# 100%, steady-state RMR > 0.5, a latency or hop target is missed, or the
# heal takes > 2 anti-entropy rounds.
SIM := $(BUILD)/x0x-sim -check
SIM1K := $(SIM) -nodes 1000 -messages 1000
sim-check: build
	$(SIM1K) -real-signatures -max-p99-ms 600 -max-ldh 12
	$(SIM1K) -seed 2 -max-p99-ms 600 -max-ldh 12
	$(SIM1K) -loss 0.05 -max-p99-ms 900
	$(SIM1K) -churn 0.1 -max-p99-ms 900
	$(SIM1K) -partition
	$(SIM) -nodes 200 -messages 200 -seed 3 -max-p99-ms 600 -max-ldh 12
	$(SIM) -nodes 300 -messages 300 -resets 0.001

# The NAT lab (root: network namespaces and nftables, installed if
# missing): every pair of NAT types must connect, punchable pairs directly
# within 1 s, and pub/sub and a task list must work across the lab.
natlab: build
	./scripts/natlab.sh

# The soak (issue 10): 100 honest agents and 20 hostile peers running every
# attack for 60 s on loopback; prints delivery ratio among honest agents
# (must be 1), latency, peak RSS and rejections by reason as JSON lines.
soak: build
	$(BUILD)/x0x-soak -honest 100 -hostile 20 -duration 60s -check

# A short soak in every test run, so that the tool keeps working.
soak-smoke: build
	$(BUILD)/x0x-soak -honest 12 -hostile 4 -duration 8s -rate 10 -settle 5s -check

# Every test: lint, the core under -race, the rest, the C ABI, the Node and
# Python bindings, a short run of every fuzz target, the simulator at 1,000
# nodes, the NAT lab, a short soak, and the demo (which checks its own
# outcome and exits non-zero on failure).
test: lint test-core test-other test-capi test-node test-python fuzz sim-check natlab soak-smoke demo

demo: build node-addon
	./scripts/demo.sh

# Go benchmarks (core and the C layer), then events/s and publish-call cost
# from C, Node and Python (scripts/bench-bindings.sh).
# Only the JSON lines go to stdout (build output goes to stderr).
bench:
	@./scripts/test-node.sh --build-only >&2
	@$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$${BENCHTIME:-1s} -timeout 30m ./core/... ./capi 2>&1 | $(GO) run ./scripts/benchjson
	@./scripts/bench-bindings.sh

clean:
	rm -rf $(BUILD)
