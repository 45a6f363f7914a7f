"""Sweep presets: which runs reproduce which paper table, at two scales.

A sweep preset is a list of *rows*; a row is one TrainConfig (a base preset from
:data:`lilaw_edu.training.config.PRESETS` plus overrides) trained with several methods
(paired: same seed -> same split, noise and initial weights) for several seeds.

* ``paper-tableN``: the paper's models, input sizes, epochs and batch sizes
  (``paper-cifar`` / ``paper-medmnist`` / ``paper-ecg5000``), for a GPU. One seed
  per row unless the table itself is about seeds (Table 10) or the row is cheap
  (ECG5000); ``lilaw-edu sweep --seeds 0,1,2`` adds more.
* ``cpu-tableN``: what two CPU cores run on the data in ``shared/data``: full
  ECG5000 with the stacked LSTM, BreastMNIST and PneumoniaMNIST at 28x28
  (PneumoniaMNIST's training set subsampled), scikit-learn digits and the lossy
  CIFAR-10 JPEG subset with the small CNN trained from scratch; five seeds.

Where the paper's CIFAR rows fine-tune only the last two layers for LiLAW but
the whole network for the baseline, the paper presets add ``baseline-frozen``
(the baseline with LiLAW's freeze) so the confound can be separated. At CPU
scale every model is trained from scratch, fully, for every method (freezing a
randomly initialised network makes no sense), so there is no confound there, except in
``cpu-confound`` and ``cpu-meta-lr`` (issue 16, part 5), which pretrain a backbone on one half of
the CIFAR-10 JPEG training split and fine-tune on the other (:mod:`lilaw_edu.training.pretrain`).
"""
from __future__ import annotations

__all__ = ["SWEEP_PRESETS", "CPU_PRIORITY", "row", "grid"]

SEEDS5 = (0, 1, 2, 3, 4)
PAIR = ("baseline", "lilaw")
TRIO = ("baseline", "lilaw", "lilaw-frozen")
BEYOND = ("baseline", "lilaw", "lilaw-frozen", "lilaw-detached", "baseline-cleanstop", "gce", "sce")
BEYOND_ECG = ("baseline", "lilaw-detached", "baseline-cleanstop", "gce", "sce")  # lilaw, lilaw-frozen: cpu-table3
ABLATION = ("baseline", "lilaw", "lilaw-ab", "lilaw-ad", "lilaw-bd", "lilaw-a", "lilaw-b", "lilaw-d")
RELATIVES = ("baseline", "lilaw", "l2rw", "mwnet", "cleanlab")  # issue 11 (lilaw_edu.training.methods)
CHEAP_META = ("lilaw", "lilaw-cheap", "lilaw-k4", "lilaw-k4s", "lilaw-k8s")  # issue 13 (training/meta_schedule.py)
NOISE_T1 = ("uniform", "asymmetric", "instance", "adjacent", "far_ood", "domain_shift", "ood_covariate",
            "zoom_shift", "crop_shift")
RATES_0_50 = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
RATES_0_90 = tuple(i / 10 for i in range(10))
MEDMNIST10 = ("pathmnist", "dermamnist", "octmnist", "pneumoniamnist", "breastmnist", "bloodmnist",
              "tissuemnist", "organamnist", "organcmnist", "organsmnist")

# ---- CPU scale: the run presets of lilaw_edu.training.config.PRESETS plus only what the sweeps change
# (the base preset holds batch size, learning rate, schedule, ...; a value is written in one place).
CPU_DATA = {
    "ecg5000": dict(base="cpu-ecg5000", dataset="ecg5000"),  # 30 epochs: the cpu-ecg5000 run preset
    "digits": dict(base="cpu-digits", dataset="digits", epochs=10),
    "cifar10-jpeg": dict(base="cpu-cifar10", dataset="cifar10-jpeg", max_train=2000, epochs=6),
    "breastmnist": dict(base="cpu-medmnist", dataset="breastmnist", epochs=10, milestones=(5, 8)),
    "pneumoniamnist": dict(base="cpu-medmnist", dataset="pneumoniamnist", max_train=1500),
}
# ---- the confound at CPU scale (issue 16, part 5; training/pretrain.py): the small CNN pretrained on half A of
# the CIFAR-10 JPEG training split (clean labels, 12 epochs, trained once and cached), fine-tuned on 1000 noisy
# samples of half B for 5 epochs. Measured with 1 torch thread on the busy 2-core machine (CPU seconds): one
# epoch of 1000 samples at batch 32 takes 2.0 s (baseline-frozen) to 3.8 s (lilaw-full); the 10 000-image test
# pass 8.7 s at eval batch 256 (13.3 s at 1024), twice per run (selected and last epoch) -> ~33 CPU-s per method
# run: cpu-confound 80 method runs ~44 CPU-min, cpu-meta-lr 10 ~6 CPU-min, the backbone ~3 CPU-min.
PRETRAINED_CIFAR = dict(base="cpu-cifar10", dataset="cifar10-jpeg", pretrain="other_half", pretrain_epochs=12,
                        max_train=1000, epochs=5, batch_size=32, lr=1e-3, freeze="last2", baseline_freeze="none",
                        eval_batch_size=256, num_threads=1)
CONFOUND = ("baseline", "baseline-frozen", "lilaw", "lilaw-full")  # full / last-2 baseline, last-2 / full LiLAW
# meta_lr x100 and x1000 of the paper's 0.005; x1 is cpu-confound's "lilaw" (same config: same split, noise, init)
META_LR = ("lilaw-mlr100", "lilaw-mlr1000")
# ---- paper scale (settings live in lilaw_edu.training.config.PRESETS)
PAPER_DATA = {
    "ecg5000": dict(base="paper-ecg5000", dataset="ecg5000"),
    "cifar100": dict(base="paper-cifar", dataset="cifar100"),
    "cifar10": dict(base="paper-cifar", dataset="cifar10"),
    "mnist": dict(base="paper-cifar", dataset="mnist"),
    "fashionmnist": dict(base="paper-cifar", dataset="fashionmnist"),
    **{name: dict(base="paper-medmnist", dataset=name) for name in MEDMNIST10},
}


def row(name: str, tables, data: dict, methods, seeds, **overrides) -> dict:
    """One sweep row: ``data`` (a CPU_DATA/PAPER_DATA entry) plus ``overrides``, run with ``methods``.

    Parameters
    ----------
    name : str
        Row label, unique within the preset (e.g. ``"breastmnist/uniform-0.3"``).
    tables : tuple of str
        Paper tables the row reproduces (e.g. ``("2", "15")``).
    data : dict
        ``base`` (a TrainConfig preset name) and field overrides for the dataset.
    methods : tuple of str
    seeds : tuple of int
    **overrides
        More TrainConfig fields (noise, rate, clean_val, ...).
    """
    fields = {k: v for k, v in data.items() if k != "base"}
    fields.update(overrides)
    return dict(row=name, tables=tuple(tables), base=data["base"], overrides=fields, methods=tuple(methods),
                seeds=tuple(seeds))


def grid(tables, data_table: dict, datasets, noises, rates, methods, seeds, *, tag: str = "", **overrides) -> list:
    """Rows for every (dataset, noise, rate); rate 0 becomes ``noise="none"`` (one row, not one per kind)."""
    rows, seen = [], set()
    for ds in datasets:
        for noise in noises:
            for rate in rates:
                kind = "none" if rate == 0 else noise
                label = f"{ds}/{kind}-{rate:g}{tag}"
                if label in seen:
                    continue
                seen.add(label)
                rows.append(row(label, tables, data_table[ds], methods, seeds, noise=kind, rate=float(rate),
                                **overrides))
    return rows


# ---- issue 11: LiLAW among its relatives (lilaw_edu.training.methods). Sized from whole runs of each method at
# these settings (1 torch thread, process CPU seconds on the busy 2-core machine, 30-50 % uniform noise; digits:
# mean of two interleaved rounds, BreastMNIST: one round):
#   digits, 500 train x 6 epochs: baseline 2.8, lilaw 3.6, l2rw 11.9, mwnet 11.3, cleanlab 6.2 (5 folds x 3
#   epochs + 6 epochs of retraining) -> 36 CPU-s per seed for the five methods;
#   BreastMNIST, 250 train x 6 epochs: baseline 3.4, lilaw 4.0, l2rw 12.6, mwnet 12.4, cleanlab 6.7 -> 39 CPU-s.
# 7 rows x 5 seeds + the compute-matched rows: ~24 CPU-min in all (budget: ~50, shared with other sweeps).
# Not run (estimated, same machine): the ECG5000 LSTM (an L2RW or MW-Net epoch took 17-18 baseline epochs in
# the two earlier cpu-relatives runs, medians 23-83 s against 1.3-4.6 s, and 26-32 in the quick benchmark: the
# double backward through 140 LSTM steps; one 5-seed row would cost more than this whole preset), and the
# CIFAR-10 JPEG set (its 10 000-image test set is evaluated twice per method, ~26 CPU-s, so ~130 CPU-s per seed
# before any training: ~17 CPU-min a row).
REL_DIGITS = dict(CPU_DATA["digits"], max_train=500, epochs=6)
REL_BREAST = dict(CPU_DATA["breastmnist"], max_train=250, epochs=6, milestones=(3, 5))
# Compute-matched rows (digits 50 %): epochs = round(6 x cost(lilaw) / cost(method)) with the whole-run costs
# above (cleanlab's cross-fitting included): baseline 0.77, l2rw 3.35, mwnet 3.19, cleanlab 1.74 x LiLAW ->
# 8, 2, 2, 3 epochs (cleanlab's folds train ceil(E/2) epochs each, so its 3-epoch run costs ~0.63 of its
# 6-epoch one, ~1.1x LiLAW). LiLAW's own 6-epoch runs are the digits/uniform-0.5 row; the same seed gives the
# same split, noise and initial weights in every row.
BUDGET_COST_RATIOS = {"baseline": 0.77, "l2rw": 3.35, "mwnet": 3.19, "cleanlab": 1.74}  # whole run / LiLAW's
BUDGET_EPOCHS = {m: round(REL_DIGITS["epochs"] / r) for m, r in BUDGET_COST_RATIOS.items()}  # 8, 2, 2, 3


def relatives_rows() -> list:
    """Rows of ``cpu-relatives`` (issue 11), the most informative first: digits 50 %, the compute-matched rows,
    then the rest of the accuracy grid."""
    data = {"digits": REL_DIGITS, "breastmnist": REL_BREAST}
    order = [("digits", "uniform", 0.5)]
    order += [("breastmnist", "uniform", 0.3), ("digits", "uniform", 0.3), ("digits", "asymmetric", 0.3),
              ("digits", "uniform", 0.0), ("breastmnist", "uniform", 0.0), ("breastmnist", "uniform", 0.5)]
    rows = [r for ds, noise, rate in order for r in grid(("relatives",), data, [ds], (noise,), (rate,), RELATIVES,
                                                            SEEDS5)]
    budget = [row(f"digits/uniform-0.5/budget-{m}", ("relatives",), REL_DIGITS, (m,), SEEDS5, noise="uniform",
                  rate=0.5, epochs=e) for m, e in BUDGET_EPOCHS.items()]
    return rows[:1] + budget + rows[1:]


def _preset(description: str, tables, rows: list) -> dict:
    return dict(description=description, tables=tuple(tables), rows=rows)


CPU = CPU_DATA
P = PAPER_DATA
U = ("uniform",)
_T16_REC = dict(record_weights_epochs=(3, 10), record_scores=True)

SWEEP_PRESETS = {
    # ------------------------------------------------------------------ CPU scale
    "cpu-table3": _preset("ECG5000, stacked LSTM, 0 % and 30 % uniform noise (Table 3)", ("3",),
                          grid(("3",), CPU, ["ecg5000"], U, (0.0, 0.3), TRIO, SEEDS5)),
    "cpu-table2": _preset("BreastMNIST and PneumoniaMNIST (1500 train), 0-50 % uniform noise, "
                          "accuracy and AUROC (Tables 2, 15; Figs. 6, 7)", ("2", "15"),
                          grid(("2", "15"), CPU, ["breastmnist"], U, RATES_0_50, PAIR, SEEDS5)
                          + grid(("2", "15"), CPU, ["pneumoniamnist"], U, (0.0, 0.3, 0.5), PAIR, SEEDS5)
                          + grid(("2", "15"), CPU, ["pneumoniamnist"], U, (0.1, 0.2, 0.4), PAIR, SEEDS5)),
    "cpu-table14": _preset("digits and CIFAR-10 JPEG (2000 train), small CNN, 0 % / 50 % uniform (Table 14)",
                           ("14",), grid(("14",), CPU, ["digits"], U, (0.0, 0.5), PAIR, SEEDS5)
                           + grid(("14",), CPU, ["cifar10-jpeg"], U, (0.0, 0.5), PAIR, SEEDS5)),
    "cpu-table1": _preset("digits, every H-CAT noise kind at 50 % (Table 1)", ("1",),
                          grid(("1",), CPU, ["digits"], NOISE_T1, (0.5,), PAIR, SEEDS5)),
    "cpu-table6": _preset("digits, ablation of alpha/beta/delta at 0 % and 50 % uniform (Table 6)", ("6",),
                          grid(("6",), CPU, ["digits"], U, (0.0, 0.5), ABLATION, SEEDS5)),
    "cpu-table16": _preset("digits 50 % uniform: mislabel detection by W_alpha/beta/delta/W (epochs 3, 10) "
                           "vs AUM, EL2N, GraNd, Forgetting, DataMaps, Data-IQ (Table 16)", ("16",),
                           grid(("16",), CPU, ["digits"], U, (0.5,), PAIR, SEEDS5, tag="/rec", **_T16_REC)),
    "cpu-beyond": _preset("beyond the paper: frozen alpha/beta/delta, detached weights, clean-validation "
                          "early stop, GCE, SCE (ECG5000's LiLAW and frozen runs are in cpu-table3)", ("beyond",),
                          grid(("beyond",), CPU, ["digits"], U, (0.5,), BEYOND, SEEDS5)
                          + grid(("beyond",), CPU, ["ecg5000"], U, (0.3,), BEYOND_ECG, SEEDS5, tag="/beyond")),
    "cpu-table7": _preset("digits, uniform noise 0-90 % (Table 7, Fig. 3)", ("7",),
                          grid(("7",), CPU, ["digits"], U, RATES_0_90, PAIR, SEEDS5)),
    "cpu-table8": _preset("temperature scaling: every run also reports calibrated metrics; same runs as "
                          "cpu-table14 (Table 8)", ("8",),
                          grid(("8",), CPU, ["digits"], U, (0.0, 0.5), PAIR, SEEDS5)),
    "cpu-table9": _preset("digits 50 % uniform: clean validation set; baseline trained on the clean "
                          "samples only (Table 9)", ("9",),
                          [row("digits/uniform-0.5/clean-val", ("9",), CPU["digits"], PAIR, SEEDS5,
                               noise="uniform", rate=0.5, clean_val=True),
                           row("digits/uniform-0.5/clean-only", ("9",), CPU["digits"], ("baseline",), SEEDS5,
                               noise="uniform", rate=0.5, train_on_clean_only=True)]),
    "cpu-table10": _preset("five seeds, mean +- std: the cpu-table14 runs (Table 10, Fig. 5)", ("10",),
                           grid(("10",), CPU, ["digits"], U, (0.0, 0.5), PAIR, SEEDS5)
                           + grid(("10",), CPU, ["cifar10-jpeg"], U, (0.0, 0.5), PAIR, SEEDS5)),
    "cpu-table11": _preset("digits, focal loss with and without LiLAW (Table 11)", ("11",),
                           grid(("11",), CPU, ["digits"], U, (0.0, 0.5), ("baseline-focal", "lilaw-focal"),
                                SEEDS5, tag="/focal")),
    "cpu-table12": _preset("digits 50 % uniform, validation size 5-30 % (Table 12)", ("12",),
                           [row(f"digits/uniform-0.5/val-{v:g}", ("12",), CPU["digits"], PAIR, SEEDS5,
                                noise="uniform", rate=0.5, val_fraction=v) for v in (0.05, 0.1, 0.2, 0.25, 0.3)]),
    "cpu-table13": _preset("digits, validation set from a shifted distribution (Table 13)", ("13",),
                           grid(("13",), CPU, ["digits"], U, (0.0, 0.5), PAIR, SEEDS5, tag="/val-shift",
                                val_shift=True)),
    # issue 11 (REL_* above): digits and BreastMNIST only; the compute-matched rows give each method LiLAW's budget
    "cpu-relatives": _preset("LiLAW beside L2RW, Meta-Weight-Net and confident learning (cleanlab): digits (500 "
                             "train, 6 epochs) at 0/30/50 % uniform and 30 % asymmetric noise, BreastMNIST (250 "
                             "train, 6 epochs) at 0/30/50 % uniform, same seeds, split, noise, init and epochs; plus "
                             "digits 50 % with every method given LiLAW's compute budget (issue 11)", ("relatives",),
                             relatives_rows()),
    # issue 13: the current meta step (lilaw) beside cheaper ones, paired (same seed, split, noise, init)
    "cpu-cheap-meta": _preset("cheaper meta steps: a meta step every k training steps (with/without the meta lr "
                              "times k) and validation batches of B/r, against the current LiLAW; ECG5000 30 %, "
                              "digits 50 %, BreastMNIST 30 % uniform noise (issue 13)", ("cheap-meta",),
                              grid(("cheap-meta",), CPU, ["ecg5000"], U, (0.3,), CHEAP_META, SEEDS5)
                              + grid(("cheap-meta",), CPU, ["digits"], U, (0.5,), CHEAP_META, SEEDS5)
                              + grid(("cheap-meta",), CPU, ["breastmnist"], U, (0.3,), CHEAP_META, SEEDS5)),
    # issue 16, part 5: how much of "LiLAW (last two layers) vs baseline (everything)" is freezing
    "cpu-confound": _preset("the confound at CPU scale: small CNN pretrained on half A of CIFAR-10 JPEG, fine-tuned "
                            "on 1000 samples of half B at 0-70 % uniform noise; baseline and LiLAW, each fine-tuning "
                            "every layer or the last two (issue 16)", ("confound",),
                            grid(("confound",), {"cifar10-jpeg": PRETRAINED_CIFAR}, ["cifar10-jpeg"], U,
                                 (0.0, 0.3, 0.5, 0.7), CONFOUND, SEEDS5)),
    "cpu-meta-lr": _preset("LiLAW's meta learning rate x100 and x1000 (x1: cpu-confound's lilaw) in the cpu-confound "
                           "set-up at 50 % uniform noise (issue 16)", ("meta-lr",),
                           grid(("meta-lr",), {"cifar10-jpeg": PRETRAINED_CIFAR}, ["cifar10-jpeg"], U, (0.5,),
                                META_LR, SEEDS5)),
    # issue 16, part 1: every selection rule replayed from per-epoch test metrics (test_each_epoch), on the two
    # settings where the val_loss rule decided the sign: GCE/SCE on digits (cpu-beyond) and LiLAW on
    # PneumoniaMNIST at 40-50 % (cpu-table2). Same configs as those rows plus the per-epoch test pass.
    "cpu-selection": _preset("checkpoint selection: the test metrics of every epoch, so that every rule can be "
                             "replayed; digits 50 % (baseline, LiLAW, GCE, SCE) and PneumoniaMNIST 40 and 50 % "
                             "(baseline, LiLAW) uniform noise (issue 16)", ("selection",),
                             grid(("selection",), CPU, ["digits"], U, (0.5,), ("baseline", "lilaw", "gce", "sce"),
                                  SEEDS5, tag="/every-epoch", test_each_epoch=True)
                             + grid(("selection",), CPU, ["pneumoniamnist"], U, (0.4, 0.5), PAIR, SEEDS5,
                                    tag="/every-epoch", test_each_epoch=True)),
    # ------------------------------------------------------------------ paper scale (GPU)
    "paper-table1": _preset("CIFAR-100-M, ViT-B/16, every noise kind at 50 % (Table 1)", ("1",),
                            grid(("1",), P, ["cifar100"], NOISE_T1, (0.5,), PAIR + ("baseline-frozen",), (0,))),
    "paper-table2": _preset("ten MedMNIST datasets, ResNet-18 224 px, uniform 0-50 % (Tables 2, 15)",
                            ("2", "15"), grid(("2", "15"), P, MEDMNIST10, U, RATES_0_50, PAIR, (0,))),
    # Cheap enough for a CPU too (about 4 min per method here): seeds 0-2 of both rows first.
    "paper-table3": _preset("ECG5000, stacked LSTM, 500 epochs, batch 512 (Table 3)", ("3",),
                            grid(("3",), P, ["ecg5000"], U, (0.0, 0.3), TRIO, (0, 1, 2))
                            + grid(("3",), P, ["ecg5000"], U, (0.0, 0.3), TRIO, (3, 4))),
    "paper-table6": _preset("CIFAR-100-M ablation of alpha/beta/delta (Table 6)", ("6",),
                            grid(("6",), P, ["cifar100"], U, (0.0, 0.5), ABLATION + ("baseline-frozen",), (0,))),
    "paper-table7": _preset("CIFAR-100-M, uniform 0-90 % (Table 7, Fig. 3)", ("7",),
                            grid(("7",), P, ["cifar100"], U, RATES_0_90, PAIR + ("baseline-frozen",), (0,))),
    "paper-table9": _preset("CIFAR-100-M clean validation / clean-only training (Table 9)", ("9",),
                            [row("cifar100/uniform-0.5/clean-val", ("9",), P["cifar100"],
                                 PAIR + ("baseline-frozen",), (0,), noise="uniform", rate=0.5, clean_val=True),
                             row("cifar100/uniform-0.5/clean-only", ("9",), P["cifar100"],
                                 ("baseline", "baseline-frozen"), (0,), noise="uniform", rate=0.5,
                                 train_on_clean_only=True)]),
    "paper-table10": _preset("CIFAR-100-M, five seeds (Table 10, Fig. 5)", ("10",),
                             grid(("10",), P, ["cifar100"], U, (0.0, 0.5), PAIR + ("baseline-frozen",), SEEDS5)),
    "paper-table11": _preset("CIFAR-100-M focal loss (Table 11)", ("11",),
                             grid(("11",), P, ["cifar100"], U, (0.0, 0.5), ("baseline-focal", "lilaw-focal"),
                                  (0,), tag="/focal")),
    "paper-table12": _preset("CIFAR-100-M validation size (Table 12)", ("12",),
                             [row(f"cifar100/uniform-0.5/val-{v:g}", ("12",), P["cifar100"],
                                  PAIR + ("baseline-frozen",), (0,), noise="uniform", rate=0.5, val_fraction=v)
                              for v in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)]),
    "paper-table13": _preset("CIFAR-100-M shifted validation set (Table 13)", ("13",),
                             grid(("13",), P, ["cifar100"], U, (0.0, 0.5), PAIR, (0,), tag="/val-shift",
                                  val_shift=True)),
    "paper-table14": _preset("MNIST, FashionMNIST, CIFAR-10, CIFAR-100 with ViT-B/16 (Tables 8, 14)",
                             ("8", "14"), grid(("8", "14"), P, ["mnist", "fashionmnist", "cifar10", "cifar100"],
                                               U, (0.0, 0.5), PAIR + ("baseline-frozen",), (0,))),
    "paper-table16": _preset("CIFAR-100 50 % uniform mislabel detection (Table 16)", ("16",),
                             grid(("16",), P, ["cifar100"], U, (0.5,), PAIR, (0,), tag="/rec", **_T16_REC)),
    "paper-beyond": _preset("beyond the paper at paper scale (ECG5000, CIFAR-100-M 50 %)", ("beyond",),
                            grid(("beyond",), P, ["ecg5000"], U, (0.3,), BEYOND, SEEDS5)
                            + grid(("beyond",), P, ["cifar100"], U, (0.5,), BEYOND + ("baseline-frozen",), (0,))),
}

# The order the CPU suite runs in: the most valuable rows first.
CPU_PRIORITY = ("cpu-table3", "cpu-table2", "cpu-table14", "cpu-table1", "cpu-table6", "cpu-table16",
                "cpu-beyond", "cpu-table8", "cpu-table10", "cpu-table7", "cpu-table9", "cpu-table11",
                "cpu-table13", "cpu-table12")
