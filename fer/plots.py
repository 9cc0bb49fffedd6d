"""Training curves and confusion-matrix pictures (matplotlib, no display needed)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_history(path: Path) -> dict[str, list[float]]:
    """history.csv from Keras' CSVLogger; a resumed run may repeat an epoch, the last row wins."""
    rows: dict[int, dict[str, str]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = row
    epochs = sorted(rows)
    keys = [k for k in (rows[epochs[0]] if epochs else {}) if k != "epoch"]
    history = {k: [float(rows[e][k]) for e in epochs] for k in keys}
    history["epoch"] = [e + 1 for e in epochs]
    return history


def plot_curves(history: dict[str, list[float]], out_dir: Path) -> list[Path]:
    plt = _pyplot()
    written = []
    for metric, title in (("accuracy", "Accuracy"), ("loss", "Loss")):
        if metric not in history:
            continue
        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        ax.plot(history["epoch"], history[metric], label="train", marker=".")
        if f"val_{metric}" in history:
            ax.plot(history["epoch"], history[f"val_{metric}"], label="validation", marker=".")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out_dir / f"curve_{metric}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def plot_confusion(matrix: list[list[int]], labels: list[str], path: Path,
                   title: str = "Confusion matrix (rows: true, normalised)") -> Path:
    plt = _pyplot()
    cm = np.asarray(matrix, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=120)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n{int(cm[i, j])}", ha="center", va="center",
                    fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_reliability(panels: list[tuple[str, dict[str, np.ndarray], float]], path: Path) -> Path:
    """Reliability diagrams side by side, one per (title, fer.calibrate.reliability_bins, ECE):
    bars of accuracy per confidence bin against the diagonal a calibrated model follows, with the
    share of faces in each bin below. Saved atomically (temp file, then rename)."""
    import os

    plt = _pyplot()
    fig, axes = plt.subplots(2, len(panels), figsize=(4.6 * len(panels), 5.6), dpi=120,
                             height_ratios=[3, 1], squeeze=False, sharex=True)
    for col, (title, bins, ece) in enumerate(panels):
        edges = bins["edges"]
        width, left = np.diff(edges), edges[:-1]
        filled = bins["count"] > 0
        top, bottom = axes[0, col], axes[1, col]
        top.bar(left[filled], bins["accuracy"][filled], width[filled], align="edge",
                color="#4c72b0", edgecolor="black", linewidth=0.5, label="accuracy")
        top.bar(left[filled], (bins["confidence"] - bins["accuracy"])[filled], width[filled],
                bottom=bins["accuracy"][filled], align="edge", facecolor="none", hatch="///",
                edgecolor="#c44e52", linewidth=0.5, label="gap to mean confidence")
        top.plot([0, 1], [0, 1], "k--", linewidth=1, label="calibrated")
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_ylabel("accuracy")
        top.set_title(f"{title}\nECE {ece:.4f}", fontsize=10)
        top.legend(loc="upper left", fontsize=7)
        top.grid(alpha=0.3)
        bottom.bar(left, bins["count"] / max(bins["count"].sum(), 1), width, align="edge",
                   color="gray", edgecolor="black", linewidth=0.5)
        bottom.set_xlabel("confidence (top-1 probability)")
        bottom.set_ylabel("share of faces")
        bottom.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path
