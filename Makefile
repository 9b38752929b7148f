# The two commands of README.md: `make demo` and `make test`.
.PHONY: deps demo test bench bench-live fuzz

deps:
	@scripts/deps.sh

demo: deps
	cargo run --release --quiet -- demo

test: deps
	cargo test --release

bench: deps
	bench/run.sh
	bench/sinks.sh

bench-live: deps
	bench/live.sh

fuzz:
	fuzz/run.sh
