"""Latency of the robot runtime (``OnnxPolicy.act``, raw onnxruntime, a 1 kHz ControlLoop); prints JSON with --json.

    .venv/bin/python benchmarks/bench_runtime.py [FILE.onnx] [--json] [--n 20000] [--loop-seconds 5]
    .venv/bin/python benchmarks/bench_runtime.py [FILE.onnx] --c [--json]    # the policy exported to C

The code is ``export/bench.py`` and, with ``--c``, ``export/c_bench.py`` (``trpo bench runtime [--c]`` runs
the same); floors in docs/runtime.md.
"""

import sys

if __name__ == "__main__":
    if "--c" in sys.argv[1:]:
        from export.c_bench import main
    else:
        from export.bench import main
    sys.exit(main())
