"""Benchmarks, each reported as a ratio to a bare Flask app measured in the same run."""
