"""Figure helpers: matplotlib on the Agg backend (no display needed)."""

from __future__ import annotations

from typing import Any

__all__ = ["new_figure"]


def new_figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] | None = None) -> tuple[Any, Any]:
    """``(fig, axes)`` from ``plt.subplots`` on the Agg backend, sized 4.5 x 3.5 inches per panel."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    size = size or (4.5 * ncols, 3.5 * nrows)
    return plt.subplots(nrows, ncols, figsize=size)
