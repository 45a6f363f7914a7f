"""Benchmarks of lilaw_edu (run ``python benchmarks/overhead.py``; see benchmarks/README.md)."""
