"""What each ``trpo`` subcommand does (the parser lives in :mod:`trpo_tf.app.cli`).

Every handler takes the parsed ``argparse.Namespace`` and returns an exit code. Inputs are checked before
anything is written: a bad task, config value or run directory raises before a run directory exists.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable

from trpo_tf.app.errors import UsageError
from trpo_tf.interrupts import mark_work_done


def dispatch(args: argparse.Namespace) -> int:
    """Run the handler of ``args.command``."""
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "tasks": cmd_tasks, "train": cmd_train, "evaluate": cmd_evaluate, "export": cmd_export,
        "export-c": cmd_export_c, "robustness": _cmd_robustness,
        "run-onnx": cmd_run_onnx, "render": cmd_render, "plot": cmd_plot, "bench": cmd_bench, "demo": cmd_demo,
    }
    return handlers[args.command](args)


# ----------------------------------------------------------------------------------------------- tasks
def cmd_tasks(args: argparse.Namespace) -> int:
    """List the registry (or one task in full); JSON with ``--json``."""
    import robots

    if args.name is not None:
        if not args.name.strip():
            raise UsageError("task name is empty; `trpo tasks` lists them all")
        spec = robots.find_task(args.name) or _gymnasium_task(args.name)
        if args.json:
            from robots.factory import describe

            info, swept = describe(spec.name), _swept_as()
            for axis, about in info["axes"].items():
                about["robustness_sweep"] = swept.get(axis)  # the `trpo robustness` axis of the same quantity
            print(json.dumps(spec.as_dict() | {"randomization": info}, indent=2))
            return 0
        print(f"{spec.name}  ({spec.gym_id}, {spec.simulator} {spec.family}, {spec.control_hz:g} Hz)")
        if spec.description:
            print(f"  {spec.description}")
        print(f"  obs_dim {spec.obs_dim}, act_dim {spec.act_dim}, preset {spec.preset or '-'}")
        start = 0
        for f in spec.obs_layout:
            span = f"[{start}]" if f.size == 1 else f"[{start}:{start + f.size}]"
            print(f"  {span:>9}  {f.name:<24} {f.unit:<8} {f.description}")
            start += f.size
        _print_randomization(spec.name)
        return 0
    specs = robots.list_tasks()
    if args.json:
        print(json.dumps([s.as_dict() for s in specs], indent=2))
        return 0
    header = ("name", "gym id", "simulator", "family", "obs", "act", "Hz", "observation layout")
    rows = [(s.name, s.gym_id, s.simulator, s.family, str(s.obs_dim), str(s.act_dim), f"{s.control_hz:g}",
             _layout_summary(s.obs_layout)) for s in specs]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    print("\nAny gymnasium id also works as --task. Details: trpo tasks NAME")
    return 0


def _print_randomization(name: str) -> None:
    """What the task can randomize (``--set randomization=...``) and each axis's default."""
    from robots.factory import describe

    info = describe(name)
    swept = _swept_as()
    print("  randomization (--set 'randomization={axis: [lo, hi], ...}', or randomization=default):")
    for axis, a in info["axes"].items():
        tag = f" [trpo robustness --axes {swept[axis]}]" if axis in swept else ""
        print(f"    {axis:<20} default {str(a['default']):<12} ({a['unit']}) {a['description']}{tag}")
    if "push_interval_s" in info:
        print(f"    push_interval_s      default {info['push_interval_s']:g} s between pushes")
    sigma = ", ".join(f"{k} {v:g}" for k, v in info.get("obs_noise_std", {}).items())
    if sigma:
        print(f"    obs noise σ at obs_noise_scale 1 (override with obs_noise_std): {sigma}")


def _swept_as() -> dict[str, str]:
    """Randomization axis → the ``trpo robustness`` axis that sweeps the same quantity, with its values."""
    from export.robustness import SWEEPS, axis_settings

    return {key: f"{name}: {', '.join(f'{axis_settings(name, v)[key]:g}' for v in values)}"
            for name, (key, values) in SWEEPS.items()}


def _cmd_robustness(args: argparse.Namespace) -> int:
    from trpo_tf.app.robustness import cmd_robustness

    return cmd_robustness(args)


def _gymnasium_task(gym_id: str) -> Any:
    """A TaskSpec describing any gymnasium id (docs/cli.md: any gymnasium id works wherever a task is
    expected); UnknownTaskError if gymnasium does not know it either, EnvSetupError if it cannot be used."""
    import robots
    from trpo_tf.env_check import open_env
    from trpo_tf.run_dir import RunInfo, TaskDescription

    resolved = robots.resolve_task(gym_id)  # UnknownTaskError listing the known names
    env = open_env(resolved.env_factory(), gym_id)
    try:
        info = RunInfo.from_env(TaskDescription(**resolved.description()), env)
    finally:
        env.close()
    layout = tuple(robots.ObsField(**f) for f in info.obs_layout)
    return robots.TaskSpec(name=gym_id, gym_id=gym_id, simulator="gymnasium", family="-", obs_dim=info.obs_dim,
                           act_dim=info.act_dim, control_hz=info.control_hz, obs_layout=layout,
                           description="a gymnasium id (not in the trpo-tf registry: default settings, no preset)")


def _layout_summary(layout: Any, width: int = 60) -> str:
    text = ", ".join(f.name if f.size == 1 else f"{f.name}[{f.size}]" for f in layout)
    return text if len(text) <= width else text[: width - 1] + "…"


# ----------------------------------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    """Train from scratch, or ``--resume DIR``; prints a summary and the next commands."""
    progress = not args.no_progress
    if args.resume:
        given = [flag for flag, value in (("--task", args.task), ("--seed", args.seed), ("--n-envs", args.n_envs),
                                          ("--out", args.out), ("--config", args.config),
                                          ("--set", args.overrides), ("--ray", args.ray))
                 if value not in (None, [])]
        if given:
            raise UsageError(f"--resume continues with the run's own config.yaml; it accepts only --steps "
                             f"(got {', '.join(given)})")
        from trpo_tf.app.training import resume

        result = resume(args.resume, total_steps=args.steps, progress=progress)  # checks the run dir once
    else:
        from trpo_tf.app.training import build_config, default_run_dir, make_trainer

        flags = {"total_steps": args.steps, "seed": args.seed, "n_envs": args.n_envs}
        if args.ray is not None:
            flags.update(vector_env="ray", ray_address=args.ray)
        config = build_config(args.task, args.config, args.overrides, flags)
        out = Path(args.out) if args.out else default_run_dir(config.task)
        result = make_trainer(config, out, progress=progress).train()
    mark_work_done()  # checkpoint, metrics and eval.json are written: a Ctrl-C during the summary is ignored
    print_train_summary(result)
    return 0


def print_train_summary(result: dict[str, Any]) -> None:
    run, last = result["run_dir"], result.get("last") or {}
    if last:
        print(f"run {run}: {last['iteration']} iterations, {last['env_steps']:,} env steps in "
              f"{last['time_s']:.0f} s ({last['env_steps'] / max(last['time_s'], 1e-9):,.0f} steps/s overall)")
        if last.get("episodes"):
            print(f"  last batch: return {last['episode_return_mean']:.2f} ± {last['episode_return_std']:.2f} "
                  f"over {last['episodes']} episodes")
    else:
        print(f"run {run}: already at its total steps, nothing to train")
    ev = result.get("eval")
    if ev:
        print(f"  evaluation: {_eval_line(ev)}")
    print(f"next: trpo evaluate {run} | trpo export {run} | trpo render {run} | trpo plot {run}")


def _eval_line(ev: dict[str, Any]) -> str:
    text = f"return {ev['mean_return']:.2f} ± {ev['std_return']:.2f} over {ev['episodes']} deterministic episodes"
    if "success_rate" in ev:
        text += f", success {ev['success_rate']:.0%}"
    return text


# -------------------------------------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    """Deterministic evaluation of the newest checkpoint; writes ``DIR/eval.json`` when it can hold the run's
    lock. On a run that is training (or a read-only one) it evaluates and prints, and leaves eval.json alone."""
    import robots
    from trpo_tf.episodes import run_episodes
    from trpo_tf.files import write_json_atomic
    from trpo_tf.policy import load_policy
    from trpo_tf.run_dir import RunDir, RunDirError
    from trpo_tf.run_lock import RunLock

    policy = load_policy(args.run_dir)  # checks the run dir (and its newest checkpoint) once
    try:
        lock: Any = RunLock(args.run_dir, "evaluate").acquire()
    except RunDirError as exc:  # busy (RunLockedError) or not writable
        lock, busy = None, str(exc).split(";")[0]
    try:
        seed = 10_000 + policy.config.seed if args.seed is None else args.seed
        make_env = robots.EnvFactory(policy.info.gym_id, dict(policy.info.env_kwargs))
        result = run_episodes(policy.act, make_env, args.episodes, seed)
        result = {"task": policy.info.task, "iteration": policy.iteration, "env_steps": policy.env_steps, **result}
        if lock is not None:
            write_json_atomic(RunDir(args.run_dir).eval, result)
        else:
            print(f"trpo: note: eval.json not written: {busy}", file=sys.stderr)
    finally:
        if lock is not None:
            lock.release()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{policy.info.task} after {policy.env_steps:,} env steps: {_eval_line(result)}")
    return 0


# ------------------------------------------------------------------------------------- export, run-onnx
def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def cmd_export(args: argparse.Namespace) -> int:
    """Export to ONNX (and with ``--format c`` on to C); a failed parity gate raises ParityError or its
    CParityError (exit 1, nothing written by the failed step)."""
    from export.onnx import export_onnx
    from trpo_tf.app.user_input import check_output_file, run_write_lock
    from trpo_tf.interrupts import deferred_interrupts
    from trpo_tf.run_dir import RunDir

    RunDir(args.run_dir).check(require_checkpoint=False)  # the layout; load_policy checks the checkpoint
    # With --format c, --out names the C directory; the ONNX file goes to its default place in the run.
    c_out = _c_out_dir(args.out or Path(args.run_dir) / "policy_c") if args.format == "c" else None
    out = check_output_file((None if c_out else args.out) or RunDir(args.run_dir).onnx, "export --out",
                            "policy.onnx")
    # Ctrl-C stops the export between its phases; once the file is written, the lock release and the report
    # finish too, and a Ctrl-C after that is ignored (exit 130 means nothing was written).
    with deferred_interrupts():
        lock = run_write_lock(args.run_dir, out, "export")  # only when writing into the run itself
        try:
            r = export_onnx(args.run_dir, out)
        finally:
            if lock is not None:
                lock.release()
        if c_out is None:
            mark_work_done()
        print(f"wrote {r.path} (+ {r.sidecar}) in {r.seconds:.1f} s, opset {r.opset}")
        print(f"  parity vs TensorFlow: max abs error {r.max_abs_error:.3g} (tolerance {r.tolerance:g}) on "
              f"{r.n_observations} observations, {r.n_recorded} recorded in the simulator")
    if c_out is not None:
        return _export_c(r.path, c_out, args.name)
    print(f"next: trpo run-onnx {r.path}")
    return 0


def cmd_export_c(args: argparse.Namespace) -> int:
    """An exported ONNX file → policy.h + policy.c, behind the C parity gate (export/c_export.py)."""
    if not Path(args.onnx_file).is_file():
        raise FileNotFoundError(2, "no such ONNX file", args.onnx_file)
    return _export_c(args.onnx_file, _c_out_dir(args.out or Path(args.onnx_file).parent / "policy_c"), args.name)


def _c_out_dir(out: str | os.PathLike) -> Path:
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out must be a directory for policy.h and policy.c; {path} is a file")
    return path


def _export_c(onnx_path: str | os.PathLike, out: Path, name: str) -> int:
    from export.c_export import export_c

    r = export_c(onnx_path, out, prefix=name)
    mark_work_done()  # policy.h and policy.c are written: a Ctrl-C during the report is ignored
    fp = r.footprint
    print(f"wrote {r.header} and {r.source} in {r.seconds:.1f} s")
    print(f"  parity vs onnxruntime ({r.compiler}): max abs error {r.max_abs_error:.3g} (tolerance "
          f"{r.tolerance:g}) on {r.n_observations} observations, {r.n_recorded} recorded in the simulator")
    print(f"  footprint: {fp.const_bytes} B const data, policy.o {fp.text_bytes} B, stack {fp.stack_bytes} B")
    print("next: docs/runtime.md, 'Plain C' (docs/examples/policy_loop.c is a fixed-rate loop around it)")
    return 0


def cmd_run_onnx(args: argparse.Namespace) -> int:
    """Closed-loop episodes of an exported policy (onnxruntime only)."""
    if not Path(args.onnx_file).is_file():
        raise FileNotFoundError(2, "no such ONNX file", args.onnx_file)
    from export.sim import run_onnx

    result = _plain(run_onnx(args.onnx_file, task=args.task, episodes=args.episodes, seed=args.seed))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.onnx_file}: {_eval_line(result) if 'mean_return' in result else result}")
    return 0


# --------------------------------------------------------------------------------------- render, plot
def cmd_render(args: argparse.Namespace) -> int:
    """A video of deterministic episodes."""
    from trpo_tf.app.user_input import check_output_file, run_write_lock
    from trpo_tf.app.video import render_run
    from trpo_tf.run_dir import RunDir

    out = args.out or str(Path(args.run_dir) / "policy.mp4")
    if Path(out).suffix.lower() not in (".mp4", ".gif"):
        raise UsageError(f"video file must end in .mp4 or .gif, got {Path(out).name!r}")
    RunDir(args.run_dir).check(require_checkpoint=False)  # the layout; load_policy checks the checkpoint
    out_path = check_output_file(out, "render --out", "policy.mp4")
    lock = run_write_lock(args.run_dir, out_path, "render")
    try:
        result = render_run(args.run_dir, out_path, episodes=args.episodes, seed=args.seed,
                            max_frames=args.max_frames)
    finally:
        if lock is not None:
            lock.release()
    returns = ", ".join(f"{r:.1f}" for r in result["returns"])
    print(f"wrote {result['path']}: {result['frames']} frames at {result['fps']} fps; episode returns {returns}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Learning curves (mean ± std over runs of one task)."""
    from trpo_tf.app.plotting import plot_runs
    from trpo_tf.app.user_input import check_output_file, inside, run_write_lock

    out = check_output_file(args.out or str(Path(args.run_dirs[0]) / "curve.png"), "plot --out", "curve.png")
    target = next((d for d in args.run_dirs if Path(d).is_dir() and inside(out, Path(d))), None)
    lock = run_write_lock(target, out, "plot") if target is not None else None
    try:
        path = plot_runs(args.run_dirs, out, x=args.x, y=args.y)
    finally:
        if lock is not None:
            lock.release()
    print(f"wrote {path}")
    return 0


# ----------------------------------------------------------------------------------------------- bench
def print_vector_env_table(result: dict[str, Any]) -> None:
    """``trpo bench train --vector-env ...``: one line per mode."""
    m = result["machine"]
    print(f"{result['task']}, {result['steps']:,} steps x {result['rounds']} round(s) per mode; "
          f"{m['cpu_count']} cores, load {m['load_avg_1_5_15']}")
    print(f"{'mode':<10} {'steps/s':>9} {'rel.':>6} {'collect':>9} {'update':>8} {'msg ovh':>9}")
    for mode, row in result["modes"].items():
        key = next((k for k in row if k.endswith("_overhead_ms_median")), None)
        overhead = f"{row[key]:.1f} ms" if key else "-"
        print(f"{mode:<10} {row['steady_steps_per_s']:>9,.0f} {row['relative_to_first']:>6.2f} "
              f"{row['collect_s_median']:>8.3f}s {row['policy_s_median']:>7.3f}s "
              f"{overhead:>9}")


def cmd_bench(args: argparse.Namespace) -> int:
    """Dispatch ``trpo bench update|train|profile|skill|runtime|envs``."""
    if args.bench == "runtime":
        argv = ([args.onnx_file] if args.onnx_file else []) + ["--n", str(args.n)] + (["--json"] if args.json else [])
        if args.onnx_file and not Path(args.onnx_file).is_file():
            raise FileNotFoundError(2, "no such ONNX file", args.onnx_file)
        if args.c:
            from export.c_bench import main as bench_c_main  # onnx + a C compiler

            return int(bench_c_main(argv))
        from export.bench import main as bench_runtime_main

        return int(bench_runtime_main(argv))
    import robots

    if args.bench == "envs":
        for task in args.tasks or []:
            robots.resolve_task(task)  # an unknown task → exit 2 before any timing
        from robots.bench import main as bench_envs_main

        return int(bench_envs_main((["--tasks", *args.tasks] if args.tasks else []) + ["--steps", str(args.steps)]))
    from trpo_tf.app import bench

    if args.bench == "update":
        spec = robots.find_task(args.task) or _gymnasium_task(args.task)  # synthetic data of the task's shapes
        result = bench.bench_update(obs_dim=spec.obs_dim, act_dim=spec.act_dim, batch=args.batch,
                                    cg_iters=args.cg_iters, critic_epochs=args.critic_epochs,
                                    jit_compile=not args.no_jit, repeats=args.repeats)
    elif args.bench == "profile":
        from trpo_tf.app.bench_profile import profile_update

        robots.resolve_task(args.task)
        result = {"update": profile_update(cg_iters=args.cg_iters, critic_epochs=args.critic_epochs,
                                           rounds=args.rounds),
                  "training": bench.bench_train(task=args.task, steps=args.steps, raw_env_steps=2_000)}
    elif args.bench == "skill":
        from trpo_tf.app.skill import bench_skill

        robots.resolve_task(args.task)
        result = _plain(bench_skill(task=args.task, target=args.target, seed=args.seed, eval_every=args.eval_every,
                                    eval_episodes=args.eval_episodes, max_steps=args.max_steps,
                                    assignments=args.overrides, overlap=not args.no_overlap))
        print(json.dumps(result, indent=2))
        return 0 if result["reached"] else 1
    else:
        from trpo_tf.app.training import config_for_task
        from trpo_tf.config import parse_assignments

        overrides = {**parse_assignments(args.overrides), **({"n_envs": args.n_envs} if args.n_envs else {})}
        config_for_task(args.task, overrides)  # a bad task or --set → exit 2 before any timing
        if args.vector_env:
            for mode in args.vector_env:  # a bad mode or layout → exit 2 before any timing
                try:
                    mode_overrides = bench.vector_env_overrides(mode)
                except ValueError as exc:
                    raise UsageError(str(exc)) from None
                config_for_task(args.task, {**overrides, **mode_overrides})
            result = bench.bench_vector_envs(args.task, args.vector_env, args.steps, args.rounds, overrides)
            if not args.json:
                print_vector_env_table(result)
                return 0
        else:
            result = bench.bench_train(task=args.task, steps=args.steps, overrides=overrides)
    result = _plain(result)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in (result.items() if isinstance(result, dict) else []):
            text = f"{value:,.3f}" if isinstance(value, float) and math.isfinite(value) else value
            print(f"{key}: {text}")
    return 0


# ------------------------------------------------------------------------------------------------ demo
def cmd_demo(args: argparse.Namespace) -> int:
    """Train → export → run the ONNX file → report."""
    from trpo_tf.app.demo import run_demo

    return run_demo(task=args.task, steps=args.steps, out=args.out, seed=args.seed)
