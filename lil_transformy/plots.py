"""Plots a person would rather look at than read."""
import matplotlib.pyplot as plt  # headless, matplotlib picks Agg itself; in a notebook, figures show inline

from lil_transformy.train import PROBE_TOKENS


def evolution_figure(report: dict):
    """Left: held-out loss per stage (one dot per seed). Right: the loss curves of seed 0."""
    stages = report["stages"]
    fig, (ladder, curves) = plt.subplots(1, 2, figsize=(13, 4.5))
    labels = [f"{n} {s['title']}" for n, s in stages.items()]
    for i, s in enumerate(stages.values()):
        ladder.scatter([i] * len(s["val_loss"]), s["val_loss"], color="tab:blue", s=18)
    ladder.plot(range(len(stages)), [sum(s["val_loss"]) / len(s["val_loss"]) for s in stages.values()],
                color="tab:blue", alpha=0.5)
    ladder.axhline(report["unigram_loss"], color="gray", linestyle=":", label="unigram baseline")
    ladder.set_xticks(range(len(stages)), labels, fontsize=8, rotation=30, ha="right")
    ladder.set_ylabel("held-out loss (nats / token)")
    ladder.set_title("From amoeba to duck: every stage, the same data and budget")
    ladder.legend()
    for n, s in stages.items():
        curves.plot(s["history"]["step"], s["history"]["probe_loss"], label=f"{n} {s['title']}")
    curves.set_xlabel("training step")
    curves.set_ylabel(f"probe loss (first {PROBE_TOKENS:,} held-out tokens)")
    curves.set_title("Learning curves (seed 0)")
    curves.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def attention_heatmaps(maps: dict[str, object], tokens: list[str] | None = None):
    """One heat map per head, titled by the keys of `maps`, each value a (query, key) matrix of attention weights.

    Row = the position attending (its query), column = the position it looks at (its key); `tokens` label both
    where given. One colour bar serves every map: the weights are all on the same 0-1 scale.
    """
    cols = min(len(maps), 2)
    rows = (len(maps) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 6 * rows), squeeze=False, layout="constrained")
    for ax, (title, weights) in zip(axes.flat, maps.items()):
        image = ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
        if tokens:
            ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
            ax.set_yticks(range(len(tokens)), tokens, fontsize=7)
        ax.set_xlabel("key position: the earlier token looked at")
        ax.set_ylabel("query position: the token attending")
        ax.set_title(title)
    for ax in list(axes.flat)[len(maps):]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, label="attention weight", shrink=0.6)
    return fig
