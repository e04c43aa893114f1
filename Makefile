# paycenter — every task is one command. `make help` lists them.
SHELL := bash
.DEFAULT_GOAL := help
GO ?= go
BUF := npx --no-install buf
GOTEST_FLAGS ?=

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

node_modules/.package-lock.json: package.json package-lock.json
	npm install --no-audit --no-fund
	@touch $@

.PHONY: tools
tools: node_modules/.package-lock.json ## install the pinned npm tools (buf, protoc-gen-es, esbuild); Go ones are go.mod tools

.PHONY: generate
generate: tools ## regenerate gen/ from proto/, and the cashier page's script from its TypeScript
	$(BUF) format -w
	$(BUF) generate
	npx --no-install esbuild server/internal/cashier/web/cashier.ts --bundle --minify --format=iife \
		--target=es2020 --legal-comments=none --log-level=warning --outfile=server/internal/cashier/assets/cashier.js

.PHONY: checkgenerate
checkgenerate: generate ## fail if regenerating changes gen/ or proto formatting
	@git diff --exit-code -- gen proto server/internal/cashier/assets || { echo "generated code is stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- gen server/internal/cashier/assets)" || { git status --porcelain -- gen; echo "untracked generated files: run 'make generate' and commit"; exit 1; }

.PHONY: lint
lint: tools ## buf lint, buf format check, gofmt, go vet
	$(BUF) lint
	$(BUF) format -d --exit-code
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); test -z "$$out" || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(GO) vet ./...

.PHONY: breaking
breaking: tools ## buf breaking against the previous commit of main (FILE rules)
	@if git cat-file -e HEAD~1:proto 2>/dev/null; then $(BUF) breaking --against '.git#ref=HEAD~1'; else echo "no protos in HEAD~1: nothing to compare"; fi

.PHONY: build
build: ## build bin/paycenter
	$(GO) build -o bin/paycenter ./server/cmd/paycenter

.PHONY: test
test: ## run every test (starts its own PostgreSQL clusters)
	$(GO) test $(GOTEST_FLAGS) -count=1 -timeout 20m ./...

.PHONY: run
run: build ## start everything: private PostgreSQL, migrations, sandbox channels, demo merchant and app, the server
	./bin/paycenter dev

.PHONY: bench-payments
bench-payments: ## load test: create → pay → callback → webhook through the sandbox, vs a pgbench baseline (~1 min)
	$(GO) run ./server/cmd/benchpayments $(BENCH_FLAGS)

.PHONY: bench-ledger
bench-ledger: ## ledger throughput vs a pgbench baseline on a durable private PostgreSQL, 3 interleaved rounds (~3 min)
	$(GO) run ./server/cmd/benchledger $(BENCH_FLAGS)
