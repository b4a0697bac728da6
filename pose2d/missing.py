"""Frames where nobody was found: linear interpolation in time, or NaN."""

from __future__ import annotations

import numpy as np


def fill_missing(x: np.ndarray, missing: np.ndarray, mode: str = "interpolate") -> np.ndarray:
    """Fill the missing frames of ``x`` ``(F, ...)``; ``missing`` ``(F,)`` bool.

    ``interpolate``: per value, linear between the nearest valid frames; before the first and
    after the last valid frame the nearest valid value is repeated. ``nan``: NaN.
    With no valid frame at all every value becomes NaN in either mode.
    """
    if mode not in ("interpolate", "nan"):
        raise ValueError(f"unknown missing-frame mode {mode!r}; use 'interpolate' or 'nan'")
    missing = np.asarray(missing, dtype=bool)
    out = np.array(x, dtype=np.float32, copy=True)
    if not missing.any():
        return out
    valid = np.flatnonzero(~missing)
    if mode == "nan" or len(valid) == 0:
        out[missing] = np.nan
        return out
    flat = out.reshape(len(out), -1)
    holes = np.flatnonzero(missing)
    # np.interp is 1D; one call per column (J·C ≤ 51 columns), vectorised over frames.
    for c in range(flat.shape[1]):
        flat[holes, c] = np.interp(holes, valid, flat[valid, c])
    return out
