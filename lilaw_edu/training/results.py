"""Results of a paired run: the ``results.json`` layout, a side-by-side table and a PNG of curves.

The three files are rendered first and published together
(:func:`lilaw_edu._internal.files.atomic_write_many`), so a reader never sees half a
file and a failure cannot leave a table that disagrees with ``results.json``.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import torch

from lilaw_edu._internal import provenance
from lilaw_edu._internal.files import atomic_write_many

__all__ = ["environment", "pretrained_identity", "build_results", "to_jsonable", "write_results",
           "read_results", "format_table", "plot_curves", "RESULTS_FILE"]

RESULTS_FILE = "results.json"
SCHEMA_VERSION = 1


def environment(device: torch.device) -> dict:
    """Provenance: package version, git commit and dirty flag, SHA-256 of the package source,
    hardware (CPU model, GPU name), torch/CUDA/cuDNN versions, device, threads, UTC date."""
    from lilaw_edu import __version__
    hw = provenance.hardware(device)
    name = hw["gpu_name"] if device.type == "cuda" else hw["cpu_model"]
    return {"lilaw_edu": __version__, **hw, "device": str(device), "device_name": name,
            "torch_threads": torch.get_num_threads(), **provenance.git_state(),
            "source_sha256": provenance.source_sha256(), "date": provenance.utc_now()}


def pretrained_identity(config, model) -> str | None:
    """Which pretrained weights ``model`` started from (None when ``config.pretrained`` is False).

    timm models say so themselves (``pretrained_cfg``: e.g. ``vit_base_patch16_224.augreg_in21k``,
    ImageNet-21K); the torchvision ones are built from ``IMAGENET1K_V1`` (ImageNet-1K) in
    :mod:`lilaw_edu.models`.
    """
    if not config.pretrained:
        return None
    cfg = getattr(model, "pretrained_cfg", None)
    if isinstance(cfg, dict) and cfg.get("architecture"):
        tag = f".{cfg['tag']}" if cfg.get("tag") else ""
        return f"timm {cfg['architecture']}{tag}"
    name = config.model if config.model != "auto" else type(model).__name__
    return f"torchvision {name} IMAGENET1K_V1"


def to_jsonable(value):
    """Tensors -> lists, tuples -> lists, NaN/inf -> None (strict JSON), recursively."""
    if isinstance(value, torch.Tensor):
        return to_jsonable(value.detach().cpu().tolist())
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return to_jsonable(value.item())
    return value


def build_results(config, runs: dict, splits, noise_info: dict, init_hash: str, device) -> dict:
    """Assemble the ``results.json`` dict (see :func:`lilaw_edu.training.fit.fit`)."""
    m_tr, m_va = noise_info["train_corrupted"], noise_info["val_corrupted"]
    changed = splits.y_train.cpu() != noise_info["y_train_clean"].cpu()
    keep_masks = bool(config.record_weights_epochs) or config.record_scores
    noise = {"kind": noise_info["kind"], "rate": noise_info["rate"], "clean_val": noise_info["clean_val"],
             "n_train_corrupted": int(m_tr.sum()), "n_train_label_changed": int(changed.sum()),
             "n_val_corrupted": int(m_va.sum())}
    if keep_masks:
        noise["train_corrupted"] = m_tr.int().tolist()
        noise["train_label_changed"] = changed.int().tolist()
    data = {"name": splits.name, "kind": splits.kind, "num_classes": splits.num_classes,
            "class_names": list(splits.class_names), "sizes": splits.sizes(),
            "input_shape": list(splits.input_shape), "notes": splits.notes}
    env = environment(device)
    if config.num_threads is not None and device.type == "cpu":
        env["torch_threads"] = config.num_threads  # what fit used (it restores the caller's setting)
    return to_jsonable({"schema": SCHEMA_VERSION, "config": config.to_dict(), "methods": runs, "data": data,
                        "noise": noise, "init_state_sha256": init_hash, "environment": env})


def write_results(out_dir, results: dict) -> dict:
    """Write ``results.json``, ``table.txt`` and ``curves.png`` to ``out_dir``, together.

    All three are rendered and written to temporary files before any of them replaces an
    existing file, so an error (a plotting failure, a full disk) leaves the previous three.

    Returns
    -------
    dict
        Paths written, ``{"results": Path, "table": Path, "curves": Path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_jsonable(results), indent=1, allow_nan=False)
    files = {out / "table.txt": (format_table(results) + "\n").encode(), out / "curves.png": plot_curves(results),
             out / RESULTS_FILE: text.encode()}
    atomic_write_many(files)
    return {"results": out / RESULTS_FILE, "table": out / "table.txt", "curves": out / "curves.png"}


def read_results(path) -> dict:
    """Load a ``results.json`` (file or folder); ``ValueError`` if missing, truncated or corrupted."""
    path = Path(path)
    path = path / RESULTS_FILE if path.is_dir() else path
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"results file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"results file {path} is truncated or corrupted ({exc.msg if hasattr(exc, 'msg') else exc})") \
            from None
    if not isinstance(data, dict) or "methods" not in data or data.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"results file {path} does not have the results.json layout (schema {SCHEMA_VERSION})")
    return data


def _fmt(value, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{100 * value:.2f}"
    if kind == "auc":
        return f"{value:.4f}"
    if kind == "s":
        return f"{value:.1f}"
    return str(value)


_ROWS = (("top-1 (%)", ("test", "top1"), "pct"), ("top-5 (%)", ("test", "top5"), "pct"),
         ("AUROC (macro OvR)", ("test", "auroc"), "auc"), ("AUROC (weighted)", ("test", "auroc_weighted"), "auc"),
         ("top-1 + temp. scaling (%)", ("test_calibrated", "top1"), "pct"),
         ("AUROC + temp. scaling", ("test_calibrated", "auroc"), "auc"),
         ("top-1, last epoch (%)", ("test_last_epoch", "top1"), "pct"),
         ("best epoch", ("best_epoch",), "int"), ("epochs run", ("epochs_run",), "int"))


def _get(metrics: dict, keys):
    for k in keys:
        if not isinstance(metrics, dict) or k not in metrics:
            return None
        metrics = metrics[k]
    return metrics


def format_table(results: dict) -> str:
    """Side-by-side text table of test metrics per method, with LiLAW - baseline when both ran."""
    methods = list(results["methods"])
    runs = results["methods"]
    paired = "baseline" in runs and "lilaw" in runs
    header = ["metric"] + methods + (["lilaw - baseline"] if paired else [])
    rows = []
    for label, keys, kind in _ROWS:
        values = [_get(runs[m]["metrics"], keys) for m in methods]
        if all(v is None for v in values):
            continue
        row = [label] + [_fmt(v, kind) for v in values]
        if paired:
            a, b = _get(runs["lilaw"]["metrics"], keys), _get(runs["baseline"]["metrics"], keys)
            row.append("-" if a is None or b is None or kind == "int" else
                       (f"{100 * (a - b):+.2f}" if kind == "pct" else f"{a - b:+.4f}"))
        rows.append(row)
    rows.append(["wall time (s)"] + [_fmt(runs[m].get("wall_time_s"), "s") for m in methods] + ([""] if paired else []))
    final = [runs[m].get("lilaw") for m in methods]
    if any(final):
        rows.append(["final alpha/beta/delta"] + [("-" if f is None else
                                                    f"{f['alpha']:.2f}/{f['beta']:.2f}/{f['delta']:.2f}")
                                                   for f in final] + ([""] if paired else []))
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                               for i, (c, w) in enumerate(zip(r, widths)))
    cfg = results.get("config", {})
    title = (f"{cfg.get('dataset')} | noise {cfg.get('noise')} @ {cfg.get('rate')} | seed {cfg.get('seed')} | "
             f"test n={results.get('data', {}).get('sizes', {}).get('test')} | selected by "
             f"{cfg.get('select_by', 'val_acc')}, patience {cfg.get('patience')}")
    return "\n".join([title, line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def plot_curves(results: dict) -> bytes:
    """PNG bytes: validation/train accuracy per epoch per method, and α, β, δ trajectories."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    fig = Figure(figsize=(11, 4), dpi=100)
    ax_acc, ax_par = fig.subplots(1, 2)
    for i, (name, run) in enumerate(results["methods"].items()):
        hist = run["history"]
        epochs = [h["epoch"] for h in hist]
        color = f"C{i}"
        ax_acc.plot(epochs, [h["val_acc"] for h in hist], color=color, label=f"{name} val")
        ax_acc.plot(epochs, [h["train_acc"] for h in hist], color=color, ls="--", alpha=0.6, label=f"{name} train")
        if hist and hist[0].get("alpha") is not None:
            for key, style in (("alpha", "-"), ("beta", "--"), ("delta", ":")):
                ax_par.plot(epochs, [h[key] for h in hist], color=color, ls=style, label=f"{name} {key}")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (noisy labels)", title="accuracy")
    ax_par.set(xlabel="epoch", ylabel="value", title="LiLAW alpha (-), beta (--), delta (:)")
    for ax in (ax_acc, ax_par):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
