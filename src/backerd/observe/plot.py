"""Signal-health plots along the tape, as PNG.

Theory of operation: four strips stacked top to bottom (corrected symbols per field,
key-match margin, lost sectors, line slips), x = field along the tape. With matplotlib
(the ``plot`` extra) the strips get axes and titles; without it a built-in renderer
draws the same strips as bars (each pixel column = the worst of the fields it covers,
scaled to the strip's maximum) and encodes them with ``observe.png``. Either way the
image is exactly ``width`` x ``height`` pixels.
"""

from __future__ import annotations

import io

import numpy as np

from backerd.observe.fieldtrace import SERIES, Trace
from backerd.observe.png import encode_png

TITLES = {"corrected": "corrected symbols per field", "margin": "key-match margin",
          "lost": "lost sectors", "slips": "line slips"}
COLOURS = {"corrected": (31, 119, 180), "margin": (44, 160, 44), "lost": (214, 39, 40),
           "slips": (148, 103, 189)}
PLOT_EXTRA = "backerd[plot]"


def column_max(values: list[int], width: int) -> np.ndarray:
    """Worst value of the fields under each of ``width`` columns (0 for no fields)."""
    out = np.zeros(width, np.int64)
    if not values:
        return out
    v = np.asarray(values, np.int64)
    cols = (np.arange(len(v)) * width) // len(v)
    np.maximum.at(out, cols, v)
    if len(v) < width:  # stretch: every column shows the field it falls in
        out = v[(np.arange(width) * len(v)) // width]
    return out


def render_builtin(trace: Trace, width: int, height: int) -> np.ndarray:
    image = np.full((height, width, 3), 255, np.uint8)
    bands = np.linspace(0, height, len(SERIES) + 1).astype(int)
    for (top, bottom), name in zip(zip(bands, bands[1:], strict=False), SERIES, strict=True):
        inner_top, inner_bottom = top + 2, bottom - 2
        image[bottom - 1 : bottom, :] = 160  # strip separator
        values = column_max(trace.series(name), width)
        peak = int(values.max()) if len(values) else 0
        floor = min(0, int(values.min()) if len(values) else 0)
        span = max(peak - floor, 1)
        usable = max(inner_bottom - inner_top, 1)
        heights = ((values - floor) * usable) // span
        rows = np.arange(height)[:, None]
        mask = (rows >= inner_bottom - heights[None, :]) & (rows < inner_bottom)
        image[mask] = COLOURS[name]
    return image


def render_matplotlib(trace: Trace, width: int, height: int) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    axes = fig.subplots(len(SERIES), 1, sharex=True)
    x = np.arange(trace.start, trace.start + len(trace))
    for ax, name in zip(axes, SERIES, strict=True):
        ax.plot(x, trace.series(name), color=np.array(COLOURS[name]) / 255, linewidth=0.6)
        ax.set_ylabel(TITLES[name], fontsize=7)
    axes[-1].set_xlabel("field from BOT")
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100)
    return out.getvalue()


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_png(trace: Trace, width: int = 1200, height: int = 800, *,
             builtin: bool = False) -> bytes:
    if not builtin and have_matplotlib():
        return render_matplotlib(trace, width, height)
    return encode_png(render_builtin(trace, width, height))
