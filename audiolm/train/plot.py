"""Training curves from a run's `log.jsonl`: one panel per metric family, saved as a PNG."""

from __future__ import annotations

import json
from pathlib import Path

from audiolm.formats.atomic import atomic_path


def plot_log(log_path: str | Path, png_path: str | Path, max_panels: int = 6) -> Path:
    """Plot the losses (training) and validation metrics of a run log against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list[int], list[float]]] = {}
    for line in Path(log_path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        for key, value in record.items():
            if key in ("step", "lr") or key.startswith(("time/", "grad_norm/", "valid/vq/")) or not isinstance(value, (int, float)):
                continue
            xs, ys = series.setdefault(key, ([], []))
            xs.append(record["step"])
            ys.append(value)
    keys = sorted(series, key=lambda k: (k.startswith("valid/"), k))[:max_panels]
    fig, axes = plt.subplots(len(keys) or 1, 1, figsize=(8, 2.2 * max(1, len(keys))), squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        xs, ys = series[key]
        ax.plot(xs, ys, lw=1)
        ax.set_ylabel(key, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(png_path)
