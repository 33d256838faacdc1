"""Benchmark cases behind ``benchmarks/run.py`` (speed and memory, as ratios).

Each backend runs in its own worker process (``python -m bench.worker``) because
``KERAS_BACKEND`` is read once, at import. ``run.py`` starts the workers and merges
their JSON into ``benchmarks/results/bench.{json,md}``.
"""
