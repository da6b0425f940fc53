"""Benchmarks: each prints astrlite's figures beside a baseline measured in the same run.
Not tests: run with `make bench` or `python -m bench [name ...]`."""
