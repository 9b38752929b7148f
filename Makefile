# The two commands of README.md: `make demo` and `make test`.
.PHONY: deps test-deps demo test bench bench-live fuzz

deps:
	@scripts/deps.sh

test-deps:
	@scripts/deps.sh test

demo: deps
	cargo run --release --quiet -- demo

test: test-deps
	cargo test --release

bench: test-deps
	bench/run.sh
	bench/sinks.sh

bench-live: test-deps
	bench/live.sh

fuzz:
	fuzz/run.sh
