"""The ``trpo`` command: argument parsing, dispatch, and one-line errors.

Exit codes: 0 success; 1 a check failed (the export parity gate, a benchmark floor); 2 bad input (unknown
task, bad config value, missing or foreign run directory, corrupted checkpoint, missing file), reported as
ONE line ``trpo: error: ...`` on stderr with nothing written. Heavy imports (TensorFlow, simulators) happen
inside the subcommands, so ``trpo --help`` stays fast.

Native libraries (TensorFlow's C++ runtime, PyBullet) print start-up chatter straight to file descriptor 2.
While a command runs, that descriptor points at a temporary file and Python's ``sys.stderr`` at the real
terminal; the chatter is shown only after an unexpected crash, or always with ``--verbose``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import re
import signal
import sys
import tempfile
import traceback
from collections.abc import Iterator
from typing import IO, NoReturn

from trpo_tf.app.errors import UsageError
from trpo_tf.interrupts import mark_work_done, reset_work_done, work_done

PROG = "trpo"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``trpo train: error: ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _c_prefix(text: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,39}", text):
        raise argparse.ArgumentTypeError(f"expected a lowercase C identifier of at most 40 characters, got {text!r}")
    return text


def _at_least_100(text: str) -> int:
    value = _int(text)
    if value < 100:
        raise argparse.ArgumentTypeError(f"expected an integer >= 100 (a p99 needs 100 samples), got {value}")
    return value


def _seed(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 2**32 - 1:
        raise argparse.ArgumentTypeError(f"expected a seed in 0..{2**32 - 1}, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The full ``trpo`` parser; each subcommand's handler is stored as ``args.handler`` (a name)."""
    parser = _Parser(prog=PROG, description="Train robot policies with TRPO (TensorFlow), export them to ONNX.")
    parser.add_argument("--verbose", action="store_true",
                        help="show the native libraries' log output (TensorFlow, PyBullet) on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("tasks", help="list the registered robot tasks",
                       description="List registered tasks (any gymnasium id also works as a task).")
    p.add_argument("name", nargs="?", help="show one task in full (its observation layout with units)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("train", help="train a policy (or resume a run)",
                       description="Train a policy. Settings: task preset <- --config file <- --set <- flags.")
    p.add_argument("--task", help="task name or gymnasium id (see `trpo tasks`)")
    p.add_argument("--steps", type=_int, help="total environment steps (config key total_steps)")
    p.add_argument("--seed", type=_seed, help="random seed (default 0)")
    p.add_argument("--n-envs", type=_int, help="parallel environments (config key n_envs)")
    p.add_argument("--out", help="run directory to create (default runs/<task>-<date>-<time>)")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML file of config keys (e.g. a run's config.yaml)")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", nargs="+", action="extend", default=[],
                   help="override config keys, values in YAML syntax: --set max_kl=0.02 hidden_sizes=[128,128]")
    p.add_argument("--ray", metavar="ADDRESS", nargs="?", const="",
                   help="rollout workers on Ray (vector_env=ray): a private local Ray instance, or the cluster at "
                        "ADDRESS (auto, HOST:PORT, ray://HOST:PORT; default $RAY_ADDRESS); docs/scaling.md")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its newest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar / per-iteration lines")

    p = sub.add_parser("evaluate", help="deterministic evaluation of a run (writes eval.json)",
                       description="Run the policy's mean action for N episodes on fixed seeds; writes eval.json.")
    p.add_argument("run_dir", metavar="DIR")
    p.add_argument("--episodes", type=_positive_int, default=10, help="episodes (default 10)")
    p.add_argument("--seed", type=_seed, help="seed of the first episode (default 10000 + the run's seed)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("export", help="export a run's policy to ONNX (with a parity check against TF), or to C",
                       description="Export to ONNX; fails (exit 1) if onnxruntime disagrees with TensorFlow. "
                                   "--format c also translates that ONNX file to plain C (see export-c).")
    p.add_argument("run_dir", metavar="DIR")
    p.add_argument("--out", metavar="PATH", help="output file (default DIR/policy.onnx); with --format c the "
                                                 "directory for policy.h and policy.c (default DIR/policy_c)")
    p.add_argument("--format", choices=("onnx", "c"), default="onnx",
                   help="onnx (default), or c: DIR/policy.onnx and then policy.h/policy.c from it")
    p.add_argument("--name", type=_c_prefix, default="trpo_policy",
                   help="C symbol prefix with --format c (default trpo_policy)")

    p = sub.add_parser("export-c", help="translate an exported ONNX policy to plain C (policy.h + policy.c)",
                       description="Generate C99 from an exported ONNX file, compile it with the system compiler "
                                   "and compare it with onnxruntime before writing; fails (exit 1) if they "
                                   "disagree. See docs/runtime.md.")
    p.add_argument("onnx_file", metavar="FILE.onnx")
    p.add_argument("--out", metavar="DIR", help="output directory (default: policy_c next to FILE.onnx)")
    p.add_argument("--name", type=_c_prefix, default="trpo_policy",
                   help="C symbol prefix: NAME_act, NAME_OBS_DIM, ... (default trpo_policy)")

    p = sub.add_parser("run-onnx", help="run an exported ONNX policy in its simulator (no TensorFlow)",
                       description="Closed-loop episodes of an exported policy with onnxruntime.")
    p.add_argument("onnx_file", metavar="FILE.onnx")
    p.add_argument("--task", help="task to run it on (default: the task in the file's metadata)")
    p.add_argument("--episodes", type=_positive_int, default=10, help="episodes (default 10)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the first episode (default 0)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("robustness", help="sweep an ONNX policy over randomization axes (no TensorFlow)",
                       description="Mean return and success rate of an exported policy with one thing changed "
                                   "at a time (mass, friction, actuator strength, contact softness, action "
                                   "delay, observation noise, pushes), in the twin simulator, and at named "
                                   "points.")
    p.add_argument("onnx_file", metavar="FILE.onnx")
    p.add_argument("--task", help="task to run it on (default: the task in the file's metadata)")
    p.add_argument("--episodes", type=_positive_int, default=5, help="episodes per point (default 5)")
    p.add_argument("--seed", type=_int, default=0, help="seed of the first episode of every point (default 0)")
    p.add_argument("--axes", nargs="+", metavar="AXIS",
                   help="axes to sweep: mass friction actuator contact delay obs_noise push (default: all the "
                        "task offers)")
    p.add_argument("--point", action="append", metavar="K=V,...",
                   help="also run this combination, e.g. --point mass=0.8,delay=2 (repeatable)")
    p.add_argument("--no-twin", action="store_true", help="do not run the task's twin simulator")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--out", metavar="FILE.png", help="also draw one panel per axis into this PNG")
    p.add_argument("--write-sidecar", action="store_true",
                   help="store the summary in FILE.onnx.json under 'robustness'")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")

    p = sub.add_parser("render", help="write a video (MP4 or GIF) of a run's policy",
                       description="Render deterministic episodes headless (MuJoCo via OSMesa, PyBullet tiny "
                                   "renderer) to an MP4 or GIF.")
    p.add_argument("run_dir", metavar="DIR")
    p.add_argument("--out", metavar="FILE", help="FILE.mp4 or FILE.gif (default DIR/policy.mp4)")
    p.add_argument("--episodes", type=_positive_int, default=1, help="episodes (default 1)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the first episode (default 0)")
    p.add_argument("--max-frames", type=_positive_int, default=1000, help="stop after this many frames")

    p = sub.add_parser("plot", help="plot learning curves of one or more runs",
                       description="Plot a metrics.csv column; several runs of one task become mean ± std.")
    p.add_argument("run_dirs", metavar="DIR", nargs="+")
    p.add_argument("--out", metavar="FILE.png", help="output image (default DIR/curve.png of the first run)")
    p.add_argument("--x", default="env_steps", help="x column (default env_steps)")
    p.add_argument("--y", default="episode_return_mean", help="y column (default episode_return_mean)")

    p = sub.add_parser("bench", help="benchmarks: update, train, profile, skill, runtime, envs",
                       description="Measure speeds; see docs/cli.md for what each prints.")
    bench = p.add_subparsers(dest="bench", metavar="WHAT", parser_class=_Parser)
    bench.required = True
    b = bench.add_parser("update", help="time one TRPO update (policy step + critic fit) on synthetic data")
    b.add_argument("--task", default="hopper", help="registered task whose obs/act sizes to use (default hopper)")
    b.add_argument("--batch", type=_positive_int, default=2048, help="samples per update (default 2048)")
    b.add_argument("--cg-iters", type=_positive_int, default=10, help="conjugate-gradient iterations (default 10)")
    b.add_argument("--critic-epochs", type=_int, default=5, help="critic epochs (default 5)")
    b.add_argument("--no-jit", action="store_true", help="do not XLA-compile the update")
    b.add_argument("--repeats", type=_positive_int, default=20, help="timed updates (default 20)")
    b.add_argument("--json", action="store_true")
    b = bench.add_parser("train", help="end-to-end env steps/s of a short training run")
    b.add_argument("--task", default="hopper", help="task (default hopper)")
    b.add_argument("--steps", type=_positive_int, default=20_480, help="environment steps (default 20480)")
    b.add_argument("--n-envs", type=_positive_int, help="parallel environments (default: the preset's)")
    b.add_argument("--vector-env", metavar="MODE", nargs="+",
                   help="compare vector envs side by side: sync, async, workers, ray, ray:K (K Ray workers), "
                        "e.g. --vector-env sync workers ray:2 (default: the preset's)")
    b.add_argument("--rounds", type=_positive_int, default=1,
                   help="with --vector-env: repeat the modes interleaved, report medians (default 1)")
    b.add_argument("--set", dest="overrides", metavar="KEY=VALUE", nargs="+", action="extend", default=[],
                   help="config overrides on top of the preset, e.g. --set overlap_critic=false")
    b.add_argument("--json", action="store_true")
    b = bench.add_parser("profile", help="one update by compiled piece (FLOPs, GFLOP/s vs numpy sgemm) and "
                                         "one training run's iterations by phase")
    b.add_argument("--task", default="hopper", help="task of the training part (default hopper)")
    b.add_argument("--steps", type=_positive_int, default=20_480, help="training steps (default 20480)")
    b.add_argument("--cg-iters", type=_positive_int, default=10, help="CG iterations of the update (default 10)")
    b.add_argument("--critic-epochs", type=_int, default=5, help="critic epochs of the update (default 5)")
    b.add_argument("--rounds", type=_positive_int, default=15, help="interleaved timing rounds (default 15)")
    b.add_argument("--json", action="store_true")
    b = bench.add_parser("skill", help="wall-clock seconds until a deterministic evaluation reaches a return")
    b.add_argument("--task", default="hopper", help="task (default hopper), trained with its preset")
    b.add_argument("--target", type=float, required=True, help="mean deterministic return to reach")
    b.add_argument("--seed", type=_int, default=0, help="training seed (default 0)")
    b.add_argument("--eval-every", type=_positive_int, default=20_480, help="env steps between evaluations "
                                                                           "(default 20480)")
    b.add_argument("--eval-episodes", type=_positive_int, default=5, help="episodes per evaluation (default 5)")
    b.add_argument("--max-steps", type=_positive_int, default=1_000_000, help="training budget (default 1M)")
    b.add_argument("--no-overlap", action="store_true", help="evaluate inline instead of beside training")
    b.add_argument("--set", dest="overrides", metavar="KEY=VALUE", nargs="+", default=[],
                   help="config overrides on top of the preset")
    b.add_argument("--json", action="store_true")
    b = bench.add_parser("runtime", help="ONNX act() latency and a 1 kHz control loop")
    b.add_argument("onnx_file", metavar="FILE.onnx", nargs="?", help="exported policy (default: a test MLP)")
    b.add_argument("--n", type=_at_least_100, default=20_000, help="timed act() calls (default 20000, >= 100)")
    b.add_argument("--c", action="store_true", help="export the policy to C and time the compiled call next to "
                                                    "act() and raw onnxruntime, with the footprint")
    b.add_argument("--json", action="store_true")
    b = bench.add_parser("envs", help="simulator steps/s with random actions")
    b.add_argument("--tasks", nargs="+", help="tasks (default: every registered task)")
    b.add_argument("--steps", type=_positive_int, default=10_000, help="timed steps per task (default 10000)")
    b.add_argument("--json", action="store_true")

    p = sub.add_parser("demo", help="train, export and run a robot policy end to end (a few minutes)",
                       description="Train a small robot task, export it to ONNX, run the ONNX file in closed "
                                   "loop, and print what it achieved.")
    p.add_argument("--task", default=None, help="task (default: the demo task, see docs/cli.md)")
    p.add_argument("--steps", type=_positive_int, help="training steps (default: the demo's budget)")
    p.add_argument("--out", help="run directory (default runs/demo-<task>-<date>-<time>)")
    p.add_argument("--seed", type=_seed, default=0)
    return parser


class _StderrHandler(logging.StreamHandler):
    """A logging handler that writes to whatever ``sys.stderr`` is at the time of the record."""

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:  # StreamHandler.__init__ assigns it; ignore
        pass


def _setup_logging() -> None:
    logger = logging.getLogger("trpo_tf")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


@contextlib.contextmanager
def native_stderr_captured(enabled: bool = True) -> Iterator[IO[bytes] | None]:
    """Point file descriptor 2 at a temporary file while Python's ``sys.stderr`` keeps the real stream."""
    if not enabled:
        yield None
        return
    sys.stderr.flush()
    saved = os.dup(2)
    capture = tempfile.TemporaryFile()
    os.dup2(capture.fileno(), 2)
    real = sys.stderr
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0), encoding="utf-8",
                                  errors="backslashreplace", write_through=True)
    try:
        yield capture
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        ours, sys.stderr = sys.stderr, real
        os.dup2(saved, 2)
        os.close(saved)
        with contextlib.suppress(Exception):
            ours.close()


def _tail(capture: IO[bytes] | None, lines: int = 30) -> str:
    if capture is None:
        return ""
    capture.seek(0)
    text = capture.read().decode("utf-8", "backslashreplace").splitlines()
    return "\n".join(text[-lines:])


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input (exit 2). Imported lazily: ``trpo --help`` stays light."""
    import gymnasium as gym

    from export.errors import CompilerNotFoundError, UnsupportedGraphError
    from export.runtime import PolicyFileError
    from export.sim import PolicyMismatchError
    from robots.registry import UnknownTaskError
    from trpo_tf.app.user_input import OutputPathError
    from trpo_tf.config import ConfigError
    from trpo_tf.env_check import EnvSetupError
    from trpo_tf.run_dir import RunDirError

    return (UsageError, ConfigError, UnknownTaskError, RunDirError, EnvSetupError, PolicyFileError,
            PolicyMismatchError, OutputPathError, gym.error.DependencyNotInstalled, FileNotFoundError,
            NotADirectoryError, IsADirectoryError, PermissionError, UnsupportedGraphError, CompilerNotFoundError)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``trpo`` console script and ``python -m trpo_tf``: returns the exit code.

    (Until the OSMesa isolation in :mod:`trpo_tf.headless`, this ended the process with ``os._exit`` to skip
    a crash in TensorFlow's and libOSMesa's C++ teardown; with TensorFlow imported first and OSMesa loaded
    ``RTLD_DEEPBIND``, the normal interpreter exit is clean: tests/test_cli.py checks it on MuJoCo + OSMesa.)
    """
    return _run(argv)


def _interrupt_until_finished(signum: int, frame: object) -> None:
    """The console script's SIGINT handler: KeyboardInterrupt while the command works, nothing once it has
    marked its work done (:func:`trpo_tf.interrupts.mark_work_done`) or returned its code."""
    if not work_done():
        raise KeyboardInterrupt


def console_main() -> None:
    """The ``trpo`` console script (and ``python -m trpo_tf``): :func:`main`, then the interpreter's exit with
    its code. Once the command has returned its code, Ctrl-C is ignored: the work is done and its files are
    closed. Without that, a Ctrl-C while the stderr capture closes ends the process with a KeyboardInterrupt
    traceback, and one during the teardown (~1.4 s here, most of it in TensorFlow's C++ destructors after
    Python has put back the default SIGINT action) kills it by SIGINT: exit -2 either way, instead of the
    command's code. (An ignored SIGINT survives the teardown; a Python handler does not.)"""
    signal.signal(signal.SIGINT, _interrupt_until_finished)
    code = main()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


_TENSORFLOW_COMMANDS = frozenset({"train", "evaluate", "export", "render", "demo", "bench"})


def _run(argv: list[str] | None) -> int:
    reset_work_done()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already printed as one line)
        return int(exc.code or 0)
    from trpo_tf.app import commands

    _setup_logging()
    with native_stderr_captured(enabled=not args.verbose) as capture:
        try:
            if args.command == "train":  # a busy run is refused before TensorFlow's start-up (seconds)
                from trpo_tf.run_lock import RunLock

                target = args.resume or args.out
                if target and os.path.isdir(target):
                    RunLock.check_free(target)
            if args.command in _TENSORFLOW_COMMANDS:
                from trpo_tf.compile_cache import enable

                enable()  # XLA executables from earlier runs (trpo_tf/compile_cache.py; TRPO_XLA_CACHE=0: off)
                # TensorFlow before mujoco, or MUJOCO_GL=osmesa crashes the process (trpo_tf/headless.py).
                import trpo_tf.models  # noqa: F401
            code = commands.dispatch(args)
            mark_work_done()
            return code
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # `trpo tasks | head`
            return 0
        except Exception as exc:
            if isinstance(exc, _user_errors()):
                print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
                return 2
            from export.errors import ParityError

            if isinstance(exc, ParityError):
                print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
                return 1
            native = _tail(capture)
            if native:
                print(f"--- native library log (last lines) ---\n{native}\n---", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            return 1


if __name__ == "__main__":
    console_main()
