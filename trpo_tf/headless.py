"""Headless MuJoCo rendering (OSMesa) in the same process as TensorFlow.

Measured here (TF 2.21, mujoco 4.0, Debian 12 libosmesa6): with ``MUJOCO_GL=osmesa``, ``import mujoco`` loads
libOSMesa — and through it Mesa's own LLVM — with ``RTLD_GLOBAL`` (PyOpenGL's choice). TensorFlow carries
another LLVM. Two LLVMs in one symbol scope crash the process: the first XLA-compiled call segfaults, a run
without XLA aborts at exit (``free(): invalid pointer``), and importing TensorFlow *after* such a mujoco
segfaults at once.

The cure: import TensorFlow first, then load libOSMesa ourselves with ``RTLD_LOCAL | RTLD_DEEPBIND`` so Mesa
binds to its own LLVM; mujoco's later load of the same library reuses that handle. ``import trpo_tf`` does
both. So: in a process that renders MuJoCo headless and uses TensorFlow, import ``trpo_tf`` (or TensorFlow
and then this module) before ``mujoco``, ``gymnasium``'s MuJoCo envs or ``robots``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os


_isolated: list[ctypes.CDLL] = []


def prepare_osmesa() -> bool:
    """Call after ``import tensorflow`` and before ``import mujoco``; True if OSMesa is isolated."""
    if _isolated:
        return True
    if os.environ.get("MUJOCO_GL", "").strip().lower() != "osmesa" or not hasattr(os, "RTLD_DEEPBIND"):
        return False
    name = ctypes.util.find_library("OSMesa")
    if name is None:
        return False  # mujoco reports the missing library when rendering is asked for
    _isolated.append(ctypes.CDLL(name, mode=os.RTLD_LOCAL | os.RTLD_DEEPBIND))
    return True
