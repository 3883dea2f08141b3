# One entry point for people and CI. `make help` lists the targets.
GO      ?= go
PKGS    ?= ./...
BENCH   ?= .
COUNT   ?= 6

.PHONY: help sim test test-arm attack vet build arm bench fmt tidy scenarios clean

help:
	@echo "make sim        embedded broker + virtual platform + one virtual cabinet (HTTP 127.0.0.1:8080, MQTT 127.0.0.1:1883)"
	@echo "make test       the whole test suite with the race detector"
	@echo "make scenarios  run every shipped scenario headless"
	@echo "make bench      Go benchmarks (COUNT=$(COUNT) runs, output in bench.txt, compare with benchstat)"
	@echo "make build      build cabinet and cabsim into bin/"
	@echo "make arm        static, stripped cabinet binaries for linux/arm (GOARM=7) and linux/arm64 in bin/"
	@echo "make attack     the attack suite with 100,000 generated malicious commands (ATTACKS=N)"
	@echo "make test-arm   the test suite built for 32-bit ARM, run under qemu-arm-static (no race detector there)"
	@echo "make accuracy   the inference accuracy report over ≥100,000 realistic sessions"
	@echo "make fleet      measure CABINETS virtual cabinets (PROCS simulators, SALE_EVERY sale load) against Mosquitto"

sim:
	$(GO) run ./simulator/cmd/cabsim $(ARGS)

test:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

build:
	$(GO) build -o bin/ ./firmware/cmd/cabinet ./simulator/cmd/cabsim

# Static, stripped device binaries for the boards. -trimpath keeps this
# machine's paths out of the binary.
ARM_FLAGS = CGO_ENABLED=0 GOOS=linux
ARM_LD    = -trimpath -ldflags '-s -w'
arm:
	$(ARM_FLAGS) GOARCH=arm GOARM=7 $(GO) build $(ARM_LD) -o bin/linux-armv7/cabinet ./firmware/cmd/cabinet
	$(ARM_FLAGS) GOARCH=arm64 $(GO) build $(ARM_LD) -o bin/linux-arm64/cabinet ./firmware/cmd/cabinet
	@ls -l bin/linux-armv7/cabinet bin/linux-arm64/cabinet

# 32-bit ARM is where unaligned 64-bit atomics and bbolt's small mmap bite.
# The race detector does not exist there; every test binary runs under
# qemu-arm-static, and so does any device binary a test starts
# (BANGFU_EXEC_WRAPPER), since this machine cannot run ARM code natively.
test-arm:
	$(ARM_FLAGS) GOARCH=arm GOARM=7 BANGFU_EXEC_WRAPPER=qemu-arm-static \
		$(GO) test -count=1 -timeout 30m -exec qemu-arm-static $(PKGS)

# The long attack run: 100,000 generated malicious commands, none accepted.
ATTACKS ?= 100000
attack:
	@BANGFU_ATTACKS=$(ATTACKS) $(GO) test -count=1 -timeout 60m -run 'TestAttackSuite|TestGeneratedAttacks' -v ./firmware/ >attack.log 2>&1; \
		st=$$?; grep -E -- '^(--- |ok|FAIL)|attacks tried' attack.log; echo "full log: attack.log"; exit $$st

scenarios: build
	@set -e; for f in simulator/scenarios/*.json; do echo "== $$f"; ./bin/cabsim -scenario $$f; done

# Benchmarks: run twice (before/after a change) and compare with
#   go run golang.org/x/perf/cmd/benchstat@latest old.txt bench.txt
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) $(PKGS) | tee bench.txt

# Fuzzing: every fuzz target for FUZZTIME, one after another (go test
# fuzzes one target per run). Seed corpora: testdata/fuzz/<Target>/ next
# to each target; a failing input the fuzzer finds is written there too.
# FUZZTIME is a count of executions (Nx), not a duration: with a duration,
# Go 1.26's fuzz coordinator can report a spurious "context deadline
# exceeded" when the deadline falls while a worker is mid-input on a
# loaded machine (go.dev/issue/75804, fixed in Go 1.27). A count has no
# deadline to race. Pass e.g. FUZZTIME=60s for a long local run.
FUZZTIME ?= 20000x
FUZZ_TARGETS = ./telemetry/msg:FuzzOpenEnvelope \
	./firmware/catalog:FuzzCatalog ./firmware/catalog:FuzzPlanogram \
	./firmware/config:FuzzConfigFile ./firmware/config:FuzzConfigCommand \
	./payment:FuzzCommand ./payment:FuzzQR \
	./firmware:FuzzInbound ./firmware:FuzzAck \
	./hal/board:FuzzParse
.PHONY: fuzz
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	$(GO) mod tidy

clean:
	rm -rf bin bench.txt

# Soak: SOAK_CYCLES (default 200) randomised purchases against a cabinet
# whose firmware is a real process, kill -9 at random moments; prints a
# summary line (cycles, kills, sales, lost, duplicated). `make test` runs a
# 10-cycle version. BANGFU_SOAK_SEED=N replays a run's choices.
SOAK_CYCLES ?= 200
.PHONY: soak
soak:
	@bash -o pipefail -c "BANGFU_SOAK_CYCLES=$(SOAK_CYCLES) $(GO) test -count=1 -timeout 90m -run '^TestSoak\$$' -v ./simulator/cabsim/ 2>&1 | grep -E '^(soak:|--- |ok|FAIL|panic)|_test.go:'"

# Fleet figures (README "Fleet"): CABINETS virtual cabinets in PROCS
# simulators, each against a Mosquitto of its own, idle or with a sale
# every SALE_EVERY per cabinet ("-": none), measured over WINDOW seconds.
CABINETS   ?= 1000
PROCS      ?= 1
SALE_EVERY ?= -
WINDOW     ?= 60
.PHONY: fleet
fleet:
	sh simulator/fleet.sh $(CABINETS) $(SALE_EVERY) $(WINDOW) $(PROCS)

# The inference accuracy report: infer.Infer against the simulated world of
# simulator/world, 1,000 planograms × 100 sessions per σ and setting.
# BANGFU_ACCURACY_PLANOGRAMS and BANGFU_ACCURACY_SESSIONS change the size;
# BANGFU_ACCURACY_OUT=file also writes the markdown tables there.
.PHONY: accuracy
accuracy:
	BANGFU_ACCURACY=1 $(GO) test -count=1 -timeout 60m -run '^TestAccuracyReport$$' -v ./simulator/world/

# Debian packages for the boards: $(PKG_DIR)/bangfu-cabinet_<version>_<arch>.deb
# for armhf (GOARM=7), arm64 and amd64, made by packaging/tool (nfpm's Go
# API, in a module of its own: nfpm stays out of the firmware's go.mod) from
# packaging/nfpm.yaml. VERSION defaults to `git describe` of a v* tag, else
# the firmware's version and the commit. `make package-check` builds them and
# checks them (packaging/check.sh: systemd-analyze verify, dpkg-deb, lintian);
# it fails when those tools are missing.
PKG_DIR    ?= bin/pkg
PKG_ARCHES ?= armhf arm64 amd64
FW_VERSION := $(shell sed -n 's/^var FW = "\(.*\)"/\1/p' firmware/device.go)
ifeq ($(origin VERSION),undefined)
VERSION := $(shell v=$$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null) && echo "$$v" | sed -e 's/^v//' -e 's/-/+/' -e 's/-/./g' || echo "$(FW_VERSION)+git.$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)")
endif
ifeq ($(origin SOURCE_DATE_EPOCH),undefined)
SOURCE_DATE_EPOCH := $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
endif
.PHONY: package package-check
package:
	@mkdir -p $(PKG_DIR)
	cd packaging/tool && $(GO) build -o ../../$(PKG_DIR)/package-tool .
	@set -e; for a in $(PKG_ARCHES); do \
		case $$a in \
		armhf) goenv="GOARCH=arm GOARM=7" ;; \
		arm64) goenv="GOARCH=arm64" ;; \
		amd64) goenv="GOARCH=amd64" ;; \
		*) echo "PKG_ARCHES: unknown architecture $$a"; exit 2 ;; \
		esac; \
		echo "== $$a ($$goenv) $(VERSION)"; \
		env CGO_ENABLED=0 GOOS=linux $$goenv $(GO) build -trimpath -ldflags '-s -w -X main.build=$(VERSION)' \
			-o $(PKG_DIR)/$$a/bangfu-cabinet ./firmware/cmd/cabinet; \
		$(PKG_DIR)/package-tool -arch $$a -version '$(VERSION)' -binary $(PKG_DIR)/$$a/bangfu-cabinet \
			-out $(PKG_DIR) -mtime $(SOURCE_DATE_EPOCH); \
	done
	@ls -l $(PKG_DIR)/*.deb

package-check: package
	bash packaging/check.sh $(foreach a,$(PKG_ARCHES),$(PKG_DIR)/bangfu-cabinet_$(VERSION)_$(a).deb)

# Installs the amd64 package on this machine, reinstalls it over an edited
# config and purges it, checking the ledger directory is never touched
# (packaging/install-check.sh). It changes the machine, so it runs only as
# root with BANGFU_INSTALL_CHECK=1 (CI's fresh machine).
.PHONY: install-check
install-check:
	$(MAKE) package PKG_ARCHES=amd64
	bash packaging/install-check.sh $(PKG_DIR)/bangfu-cabinet_$(VERSION)_amd64.deb

# A flashable SD-card image for the Raspberry Pi (arm64; Pi 3 and 4 on
# Debian bookworm's kernel): Debian packages bootstrapped by mmdebstrap,
# our arm64 .deb installed, a FAT boot partition, an ext4 root and the data
# directory on a partition of its own, built as files without loop devices
# (packaging/image/build.sh; flashing and the boot file: docs/hardware.md).
# Needs root, the Debian mirror and, off arm64, qemu-user with binfmt_misc:
#   apt-get install -y mmdebstrap qemu-user-static binfmt-support dosfstools mtools e2fsprogs fdisk
# Not part of `make test` (minutes of emulated package scripts); the
# script's own steps (partitions, file systems, what goes where) are tested
# by `make image-check` (packaging/image/test.sh: no network, qemu or root;
# needs dosfstools mtools e2fsprogs fdisk), which CI runs.
IMAGE_DIR ?= bin/image
.PHONY: image
image:
	$(MAKE) package PKG_ARCHES=arm64
	bash packaging/image/build.sh --deb $(PKG_DIR)/bangfu-cabinet_$(VERSION)_arm64.deb \
		--out $(IMAGE_DIR)/bangfu-cabinet_$(VERSION)_arm64.img

.PHONY: image-check
image-check:
	bash packaging/image/test.sh
