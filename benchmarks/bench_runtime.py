"""Latency of the robot runtime (``OnnxPolicy.act``, raw onnxruntime, a 1 kHz ControlLoop); prints JSON with --json.

    .venv/bin/python benchmarks/bench_runtime.py [FILE.onnx] [--json] [--n 20000] [--loop-seconds 5]

The code is ``export/bench.py`` (``trpo bench runtime`` runs the same); floors in docs/runtime.md.
"""

import sys

from export.bench import main

if __name__ == "__main__":
    sys.exit(main())
