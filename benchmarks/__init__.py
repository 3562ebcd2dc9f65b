"""Scale benchmarks of firecrestspawner (issue #7).

Run with ``.venv/bin/python -m benchmarks.run --quick`` (minutes) or
``--full`` (the figures in ``docs/benchmarks.md``). See ``benchmarks/run.py``.
"""
