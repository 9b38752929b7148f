# The two commands of README.md: `make demo` and `make test`.
.PHONY: deps test-deps demo test deb bench bench-live fuzz

deps:
	@scripts/deps.sh

test-deps:
	@scripts/deps.sh test

demo: deps
	cargo run --release --quiet -- demo

test: test-deps
	cargo test --release

# The Debian package, in target/debian/ (cargo-deb: installed when missing).
deb: deps
	scripts/deb.sh

bench: test-deps
	bench/run.sh
	bench/sinks.sh

bench-live: test-deps
	bench/live.sh

fuzz:
	fuzz/run.sh
