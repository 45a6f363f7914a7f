"""The paper's printed numbers (Tables 1-3, 6-16), for side-by-side comparison.

Each table is kept as the paper prints it (tab-separated cells such as
``58.03 ↑ 18.53``: the baseline, i.e. training *without* LiLAW, then the change
with LiLAW) and parsed on import, so the transcription can be checked line by
line against the paper text (``tests/test_sweep.py`` does that when the paper is
available). Nothing here is computed or rounded.

Units as printed: accuracies in percent, AUROC/AUPRC in [0, 1].

>>> from lilaw_edu.core.paper import paper_rows
>>> row = paper_rows("3")[0]
>>> row["metric"], row["baseline"], row["delta"]
('top1', 93.6, 3.2)
"""
from __future__ import annotations

import re

__all__ = ["RAW_TABLES", "CAPTIONS", "paper_rows", "paper_lookup", "TABLE10", "TABLE16"]

CAPTIONS = {
    "1": "Noise types at 50 % noise, CIFAR-100-M (ViT-B/16; LiLAW last two layers, baseline full network)",
    "2": "MedMNISTv2 accuracy (%) with uniform noise (ResNet-18, full fine-tuning for both)",
    "3": "ECG5000 (stacked LSTM)",
    "6": "Ablation of alpha, beta, delta, uniform noise, CIFAR-100-M",
    "7": "Uniform noise 0-90 %, CIFAR-100-M",
    "8": "With and without temperature scaling, CIFAR-100-M",
    "9": "With and without a clean validation set, CIFAR-100-M",
    "10": "Mean +- std over 5 seeds, CIFAR-100-M",
    "11": "Cross-entropy and focal loss, CIFAR-100-M",
    "12": "Validation set size (% of the training set), CIFAR-100-M, 50 % uniform noise",
    "13": "Validation set from a shifted distribution, CIFAR-100-M, 50 % uniform noise",
    "14": "MNIST-M, FashionMNIST-M, CIFAR-10-M, CIFAR-100-M with uniform noise",
    "15": "MedMNISTv2 AUROC with uniform noise",
    "16": "Mislabel detection on CIFAR-100, 50 % uniform noise (epoch 3 and epoch 10)",
}

_M3 = "Top-1 Acc. (%)\tTop-5 Acc. (%)\tAUROC"

# Verbatim table bodies (the paper's \uparrow / \downarrow written as ↑ / ↓).
RAW_TABLES = {
    "1": f"""Noise Type\t{_M3}
Uniform\t58.03 ↑ 18.53\t85.42 ↑ 7.86\t0.9706 ↑ 0.0118
Asymmetric\t34.37 ↑ 41.43\t65.75 ↑ 26.97\t0.9255 ↑ 0.0544
Instance\t60.46 ↑ 6.36\t88.14 ↑ 1.98\t0.9787 ↓ 0.0052
Adjacent\t51.80 ↑ 5.60\t87.74 ↓ 1.51\t0.9766 ↓ 0.0100
Far OOD\t34.17 ↑ 5.17\t48.43 ↑ 1.63\t0.7739 ↑ 0.0011
Domain Shift\t58.23 ↑ 5.08\t84.70 ↑ 1.72\t0.9711 ↑ 0.0097
OOD Covariate\t60.77 ↑ 7.36\t86.44 ↑ 3.26\t0.9745 ↓ 0.0014
Zoom Shift\t69.54 ↑ 4.67\t91.57 ↑ 1.06\t0.9864 ↑ 0.0091
Crop Shift\t76.35 ↑ 4.67\t94.82 ↑ 1.07\t0.9929 ↓ 0.0048""",
    "2": """PathMNIST\t95.49 ↑ 0.08\t95.38 ↓ 0.08\t94.70 ↑ 0.20\t94.19 ↓ 0.59\t94.01 ↑ 0.18\t92.87 ↑ 0.69
DermaMNIST\t79.88 ↑ 0.88\t76.12 ↑ 1.80\t74.38 ↑ 2.13\t73.92 ↑ 0.27\t71.89 ↑ 1.46\t68.03 ↑ 4.52
OCTMNIST\t75.73 ↑ 0.65\t72.84 ↑ 4.74\t71.42 ↑ 1.97\t67.11 ↑ 3.44\t68.19 ↑ 4.94\t60.79 ↑ 7.07
PneumoniaMNIST\t89.04 ↑ 2.61\t85.40 ↑ 1.10\t86.65 ↓ 0.41\t85.40 ↑ 4.18\t81.50 ↑ 2.90\t84.24 ↑ 2.14
BreastMNIST\t85.83 ↑ 1.39\t83.87 ↓ 1.17\t79.13 ↑ 2.96\t78.74 ↑ 0.39\t74.78 ↑ 6.75\t70.10 ↑ 4.34
BloodMNIST\t98.50 ↑ 0.16\t97.24 ↑ 0.18\t97.36 ↑ 0.21\t96.93 ↓ 0.28\t95.72 ↑ 0.71\t94.72 ↑ 0.42
TissueMNIST\t68.74 ↓ 1.33\t65.02 ↑ 0.85\t61.33 ↑ 1.17\t45.08 ↑ 19.16\t38.50 ↑ 13.22\t31.82 ↑ 20.41
OrganAMNIST\t94.87 ↑ 0.18\t94.19 ↑ 0.22\t94.02 ↑ 0.18\t90.76 ↑ 2.73\t92.50 ↑ 0.52\t89.45 ↑ 1.63
OrganCMNIST\t90.66 ↑ 0.93\t88.85 ↑ 1.01\t85.37 ↑ 0.30\t84.45 ↑ 2.73\t84.19 ↑ 0.87\t82.95 ↑ 1.24
OrganSMNIST\t80.54 ↑ 0.49\t78.28 ↑ 0.66\t75.34 ↑ 2.16\t72.54 ↑ 3.35\t72.95 ↑ 1.42\t70.82 ↑ 2.65""",
    "3": """ECG5000\t93.60 ↑ 3.20\t0.9982 ↑ 0.0005""",
    "6": """α, β, δ\t0\t76.41 ↑ 4.34\t95.39 ↑ 0.68\t0.9926 ↓ 0.0049
\t50\t58.03 ↑ 18.53\t85.42 ↑ 7.86\t0.9706 ↑ 0.0118
α, β\t0\t76.41 ↑ 4.37\t95.39 ↑ 0.74\t0.9926 ↓ 0.0040
\t50\t58.03 ↑ 17.52\t85.42 ↑ 7.26\t0.9706 ↑ 0.0106
α, δ\t0\t76.41 ↑ 4.45\t95.39 ↑ 0.67\t0.9926 ↓ 0.0046
\t50\t58.03 ↑ 16.48\t85.42 ↑ 6.88\t0.9706 ↑ 0.0093
β, δ\t0\t76.41 ↑ 2.85\t95.39 ↑ 0.39\t0.9926 ↓ 0.0061
\t50\t58.03 ↑ 17.03\t85.42 ↑ 7.54\t0.9706 ↑ 0.0110
α\t0\t76.41 ↑ 3.34\t95.39 ↑ 0.05\t0.9926 ↓ 0.0039
\t50\t58.03 ↑ 16.49\t85.42 ↑ 6.89\t0.9706 ↑ 0.0098
β\t0\t76.41 ↑ 3.21\t95.39 ↑ 0.47\t0.9926 ↓ 0.0049
\t50\t58.03 ↑ 16.48\t85.42 ↑ 6.88\t0.9706 ↑ 0.0098
δ\t0\t76.41 ↑ 2.54\t95.39 ↑ 0.42\t0.9926 ↓ 0.0064
\t50\t58.03 ↑ 16.49\t85.42 ↑ 6.89\t0.9706 ↑ 0.0098""",
    "7": """0\t76.41 ↑ 4.34\t95.39 ↑ 0.68\t0.9926 ↓ 0.0049
10\t75.45 ↑ 4.35\t94.62 ↑ 0.85\t0.9910 ↓ 0.0032
20\t74.54 ↑ 4.83\t93.48 ↑ 1.55\t0.9867 ↑ 0.0004
30\t68.97 ↑ 9.94\t91.11 ↑ 3.24\t0.9821 ↑ 0.0032
40\t64.25 ↑ 13.55\t88.15 ↑ 5.83\t0.9748 ↑ 0.0094
50\t58.03 ↑ 18.53\t85.42 ↑ 7.86\t0.9706 ↑ 0.0118
60\t52.32 ↑ 20.24\t80.38 ↑ 10.54\t0.9588 ↑ 0.0179
70\t13.87 ↑ 55.82\t37.87 ↑ 50.92\t0.8335 ↑ 0.1376
80\t7.78 ↑ 57.07\t25.45 ↑ 59.27\t0.7509 ↑ 0.2080
90\t1.48 ↑ 54.22\t6.96 ↑ 68.37\t0.5952 ↑ 0.3307""",
    "8": """Without calibration\t0\t76.41 ↑ 4.34\t95.39 ↑ 0.68\t0.9926 ↓ 0.0049
\t50\t58.03 ↑ 18.53\t85.42 ↑ 7.86\t0.9706 ↑ 0.0118
With calibration\t0\t76.24 ↑ 4.49\t95.34 ↑ 0.71\t0.9923 ↓ 0.0046
\t50\t58.43 ↑ 18.09\t84.32 ↑ 8.96\t0.9715 ↑ 0.0109""",
    "9": """Without a clean validation set\t0\t76.41 ↑ 4.34\t95.39 ↑ 0.68\t0.9926 ↓ 0.0049
\t50\t58.03 ↑ 18.53\t85.42 ↑ 7.86\t0.9706 ↑ 0.0118
With a clean validation set\t0\t77.40 ↑ 3.33\t95.56 ↑ 0.48\t0.9934 ↓ 0.0057
\t50\t55.42 ↑ 21.07\t84.72 ↑ 8.59\t0.9734 ↑ 0.0090""",
    "11": """Cross-Entropy\t0\t76.41 ↑ 4.34\t95.39 ↑ 0.68\t0.9926 ↓ 0.0049
\t50\t58.03 ↑ 18.53\t85.42 ↑ 7.86\t0.9706 ↑ 0.0118
Focal Loss (Lin et al., 2017)\t0\t78.51 ↑ 1.46\t96.70 ↓ 0.97\t0.9940 ↓ 0.0063
\t50\t56.66 ↑ 19.76\t85.36 ↑ 7.96\t0.9746 ↑ 0.0079""",
    "12": """5\t47.43 ↑ 27.61\t76.95 ↑ 15.63\t0.9513 ↑ 0.0288
10\t42.58 ↑ 31.87\t72.63 ↑ 19.76\t0.9445 ↑ 0.0361
15\t58.03 ↑ 18.53\t85.42 ↑ 7.86\t0.9706 ↑ 0.0118
20\t38.21 ↑ 37.45\t70.51 ↑ 22.77\t0.9417 ↑ 0.0407
25\t59.32 ↑ 17.38\t85.20 ↑ 7.49\t0.9679 ↑ 0.0125
30\t61.66 ↑ 14.65\t85.75 ↑ 7.07\t0.9717 ↑ 0.0091""",
    "13": """Same distribution\t0\t76.41 ↑ 4.34\t95.39 ↑ 0.68\t0.9926 ↓ 0.0049
\t50\t58.03 ↑ 18.53\t85.42 ↑ 7.86\t0.9706 ↑ 0.0118
Different distribution\t0\t76.41 ↑ 3.64\t95.39 ↑ 0.12\t0.9926 ↓ 0.0045
\t50\t58.03 ↑ 18.50\t85.42 ↑ 7.87\t0.9706 ↑ 0.0118""",
    "14": """MNIST-M\t0\t97.16 ↑ 0.78\t99.97 ↑ 0.01\t0.9984 ↓ 0.0038
\t50\t77.52 ↑ 18.37\t98.32 ↑ 1.57\t0.9822 ↑ 0.0139
FashionMNIST-M\t0\t89.67 ↑ 1.11\t99.85 ↑ 0.11\t0.9855 ↑ 0.0030
\t50\t79.41 ↑ 8.35\t98.29 ↑ 1.28\t0.9751 ↑ 0.0105
CIFAR-10-M\t0\t92.15 ↑ 2.51\t99.80 ↓ 0.02\t0.9942 ↓ 0.0004
\t50\t85.65 ↑ 7.05\t98.15 ↑ 1.16\t0.9787 ↑ 0.0118
CIFAR-100-M\t0\t76.41 ↑ 4.34\t95.39 ↑ 0.68\t0.9926 ↓ 0.0049
\t50\t58.03 ↑ 18.53\t85.42 ↑ 7.86\t0.9706 ↑ 0.0118""",
    "15": """PathMNIST\t0.9968 ↑ 0.0001\t0.9952 ↑ 0.0009\t0.9920 ↑ 0.0011\t0.9811 ↑ 0.0014\t0.9873 ↓ 0.0012\t0.9887 ↑ 0.0015
DermaMNIST\t0.9206 ↑ 0.0095\t0.8647 ↑ 0.0026\t0.8606 ↓ 0.0179\t0.8322 ↑ 0.0070\t0.7930 ↓ 0.0153\t0.7712 ↑ 0.0039
OCTMNIST\t0.9925 ↑ 0.0004\t0.9757 ↑ 0.0082\t0.9840 ↓ 0.0013\t0.9727 ↑ 0.0097\t0.9649 ↑ 0.0128\t0.9289 ↑ 0.0451
PneumoniaMNIST\t0.9803 ↑ 0.0049\t0.9700 ↓ 0.0064\t0.9536 ↑ 0.0209\t0.9123 ↑ 0.0237\t0.8758 ↑ 0.0238\t0.9424 ↑ 0.0058
BreastMNIST\t0.8638 ↑ 0.0089\t0.8620 ↑ 0.0043\t0.8549 ↓ 0.0074\t0.8065 ↑ 0.0099\t0.7424 ↑ 0.0150\t0.7562 ↓ 0.0010
BloodMNIST\t0.9990 ↑ 0.0001\t0.9980 ↑ 0.0002\t0.9981 ↑ 0.0003\t0.9974 ↓ 0.0002\t0.9953 ↑ 0.0010\t0.9935 ↑ 0.0001
TissueMNIST\t0.9159 ↓ 0.0046\t0.9058 ↑ 0.0009\t0.8853 ↑ 0.0074\t0.8495 ↑ 0.0472\t0.8245 ↑ 0.0463\t0.8135 ↑ 0.0432
OrganAMNIST\t0.9968 ↑ 0.0003\t0.9955 ↑ 0.0001\t0.9952 ↑ 0.0007\t0.9897 ↑ 0.0039\t0.9925 ↑ 0.0007\t0.9897 ↑ 0.0026
OrganCMNIST\t0.9928 ↑ 0.0004\t0.9865 ↑ 0.0025\t0.9858 ↓ 0.0013\t0.9829 ↑ 0.0032\t0.9806 ↑ 0.0010\t0.9805 ↑ 0.0010
OrganSMNIST\t0.9770 ↑ 0.0004\t0.9732 ↓ 0.0002\t0.9664 ↑ 0.0038\t0.9583 ↑ 0.0097\t0.9595 ↑ 0.0026\t0.9536 ↑ 0.0083""",
}

# Table 10: mean, std over 5 seeds: {noise %: {"baseline"|"lilaw": {metric: (mean, std)}}}.
TABLE10 = {
    0: {"baseline": {"top1": (74.93, 1.07), "top5": (94.56, 0.51), "auroc": (0.9918, 0.0009)},
        "lilaw": {"top1": (80.87, 0.27), "top5": (95.91, 0.08), "auroc": (0.9881, 0.0003)}},
    50: {"baseline": {"top1": (46.32, 7.82), "top5": (76.12, 5.98), "auroc": (0.9537, 0.0142)},
         "lilaw": {"top1": (75.68, 1.03), "top5": (92.91, 0.53), "auroc": (0.9820, 0.0012)}},
}

# Table 16: score -> (AUROC epoch 3, AUROC epoch 10, AUPRC epoch 3, AUPRC epoch 10).
TABLE16 = {
    "data_iq": (0.9363, 0.8348, 0.9290, 0.9746), "datamaps": (0.5000, 0.6989, 0.5000, 0.8320),
    "cnlcu_s": (0.9438, 0.9026, 0.3119, 0.3181), "aum": (0.9680, 0.9635, 0.9649, 0.9610),
    "el2n": (0.9180, 0.7567, 0.3161, 0.3604), "grand": (0.6402, 0.7034, 0.4820, 0.4054),
    "forgetting": (0.5000, 0.5782, 0.5000, 0.5740), "w_alpha": (0.9838, 0.9782, 0.9810, 0.9755),
    "w_beta": (0.9719, 0.9768, 0.3086, 0.3085), "w_delta": (0.8434, 0.9258, 0.3454, 0.3164),
    "w": (0.7103, 0.9069, 0.4985, 0.3268),
}

_NOISE_NAMES = {"Uniform": "uniform", "Asymmetric": "asymmetric", "Instance": "instance", "Adjacent": "adjacent",
                "Far OOD": "far_ood", "Domain Shift": "domain_shift", "OOD Covariate": "ood_covariate",
                "Zoom Shift": "zoom_shift", "Crop Shift": "crop_shift"}
_ABLATION = {"α, β, δ": "abd", "α, β": "ab", "α, δ": "ad", "β, δ": "bd", "α": "a", "β": "b", "δ": "d"}
_T14_DATA = {"MNIST-M": "mnist", "FashionMNIST-M": "fashionmnist", "CIFAR-10-M": "cifar10",
             "CIFAR-100-M": "cifar100"}
_SETTINGS = {  # first-column labels of Tables 8, 9, 11, 13 -> setting name
    "Without calibration": "uncalibrated", "With calibration": "calibrated",
    "Without a clean validation set": "noisy_val", "With a clean validation set": "clean_val",
    "Cross-Entropy": "ce", "Focal Loss (Lin et al., 2017)": "focal",
    "Same distribution": "same_dist", "Different distribution": "shifted_val",
}
_METRICS3 = ("top1", "top5", "auroc")
_CELL = re.compile(r"^(-?[\d.]+) ([↑↓]) ([\d.]+)$")


def _cell(text: str) -> tuple:
    match = _CELL.match(text.strip())
    if not match:
        raise ValueError(f"cannot parse table cell {text!r}")
    sign = 1.0 if match.group(2) == "↑" else -1.0
    return float(match.group(1)), sign * float(match.group(3))


def _row(table, metric, baseline_delta, **key) -> dict:
    baseline, delta = baseline_delta
    return dict(table=table, metric=metric, baseline=baseline, delta=delta,
                lilaw=round(baseline + delta, 4), **key)


def _parse(table: str) -> list:
    lines = RAW_TABLES[table].split("\n")
    if table == "1":
        lines = lines[1:]
    rows, label = [], None
    for line in lines:
        cells = line.split("\t")
        if table in ("2", "15"):
            metric = "top1" if table == "2" else "auroc"
            for i, cell in enumerate(cells[1:]):
                rows.append(_row(table, metric, _cell(cell), dataset=cells[0].lower(), noise="uniform",
                                 rate=i / 10, setting="default"))
            continue
        if table == "3":
            rows += [_row("3", m, _cell(c), dataset="ecg5000", noise="none", rate=0.0, setting="default")
                     for m, c in zip(("top1", "auroc"), cells[1:])]
            continue
        if table in ("1", "7", "12"):
            head, values = cells[0], cells[1:]
        else:
            label = cells[0] or label
            head, values = cells[1], cells[2:]
        key = dict(dataset="cifar100", noise="uniform", rate=0.5, setting="default")
        if table == "1":
            key["noise"] = _NOISE_NAMES[head]
        elif table == "12":
            key["setting"] = f"val_fraction={int(head) / 100:g}"
        else:
            key["rate"] = int(head) / 100
        if table == "6":
            key["setting"] = f"active={_ABLATION[label]}"
        elif table == "14":
            key["dataset"] = _T14_DATA[label]
        elif table in ("8", "9", "11", "13"):
            key["setting"] = _SETTINGS[label]
        rows += [_row(table, m, _cell(c), **key) for m, c in zip(_METRICS3, values)]
    return rows


def paper_rows(table: str) -> list:
    """Parsed rows of one printed table.

    Parameters
    ----------
    table : str
        A key of :data:`RAW_TABLES` ("1", "2", "3", "6"-"9", "11"-"15"); Tables 10
        and 16 have other layouts, see :data:`TABLE10` and :data:`TABLE16`.

    Returns
    -------
    list of dict
        One per (row, metric): ``table``, ``dataset``, ``noise``, ``rate`` (fraction),
        ``setting``, ``metric`` ("top1", "top5" or "auroc"), ``baseline`` (without
        LiLAW), ``delta`` (change with LiLAW, signed) and ``lilaw`` (their sum).
        Accuracies in percent, AUROC in [0, 1], as printed.
    """
    if table not in RAW_TABLES:
        raise ValueError(f"table must be one of {sorted(RAW_TABLES, key=int)}, got {table!r}")
    return _parse(table)


def paper_lookup(table: str, metric: str, **key) -> dict | None:
    """The one row of ``table`` with ``metric`` matching ``key`` (e.g. ``dataset="breastmnist", rate=0.3``).

    Returns ``None`` when the paper has no such row; raises ``ValueError`` when several match.
    """
    hits = [r for r in paper_rows(table) if r["metric"] == metric and
            all(r.get(k) == v for k, v in key.items())]
    if len(hits) > 1:
        raise ValueError(f"key {key} matches {len(hits)} rows of table {table}; add more fields")
    return hits[0] if hits else None
