"""``python -m benchmarks.aws_scale``: the benchmark's command line (run.py)."""

from benchmarks.aws_scale.run import main

raise SystemExit(main())
