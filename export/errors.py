"""Errors of the exporter, importable without TensorFlow (the CLI catches them by type)."""

from __future__ import annotations


class ParityError(ValueError):
    """The ONNX graph disagrees with TensorFlow by more than the tolerance; nothing was written."""

    def __init__(self, max_abs_error: float, tolerance: float, n_observations: int, detail: str = "") -> None:
        self.max_abs_error, self.tolerance, self.n_observations = max_abs_error, tolerance, n_observations
        super().__init__(
            f"ONNX parity check failed: max abs error {max_abs_error:.3g} > tolerance {tolerance:.3g} "
            f"on {n_observations} observations{detail}; no file was written"
        )


class CParityError(ParityError):
    """The compiled C code disagrees with onnxruntime by more than the tolerance; nothing was written."""

    def __init__(self, max_abs_error: float, tolerance: float, n_observations: int, detail: str = "") -> None:
        super().__init__(max_abs_error, tolerance, n_observations, detail)
        self.args = (f"C parity check failed: max abs error {max_abs_error:.3g} > tolerance {tolerance:.3g} "
                     f"on {n_observations} observations{detail}; no file was written",)


class UnsupportedGraphError(ValueError):
    """An ONNX file the C export cannot render faithfully (not ours, or an operator outside our set)."""


class CompilerNotFoundError(RuntimeError):
    """No C compiler on this machine (set ``CC`` or install gcc)."""
