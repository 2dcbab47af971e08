# clm — make targets. `make test` is what CI runs (through .ci/run).
GO ?= go
BENCHTIME ?= 1s

.PHONY: test vet bench bench-http run fuzz reliability

## test: go vet, then every test with the race detector. The MariaDB and
## PostgreSQL suites run when CLM_TEST_MYSQL_DSN / CLM_TEST_POSTGRES_DSN are set.
test: vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

## bench: every benchmark, with allocations, then the performance targets
## as ratios of benchmarks run side by side (examples/benchratio).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...
	$(GO) run ./examples/benchratio

## bench-http: the HTTP load generator against clmserver on a temporary
## SQLite store (started and stopped by it): the standard mixes (each with
## the CPU per request of client, server and database, and on SQLite the
## group commit sizes), then the targets P2, P3 and P8 against the
## in-process baselines; then the standard mix on a fresh MariaDB database
## and PostgreSQL schema when CLM_TEST_MYSQL_DSN / CLM_TEST_POSTGRES_DSN
## are set.
BENCH_HTTP_TIME ?= 10s
bench-http:
	$(GO) build -o bin/clmserver ./examples/clmserver
	$(GO) run ./examples/loadgen -spawn bin/clmserver -duration $(BENCH_HTTP_TIME) -mix psk-auth=1
	$(GO) run ./examples/loadgen -spawn bin/clmserver -duration $(BENCH_HTTP_TIME) -mix cert-issue=1
	$(GO) run ./examples/loadgen -spawn bin/clmserver -duration $(BENCH_HTTP_TIME) -mix key-create=1
	$(GO) run ./examples/loadgen -spawn bin/clmserver -duration $(BENCH_HTTP_TIME)
	$(GO) run ./examples/loadgen -spawn bin/clmserver -duration $(BENCH_HTTP_TIME) -targets
	@if [ -n "$$CLM_TEST_MYSQL_DSN" ]; then echo "MariaDB/MySQL:"; \
		$(GO) run ./examples/loadgen -spawn bin/clmserver -store "mysql:$$CLM_TEST_MYSQL_DSN" -duration $(BENCH_HTTP_TIME); fi
	@if [ -n "$$CLM_TEST_POSTGRES_DSN" ]; then echo "PostgreSQL:"; \
		$(GO) run ./examples/loadgen -spawn bin/clmserver -store "postgres:$$CLM_TEST_POSTGRES_DSN" -duration $(BENCH_HTTP_TIME); fi

## run: the CLM server on the embedded SQLite default (clm.db here),
## http://127.0.0.1:8080/SWCLM/v10/. The first start prints a license key.
run:
	$(GO) build -o bin/clmserver ./examples/clmserver
	./bin/clmserver

## fuzz: each fuzz target in turn for FUZZTIME (go test -fuzz runs one
## target per run), with -tags clmfuzz, which leaves out the OpenAPI
## validation test (fuzzing instruments every package of a test binary). CI runs it briefly: make fuzz FUZZTIME=20000x. A count,
## not a duration: with a duration, Go 1.26's fuzzing coordinator can fail a
## target with "context deadline exceeded" as the time runs out
## (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME ?= 100000x
FUZZ_TARGETS = \
	lifecycle:FuzzParseSubject lifecycle:FuzzParseAddresses lifecycle:FuzzSealedOpen \
	cipher/twine:FuzzRoundTrip \
	httpadapter:FuzzRequest httpadapter:FuzzBasicAuth \
	httpadapter/client:FuzzAnswers
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		out=$$($(GO) test -tags clmfuzz -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg 2>&1) || { echo "$$out"; exit 1; }; \
		echo "$$out" | tail -1; \
	done

## reliability: the tests behind the README's Reliability section, printing
## their figures (MariaDB and PostgreSQL ones need the CLM_TEST_* DSNs).
RELIABILITY_TESTS = TestBruteForceLimit|TestBruteForceAcrossEngines|TestAttackBruteForceTwoProcesses|TestAddressLimit|TestLicenseFailureLimit|TestSecretHygiene|TestConstantTimeSites|TestMultiProcessRaces|TestNoPartialState|TestLockTimeout|TestDatabaseOutage|TestRetryAfterLostAnswer|TestCAInSoftHSM|TestPKCS12Interop|TestPoolHeldByTransactions|TestWALStartsOver|TestKillUnderLoad
reliability:
	@out=$$($(GO) test -count=1 -v -run '^($(RELIABILITY_TESTS))$$' ./... 2>&1) || { echo "$$out"; exit 1; }; \
	echo "$$out" | grep -E 'FIGURE' | sed 's/^ *[a-z_]*\.go:[0-9]*: FIGURE /  /'; \
	echo "$$out" | grep -cE '^--- PASS' | xargs echo "  reliability tests passed:"
