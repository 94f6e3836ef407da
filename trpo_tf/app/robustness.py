"""``trpo robustness``: sweep an ONNX policy over randomization axes and report (app layer).

The sweep itself is :func:`export.robustness.sweep` (TensorFlow-free); this module parses the command
line, shows progress, prints the table, draws one panel per axis and can write the summary into the
policy's sidecar (``<file>.onnx.json``, key ``robustness``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from trpo_tf.app.errors import UsageError


def cmd_robustness(args: argparse.Namespace) -> int:
    """Run the sweep; JSON with ``--json``, a PNG with ``--out``, the sidecar with ``--write-sidecar``."""
    if not Path(args.onnx_file).is_file():
        raise FileNotFoundError(2, "no such ONNX file", args.onnx_file)
    if args.out and Path(args.out).suffix.lower() != ".png":
        raise UsageError(f"--out must name a .png file, got {Path(args.out).name!r}")
    from export.robustness import SweepError, sweep

    axes = None
    if args.axes:
        axes = [a.strip() for item in args.axes for a in item.split(",") if a.strip()]

    def progress(done: int, total: int, label: str) -> None:
        if not args.no_progress:
            print(f"\r[{done}/{total}] {label:<40}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    try:
        report = sweep(args.onnx_file, task=args.task, episodes=args.episodes, seed=args.seed, axes=axes,
                       points=args.point or (), twin=not args.no_twin, progress=progress)
    except SweepError as e:
        raise UsageError(str(e)) from None
    if args.out:
        report["plot"] = os.fspath(plot_robustness(report, args.out))
    if args.write_sidecar:
        write_sidecar_summary(args.onnx_file, report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def _row(label: str, r: dict[str, Any]) -> str:
    rel = r.get("relative_return")
    text = f"  {label:<22} return {r['mean_return']:>10.2f}  " + (f"{rel:>7.1%} of nominal" if rel is not None else "")
    if "success_rate" in r:
        text += f"  success {r['success_rate']:.0%}"
    return text


def print_report(report: dict[str, Any]) -> None:
    print(f"{report['onnx_path']} on {report['task']}: {report['episodes']} episodes per point, seeds "
          f"{report['seed']}..{report['seed'] + report['episodes'] - 1}; trained under "
          f"{report['trained_under'] or 'no randomization'}")
    print(_row("nominal", report["nominal"]))
    for axis, points in report["axes"].items():
        for p in points:
            print(_row(f"{axis}={p['value']:g}", p))
    if "twin" in report:
        print(_row(f"twin {report['twin']['task']}", report["twin"]))
    for p in report["points"]:
        print(_row(p["point"], p))


def plot_robustness(report: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    """One panel per axis: mean return relative to nominal against the axis value (twin as a line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = list(report["axes"].items())
    n = max(1, len(axes))
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, grid = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, (name, points) in zip(grid.flat, axes):
        x = [p["value"] for p in points]
        y = [p["relative_return"] if p["relative_return"] is not None else float("nan") for p in points]
        ax.plot(x, y, "o-", label="return / nominal")
        if points and "success_rate" in points[0]:
            ax.plot(x, [p["success_rate"] for p in points], "s--", label="success rate")
        if "twin" in report and report["twin"].get("relative_return") is not None:
            ax.axhline(report["twin"]["relative_return"], color="grey", ls=":", label=f"twin {report['twin']['task']}")
        ax.axhline(1.0, color="black", lw=0.5)
        ax.set_title(name)
        ax.set_xlabel({"delay": "action delay (steps)", "obs_noise": "× default σ",
                       "push": "× default push"}.get(name, "× nominal"))
        ax.grid(alpha=0.3)
    for ax in list(grid.flat)[len(axes):]:
        ax.axis("off")
    grid.flat[0].legend(fontsize=7)
    fig.suptitle(f"{Path(report['onnx_path']).name} on {report['task']} (nominal return "
                 f"{report['nominal']['mean_return']:.1f})", fontsize=9)
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def write_sidecar_summary(onnx_file: str | os.PathLike[str], report: dict[str, Any]) -> Path:
    """Put the sweep's summary into ``<file>.onnx.json`` under ``robustness`` (atomic rewrite)."""
    from export.metadata import PolicyMetadata, sidecar_path
    from export.runtime import OnnxPolicy

    path = sidecar_path(onnx_file)
    meta = PolicyMetadata.from_json(path.read_text(encoding="utf-8")) if path.is_file() \
        else OnnxPolicy(onnx_file).metadata
    summary = {k: report[k] for k in ("task", "episodes", "seed", "nominal", "axes", "points") if k in report}
    if "twin" in report:
        summary["twin"] = report["twin"]
    data = meta.to_dict() | {"robustness": summary}
    text = PolicyMetadata.from_dict(data).to_json(indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
