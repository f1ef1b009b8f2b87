"""Benchmarks of torchsample, runnable as ``python -m benchmarks.<name>``.

The modules here are not part of the installed package; they are run from a
checkout. Shared measurement helpers live in :mod:`benchmarks._common`.
"""
