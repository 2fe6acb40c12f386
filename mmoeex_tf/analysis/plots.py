"""PNG figures: heatmaps, learning curves and task similarity.

Figures are drawn on `matplotlib.figure.Figure` objects and saved with the
Agg renderer, so no display and no global pyplot state are involved.
"""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

MAX_CURVE_TASKS = 12
MAX_ANNOTATED_CELLS = 256


def plot_heatmap(matrix, path, title="Expert distances", cmap="viridis"):
    """Saves a matrix as an annotated PNG heatmap.

    Args:
        matrix: A 2-D array, or a `DataFrame` whose index and columns label
            the rows and columns.
        path: The PNG file to write.
        title: Title of the figure.
        cmap: Matplotlib colour map.
    """
    frame = pd.DataFrame(matrix)
    values = frame.to_numpy(dtype=float)
    rows, columns = values.shape
    figure = Figure(figsize=(1.5 + 0.5 * max(columns, 4), 1.0 + 0.5 * max(rows, 4)))
    axes = figure.subplots()
    image = axes.imshow(values, cmap=cmap, aspect="auto")
    figure.colorbar(image, ax=axes)
    axes.set_xticks(range(columns), [str(c) for c in frame.columns], rotation=90)
    axes.set_yticks(range(rows), [str(i) for i in frame.index])
    if values.size <= MAX_ANNOTATED_CELLS:
        middle = np.nanmean(values)
        for (row, column), value in np.ndenumerate(values):
            axes.text(
                column,
                row,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if value > middle else "white",
            )
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)


def plot_learning_curves(history, tasks, path):
    """Saves each task's loss and first metric per epoch, train and val.

    Args:
        history: A `DataFrame` with one row per epoch, an `epoch` column and
            the Keras logs (`<task>_loss`, `val_<task>_auc`, ...).
        tasks: The `Task` specs; the first `MAX_CURVE_TASKS` are drawn.
        path: The PNG file to write.
    """
    shown = list(tasks)[:MAX_CURVE_TASKS]
    figure = Figure(figsize=(3.2 * len(shown), 5.5))
    grid = figure.subplots(2, len(shown), squeeze=False, sharex=True)
    for column, task in enumerate(shown):
        for row, metric in enumerate(("loss", task.metrics[0])):
            axes = grid[row, column]
            key = f"{task.name}_{metric}"
            for prefix, label in (("", "train"), ("val_", "val")):
                if prefix + key in history:
                    axes.plot(history["epoch"], history[prefix + key], label=label)
            axes.set_title(f"{task.name} {metric}", fontsize=9)
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            axes.legend(fontsize=7)
        grid[1, column].set_xlabel("epoch")
    if len(tasks) > len(shown):
        figure.suptitle(f"first {len(shown)} of {len(tasks)} tasks")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)


def plot_task_similarity(grouping, path):
    """Saves a task-similarity matrix, tasks ordered group by group.

    Args:
        grouping: A `mmoeex_tf.analysis.grouping.TaskGrouping`; lines
            separate its groups.
        path: The PNG file to write.
    """
    order = grouping.order()
    matrix = grouping.similarity[np.ix_(order, order)]
    figure = Figure(figsize=(7, 6))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    edges = np.cumsum([len(group) for group in grouping.groups])[:-1] - 0.5
    for edge in edges:
        axes.axhline(edge, color="black", linewidth=0.8)
        axes.axvline(edge, color="black", linewidth=0.8)
    axes.set_title("Task similarity of head weights, ordered by group")
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=120)
