# Shortcuts; each target is one script, which is what CI and the docs use.
.PHONY: run test bench
run:    ## install what is needed, run the whole of stopmo locally (Ctrl-C stops)
	./scripts/run
test:   ## install what is needed, run the whole test suite
	./scripts/test
bench:  ## run every benchmark, write docs/benchmarks.md
	./scripts/setup
	./scripts/bench
