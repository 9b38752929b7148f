# The two commands of README.md: `make demo` and `make test`.
.PHONY: deps demo test bench fuzz

deps:
	@scripts/deps.sh

demo: deps
	cargo run --release --quiet -- demo

test: deps
	cargo test --release

bench: deps
	bench/run.sh
	bench/sinks.sh

fuzz:
	fuzz/run.sh
