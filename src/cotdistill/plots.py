"""The report's pictures, drawn with matplotlib so that they show offline, in the report and in
``dvc plots show``: every test accuracy with its n, Wilson interval and chance level, trained
students apart from untrained prompting; and every training run's loss and validation curves
in one figure. Their data are also written as long-format CSVs for DVC's own interactive plots.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cotdistill.atomic import atomic_file
from cotdistill.intervals import wilson_interval

TRAINED_COLOUR, PROMPTED_COLOUR = "#4C72B0", "#DD8452"


@dataclass(frozen=True)
class Bar:
    """One student x method's test accuracy, as the plot draws it."""

    label: str
    accuracy: float
    n: int
    chance: float  # what answering at random scores on the same questions
    trained: bool  # False: the untrained student, prompted


def bars(results: Mapping[tuple[str, str], dict], chance: Mapping[str, float],
         prompted: set[str]) -> list[Bar]:
    """A bar per evaluated pair; its chance level is the n-weighted chance of its datasets."""
    out = []
    for (student, method), metrics in results.items():
        per = metrics.get("datasets", {})
        level = (sum(chance.get(d, 0.0) * v["n"] for d, v in per.items()) / metrics["n"]
                 if metrics["n"] else 0.0)
        out.append(Bar(f"{student}\n{method}", metrics["accuracy"], metrics["n"], level,
                       method not in prompted))
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> None:
    with atomic_file(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)


def accuracy_plot(path: Path, drawn: list[Bar]) -> None:
    """Bars of test accuracy with 95% Wilson intervals and n, the chance level dashed."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(max(5, 1.7 * len(drawn)), 4))
    for x, bar in enumerate(drawn):
        low, high = wilson_interval(round(bar.accuracy * bar.n), bar.n)
        axes.bar(x, 100 * bar.accuracy, color=TRAINED_COLOUR if bar.trained else PROMPTED_COLOUR)
        below, above = max(0.0, bar.accuracy - low), max(0.0, high - bar.accuracy)  # 1e-17s
        axes.errorbar(x, 100 * bar.accuracy, yerr=[[100 * below], [100 * above]],
                      color="black", capsize=4, linewidth=1)
        axes.text(x, 100 * high + 1.5, f"{100 * bar.accuracy:.1f}\nn={bar.n}", ha="center",
                  va="bottom", fontsize=8,
                  bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        if bar.chance > 0:
            axes.hlines(100 * bar.chance, x - 0.45, x + 0.45, colors="grey", linestyles="--")
    axes.set_xticks(range(len(drawn)), [bar.label for bar in drawn], fontsize=8)
    axes.set_ylabel("test accuracy (%)")
    axes.set_ylim(0, 115)
    axes.set_title("Test accuracy, 95% Wilson intervals")
    handles = [plt.Rectangle((0, 0), 1, 1, color=TRAINED_COLOUR),
               plt.Rectangle((0, 0), 1, 1, color=PROMPTED_COLOUR),
               plt.Line2D([0], [0], color="grey", linestyle="--")]
    axes.legend(handles, ["trained student", "untrained, prompted", "chance"], fontsize=8,
                loc="upper right", ncols=3)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)


def read_curve(path: Path, column: str) -> list[tuple[int, float]]:
    """(step, value) rows of a training run's ``loss.csv`` or ``val.csv``; none if the file or
    the column is absent (``transfer_accuracy`` is there only with a probe)."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if column not in (reader.fieldnames or []):
            return []
        return [(int(row["step"]), float(row[column])) for row in reader]


def write_long_csv(path: Path, curves: Mapping[str, list[tuple[int, float]]],
                   column: str) -> None:
    """``run,step,<column>`` rows: every run's curve in one file, for one DVC plot."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["run", "step", column])
        for run, points in curves.items():
            writer.writerows([run, step, f"{value:.6f}"] for step, value in points)


def curves_plot(path: Path, losses: Mapping[str, list[tuple[int, float]]],
                validation: Mapping[str, list[tuple[int, float]]],
                transfer: Mapping[str, list[tuple[int, float]]] | None = None,
                transfer_task: str = "held-out task") -> None:
    """Training loss and validation accuracy of every run, side by side, one colour a run;
    ``transfer`` (a held-out task's accuracy at the same steps) dashed beside its run's
    validation curve: the cost of specialising as it is paid."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    colours = {run: f"C{index % 10}" for index, run in enumerate(
        dict.fromkeys([*losses, *validation]))}
    for run, points in losses.items():
        if points:
            left.plot(*zip(*points), label=run, color=colours[run], linewidth=1)
    for run, points in validation.items():
        if points:
            right.plot(*zip(*points), label=run, color=colours[run], marker="o", markersize=3)
    for run, points in (transfer or {}).items():
        if points:
            right.plot(*zip(*points), label=f"{run}: {transfer_task}", linestyle="--",
                       color=colours.get(run, "grey"), marker="x", markersize=3)
    left.set(title="Training loss", xlabel="step", ylabel="loss")
    left.set_yscale("log")
    right.set(title="Validation accuracy (checkpoint selection)", xlabel="step",
              ylabel="accuracy", ylim=(-0.02, 1.05))
    for axes in (left, right):
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7)
        else:
            axes.text(0.5, 0.5, "no runs", ha="center", va="center", transform=axes.transAxes)
    figure.tight_layout()
    _save(figure, path)
    plt.close(figure)
