"""Markdown reports with PNG figures: small helpers shared by every stage that reports (they import nothing of
rs_reward): `markdown_table`, `write_atomic`, `image_sheet`, and the figures `line_plot` and `histogram_plot`,
both drawn in one `figure` frame."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def markdown_table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def image_sheet(images: list, path: str | Path, columns: int = 6, scale: int = 2) -> Path:
    """A contact sheet of PIL images (same size), upscaled without smoothing so pixels stay visible."""
    from PIL import Image

    w, h = images[0].size
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (w * columns, h * rows), "white")
    for i, image in enumerate(images):
        sheet.paste(image.convert("RGB"), ((i % columns) * w, (i // columns) * h))
    sheet = sheet.resize((sheet.width * scale, sheet.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def write_atomic(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


@contextmanager
def figure(path: str | Path, *, xlabel: str, ylabel: str, title: str | None = None, legend_size=None) -> Iterator:
    """The axes of one 6 x 3.5 in PNG figure (matplotlib's file-only backend): draw on them inside the block; the
    labels, title and legend are set and the file written when it ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    try:
        yield ax
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.legend(fontsize=legend_size)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def line_plot(
    series: dict[str, tuple[list, list]],
    path: str | Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    logx: bool = False,
    ylim: tuple[float, float] | None = None,
    hline: tuple[float, str] | None = None,
) -> Path:
    """A PNG of one line per series (`label -> (xs, ys)`), markers on the points."""
    with figure(path, xlabel=xlabel, ylabel=ylabel, title=title, legend_size=8) as ax:
        for label, (xs, ys) in series.items():
            ax.plot(xs, ys, marker="o", label=label)
        if hline is not None:
            ax.axhline(hline[0], color="gray", linestyle=":", label=hline[1])
        if logx:
            ax.set_xscale("log", base=2)
            xs = sorted({x for xs, _ in series.values() for x in xs})
            ax.set_xticks(xs, [str(x) for x in xs])
        if ylim is not None:
            ax.set_ylim(*ylim)
    return Path(path)


def histogram_plot(
    series: dict[str, tuple],
    path: str | Path,
    *,
    bins=40,
    xlabel: str = "score",
    ylabel: str = "count",
    title: str | None = None,
    vline: tuple[float, str] | None = None,
) -> Path:
    """A PNG of overlaid histograms, `label -> (values, colour, alpha)`; `vline` marks a value (a cut)."""
    with figure(path, xlabel=xlabel, ylabel=ylabel, title=title) as ax:
        for label, (values, colour, alpha) in series.items():
            ax.hist(values, bins=bins, color=colour, alpha=alpha, label=label)
        if vline is not None:
            ax.axvline(vline[0], color="tab:red", linestyle="--", label=vline[1])
    return Path(path)
