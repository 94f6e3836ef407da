"""Env-steps per second of registered tasks, one process, random actions; prints one JSON object.

    .venv/bin/python benchmarks/bench_envs.py --tasks hopper-bullet ant-bullet --steps 20000 [--clock cpu]

The code is ``robots/bench.py`` (``trpo bench envs`` runs the same).
"""

import sys

from robots.bench import main

if __name__ == "__main__":
    sys.exit(main())
