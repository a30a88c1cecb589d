"""Figures: the confusion matrix, per-article scores and few-shot learning curves as PNG files.

Figures are drawn on :class:`matplotlib.figure.Figure` objects, not through ``pyplot``: nothing
here changes matplotlib's backend or pyplot's list of open figures, so a notebook or program
that imports the library keeps its own settings (``savefig`` renders PNG with Agg by itself).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence


def confusion_png(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Draw a confusion matrix (rows: true, columns: predicted) with counts in the cells."""
    import numpy as np
    from matplotlib.figure import Figure

    data = np.asarray(matrix)
    size = 1.2 + 0.9 * len(labels)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(data, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    limit = data.max() / 2 if data.size else 0
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            ax.text(j, i, str(data[i, j]), ha="center", va="center",
                    color="white" if data[i, j] > limit else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return save_figure(fig, path, dpi=120)


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Lay out ``fig``, write it to ``path`` (creating folders) and close it if pyplot holds it."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    if "matplotlib.pyplot" in sys.modules:  # a figure made with pyplot stays open until closed
        sys.modules["matplotlib.pyplot"].close(fig)
    return path


def article_scores_png(scores, path: str | Path, title: str = "") -> Path:
    """Draw ``scores`` (rows: articles, columns: models) as grouped bars."""
    import numpy as np
    from matplotlib.figure import Figure

    articles, models = list(scores.index), list(scores.columns)
    width = 0.8 / max(len(models), 1)
    fig = Figure(figsize=(min(12.0, max(5.0, 0.6 * len(articles) * max(1, len(models) / 2) + 2)), 3.4))
    ax = fig.subplots()
    x = np.arange(len(articles))
    for i, model in enumerate(models):
        ax.bar(x + (i - (len(models) - 1) / 2) * width, scores[model].to_numpy(dtype=float), width, label=model)
    ax.set_xticks(x, articles, rotation=30 if len(articles) > 6 else 0, ha="right" if len(articles) > 6 else "center")
    ax.set_ylim(0, 1)
    ax.set_ylabel("macro-F1")
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", ncols=min(len(models), 4), loc="upper center", bbox_to_anchor=(0.5, -0.18 if len(articles) > 6 else -0.12),
              frameon=False)
    return save_figure(fig, path, dpi=100)


def learning_curve_png(curves, path: str | Path, *, references=None, title: str = "", ylabel: str = "macro-F1") -> Path:
    """Draw few-shot learning curves: per model the mean score against the number of labelled
    comments, its confidence band shaded, and (``references``: model -> score) a dashed line at a
    reference level such as the ``random``-split score.

    ``curves`` maps a model name to ``(shots, means, lows, highs)``; a band given as ``None``
    values is left out.
    """
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.subplots()
    colors = {}
    for i, (model, (shots, means, lows, highs)) in enumerate(curves.items()):
        color = f"C{i % 10}"
        colors[model] = color
        x = np.asarray(shots, dtype=float)
        ax.plot(x, np.asarray(means, dtype=float), marker="o", color=color, label=model)
        if all(v is not None for v in list(lows) + list(highs)):
            # a score lies in [0, 1]: a t-band over few groups can reach past it, the drawing does not
            ax.fill_between(x, np.clip(np.asarray(lows, dtype=float), 0, 1), np.clip(np.asarray(highs, dtype=float), 0, 1),
                            color=color, alpha=0.18, linewidth=0)
    for model, level in (references or {}).items():
        if level is not None:
            ax.axhline(level, color=colors.get(model, "grey"), linestyle="--", linewidth=1,
                       label=f"{model}: reference level")
    all_shots = sorted({s for shots, *_ in curves.values() for s in shots})
    ax.set_xticks(all_shots)
    ax.set_xlabel("labelled comments of the new pact")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", frameon=False, loc="lower right")
    return save_figure(fig, path, dpi=100)
