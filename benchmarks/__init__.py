"""Speed benchmarks, reported as ratios: `python -m benchmarks` (or `make bench`)."""
