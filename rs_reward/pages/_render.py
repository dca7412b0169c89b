"""What every page shares: the Jinja2 environment, thumbnails, bounded samples and plot geometry."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np

from ..data.images import open_image
from ..data.io import RowError
from ..report import write_atomic


THUMBNAIL_SIDE = 128  # pixels of the longer side of a thumbnail
PLOT = {"width": 520, "height": 150, "pad": 28}  # SVG plot size in CSS pixels, padding for the axes


def environment():
    """Jinja2 environment of the package templates, autoescaping every `{{ }}`."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("rs_reward.pages", "templates"),
        autoescape=select_autoescape(["jinja", "html"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = lambda value, digits=3: "-" if value is None or value != value else f"{value:.{digits}f}"
    return env


def render(template: str, path: str | Path, thumbs: Thumbnails | None = None, **context) -> Path:
    """Render `template` with `context` to `path` (written atomically), then drop `thumbs` the page no longer shows."""
    context.setdefault("plot", PLOT)
    page = write_atomic(path, environment().get_template(template).render(**context))
    if thumbs is not None:
        thumbs.prune()
    return page


class Thumbnails:
    """Small JPEG copies of the images a page shows, written once each into `folder` (named by a digest of the
    source, so a rerun rewrites nothing). `add` returns `{"src": relative path}` or `{"error": reason}`."""

    def __init__(self, folder: str | Path, side: int = THUMBNAIL_SIDE):
        self.folder = Path(folder)
        self.side = side
        self.used: set[str] = set()

    def add(self, source, root: str | os.PathLike | None = None) -> dict:
        if source is None:
            return {"error": "no image"}
        if isinstance(source, dict):
            source = source.get("bytes") or source.get("path")
        if isinstance(source, (bytes, bytearray)):
            key = hashlib.blake2b(bytes(source), digest_size=8).hexdigest()
        elif isinstance(source, (str, os.PathLike)):
            key = hashlib.blake2b(f"{root}|{source}".encode(), digest_size=8).hexdigest()
        else:  # a PIL image: digest of its pixels
            key = hashlib.blake2b(source.tobytes(), digest_size=8).hexdigest()
        name = f"{key}.jpg"
        self.used.add(name)
        path = self.folder / name
        if not path.is_file():
            try:
                image = open_image(source, root)
            except RowError as error:
                return {"error": str(error)}
            image = image.copy()
            image.thumbnail((self.side, self.side))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=85)
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(buffer.getvalue())
            tmp.replace(path)
        return {"src": f"{self.folder.name}/{name}"}

    def prune(self) -> int:
        """Delete thumbnails of an earlier page that this one does not show; return how many."""
        stale = [p for p in self.folder.glob("*.jpg") if p.name not in self.used] if self.folder.is_dir() else []
        for path in stale:
            path.unlink()
        return len(stale)


def spread(n: int, k: int) -> np.ndarray:
    """At most `k` indices spread evenly over `range(n)`, first and last included (deterministic)."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


def scale(values, lo: float, hi: float, length: float, offset: float = 0.0, flip: bool = False) -> list[float]:
    """Map `values` from [lo, hi] onto [offset, offset + length] (reversed with `flip`, for SVG's y axis)."""
    values = np.asarray(values, dtype=float)
    span = hi - lo if hi > lo else 1.0
    unit = (values - lo) / span
    unit = 1.0 - unit if flip else unit
    return [round(float(v), 2) for v in offset + unit * length]


def histogram(values, bins: int = 40) -> dict:
    """Bars of a histogram in plot coordinates (see `PLOT`) and the x range, for the template and the slider."""
    values = np.asarray(values, dtype=float)
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    width, height, pad = PLOT["width"], PLOT["height"], PLOT["pad"]
    xs = scale(edges, lo, hi, width - 2 * pad, pad)
    top = max(int(counts.max()), 1) if counts.size else 1
    bars = []
    for i, count in enumerate(counts):
        h = round((height - 2 * pad) * count / top, 2)
        bars.append(
            {"x": xs[i], "w": max(xs[i + 1] - xs[i] - 0.5, 0.5), "y": height - pad - h, "h": h, "n": int(count)}
        )
    return {"bars": bars, "lo": lo, "hi": hi, "x0": pad, "w": width - 2 * pad}


def polyline(xs, ys, x_range, y_range) -> str:
    """SVG `points` of a line in plot coordinates."""
    width, height, pad = PLOT["width"], PLOT["height"], PLOT["pad"]
    px = scale(xs, *x_range, width - 2 * pad, pad)
    py = scale(ys, *y_range, height - 2 * pad, pad, flip=True)
    return " ".join(f"{x},{y}" for x, y in zip(px, py))
