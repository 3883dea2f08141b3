# One entry point for people and CI. `make help` lists the targets.
GO      ?= go
PKGS    ?= ./...
BENCH   ?= .
COUNT   ?= 6

.PHONY: help sim test vet build bench fmt tidy scenarios clean

help:
	@echo "make sim        embedded broker + virtual platform + one virtual cabinet (HTTP 127.0.0.1:8080, MQTT 127.0.0.1:1883)"
	@echo "make test       the whole test suite with the race detector"
	@echo "make scenarios  run every shipped scenario headless"
	@echo "make bench      Go benchmarks (COUNT=$(COUNT) runs, output in bench.txt, compare with benchstat)"
	@echo "make build      build cabinet and cabsim into bin/"

sim:
	$(GO) run ./simulator/cmd/cabsim $(ARGS)

test:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

build:
	$(GO) build -o bin/ ./firmware/cmd/cabinet ./simulator/cmd/cabsim

scenarios: build
	@set -e; for f in simulator/scenarios/*.json; do echo "== $$f"; ./bin/cabsim -scenario $$f; done

# Benchmarks: run twice (before/after a change) and compare with
#   go run golang.org/x/perf/cmd/benchstat@latest old.txt bench.txt
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) $(PKGS) | tee bench.txt

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	$(GO) mod tidy

clean:
	rm -rf bin bench.txt
