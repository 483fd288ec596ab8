"""Benchmarks of the pipeline: cold start, AWS calls per file, handler overhead, local throughput, artifact sizes.

Run them all with ``make bench`` (``python -m bench.run``); ``python -m bench.run --help`` lists the options.
Timings are reported, never asserted; the deterministic call counts are also asserted in
``tests/unit/test_aws_calls.py``.
"""
