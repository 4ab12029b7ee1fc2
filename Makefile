# x0x — see README.md. `make test` and `make demo` do all their own set-up.
GO        ?= go
BUILD     := build
GOTEST    := $(GO) test -count=1
# Packages whose tests run under the race detector (the core library).
CORE_PKGS := ./core/...

.PHONY: all build capi node-addon tools lint test test-core test-other test-capi test-node test-python test-mcp test-skill fuzz sim-check natlab soak soak-smoke swimload swimload-smoke demo bench release-dry-run clean

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

# The MCP server (issue 12): `x0x mcp` for each of two connected daemons,
# driven by the Python mcp package's stdio client (venv in build/mcp-venv).
test-mcp:
	./scripts/test-mcp.sh

# SKILL.md (issue 14): its Agent Skill front matter and links; its Go,
# Node, Python and C examples, extracted (blocks marked `runnable`) and run
# against this checkout on 127.0.0.1; SKILL.md.asc against the shipped key
# keys/x0x-release.asc; and signing with a throwaway key, which must fail to
# verify once one byte changes.
test-skill: capi node-addon
	./scripts/test-skill.sh

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

# The failure detector under CPU load (issue 13): 10 agent processes, each
# publishing every 2 s, 30 s quiet then 30 s beside a hog of 8 busy threads per core,
# then one agent is killed; prints false suspicions and deaths per phase and
# how long the others took to declare the killed agent dead (JSON lines).
swimload: build
	$(BUILD)/x0x-swimload -agents 10 -quiet 30s -load 30s

# A short run in every test run, so that the tool keeps working: no live
# agent may be declared dead, and the killed one must be (the 5 s detection
# target is a figure of `make swimload`, not a timed test).
swimload-smoke: build
	$(BUILD)/x0x-swimload -agents 5 -settle 5s -quiet 5s -load 5s -check -detect-limit 30s

# Every test: lint, the core under -race, the rest, the C ABI, the Node and
# Python bindings, SKILL.md (its examples and signature), a short run of
# every fuzz target, the simulator at 1,000 nodes, the NAT lab, a short
# soak, a short failure-detector run under load, and the demo (which checks its own outcome and exits non-zero on
# failure).
test: lint test-core test-other test-capi test-node test-python test-mcp test-skill fuzz sim-check natlab soak-smoke swimload-smoke demo

demo: build node-addon
	./scripts/demo.sh

# Go benchmarks (core and the C layer), then events/s and publish-call cost
# from C, Node and Python (scripts/bench-bindings.sh).
# Only the JSON lines go to stdout (build output goes to stderr).
bench:
	@./scripts/test-node.sh --build-only >&2
	@$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$${BENCHTIME:-1s} -timeout 30m ./core/... ./capi 2>&1 | $(GO) run ./scripts/benchjson
	@./scripts/bench-bindings.sh
	@$(GO) build -o $(BUILD)/ ./cmd/x0x-swimload >&2 && $(BUILD)/x0x-swimload -agents 10 -quiet 30s -load 30s

# The release without its uploads (issue 14; .github/workflows/release.yml
# runs this before it publishes). scripts/build-matrix.sh builds every target
# this machine can build into $(DIST)/<target>/ with $(DIST)/SHA256SUMS (which
# must verify); the main npm package (x0x) and the Python sdist are added in
# $(DIST)/any/ when the matrix did not make them, and every file missing from
# SHA256SUMS is appended to it. Then every npm package and Python
# distribution must carry the version in VERSION, every npm package passes
# `npm publish --dry-run` and the wheels and sdist `twine check --strict`
# (twine and build in $(BUILD)/release/venv). Not part of `make test`.
DIST         ?= dist
BUILD_MATRIX ?= ./scripts/build-matrix.sh
RELEASE_VENV := $(BUILD)/release/venv
NPM_PKGS      = $$(find $(DIST) -type f -name 'x0x-core-*.tgz' | LC_ALL=C sort) \
                $$(find $(DIST) -type f -name 'x0x-[0-9]*.tgz' | LC_ALL=C sort)
PY_DISTS      = $$(find $(DIST) -type f \( -name '*.whl' -o -name 'agent[-_]x0x-*.tar.gz' \) | LC_ALL=C sort)
release-dry-run:
	@[ -x "$(BUILD_MATRIX)" ] || { echo "release-dry-run: $(BUILD_MATRIX) is missing (issue 14): nothing to check" >&2; exit 1; }
	$(BUILD_MATRIX)
	@[ -f $(DIST)/SHA256SUMS ] || { echo "release-dry-run: $(BUILD_MATRIX) made no $(DIST)/SHA256SUMS" >&2; exit 1; }
	cd $(DIST) && sha256sum --quiet --strict -c SHA256SUMS
	@# Console scripts, not `python -m`: the current directory (with build/) would shadow the build package.
	@if [ ! -x $(RELEASE_VENV)/bin/twine ] || [ ! -x $(RELEASE_VENV)/bin/pyproject-build ]; then \
	  rm -rf $(RELEASE_VENV) && $${PYTHON:-python3} -m venv $(RELEASE_VENV) && \
	  $(RELEASE_VENV)/bin/pip install -q 'twine>=6' 'build>=1.2'; fi
	@set -eu; v=$$(cat VERSION); \
	if [ -z "$$(find $(DIST) -type f -name "x0x-$$v.tgz")" ]; then \
	  src=bindings/node; if [ -f package.json ]; then src=.; fi; \
	  echo "npm pack ./$$src -> $(DIST)/any/"; mkdir -p $(DIST)/any; \
	  npm pack --silent --pack-destination $(DIST)/any "./$$src" >/dev/null; fi; \
	if [ -z "$$(find $(DIST) -type f -name "agent[-_]x0x-$$v.tar.gz")" ]; then \
	  [ -f pyproject.toml ] || { echo "release-dry-run: no sdist in $(DIST)/ and no top-level pyproject.toml to build one from" >&2; exit 1; }; \
	  echo "python -m build --sdist -> $(DIST)/any/"; \
	  $(RELEASE_VENV)/bin/pyproject-build --sdist --outdir $(DIST)/any . >/dev/null; fi; \
	cd $(DIST); listed=$$(sed -E 's/^[0-9a-f]+ [ *]//' SHA256SUMS); \
	find . -type f ! -name SHA256SUMS ! -name '*.asc' | sed 's|^\./||' | LC_ALL=C sort | while read -r f; do \
	  printf '%s\n' "$$listed" | grep -qxF -- "$$f" || { echo "SHA256SUMS += $$f"; sha256sum "$$f" >>SHA256SUMS; }; done
	@set -eu; v=$$(cat VERSION); bad=0; npm=0; py=0; \
	for t in $(NPM_PKGS); do \
	  id=$$(tar -xzOf "$$t" package/package.json | node -p 'const p = JSON.parse(require("fs").readFileSync(0, "utf8")); p.name + "@" + p.version'); \
	  case $$id in *@$$v) npm=$$((npm + 1));; *) echo "release-dry-run: $$t is $$id, VERSION is $$v" >&2; bad=1;; esac; done; \
	for d in $(PY_DISTS); do \
	  case $$(basename "$$d") in agent_x0x-$$v-*.whl|agent_x0x-$$v.tar.gz|agent-x0x-$$v.tar.gz) py=$$((py + 1));; \
	    *) echo "release-dry-run: $$d is not version $$v" >&2; bad=1;; esac; done; \
	echo "release-dry-run: $$npm npm packages and $$py Python distributions of version $$v in $(DIST)/"; \
	[ $$npm -gt 0 ] && [ $$py -gt 0 ] || bad=1; exit $$bad
	@set -eu; for t in $(NPM_PKGS); do echo "== npm publish --dry-run $$t"; npm publish --dry-run --access public "$$t"; done
	$(RELEASE_VENV)/bin/twine check --strict $(PY_DISTS)
	@echo "release-dry-run: everything checked; nothing uploaded"

clean:
	rm -rf $(BUILD)
