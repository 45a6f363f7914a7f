"""Per-sample difficulty scores from training dynamics (baselines of the paper's Table 16).

Each score exists in two forms:

* a **functional form** on stacked per-epoch outputs, shape (E, N, C), easy to check by
  hand (``aum``, ``el2n``, ``grand``, ``forgetting``, ``datamaps``, ``data_iq``);
* a **recorder** (``AUMRecorder``, ...) that the training loop feeds once per epoch with
  the logits of the whole training set computed in eval mode; it keeps O(N) running
  sums, never the (E, N, C) history.

``targets`` is always the label the model was trained on (the possibly noisy one).
Every recorder has ``higher_means`` ("clean" or "noisy"): pass it to
``lilaw_edu.metrics.mislabel_detection``.

Our protocol differs from the original papers in one respect, the same for all scores:
training dynamics come from one eval-mode pass over the training set at the end of each
epoch, not from the mini-batch forward passes during training (AUM, Forgetting) or from
several independent runs (EL2N, GraNd).
"""

from __future__ import annotations

from .functional import DATA_IQ_GROUPS, aum, data_iq, datamaps, el2n, forgetting, grand
from .recorders import (
    DIFFICULTY_SCORES,
    AUMRecorder,
    DataIQRecorder,
    DataMapsRecorder,
    DifficultyRecorders,
    EL2NRecorder,
    ForgettingRecorder,
    GraNdRecorder,
    compute_all,
)

__all__ = [
    "aum", "el2n", "grand", "forgetting", "datamaps", "data_iq", "DATA_IQ_GROUPS",
    "AUMRecorder", "EL2NRecorder", "GraNdRecorder", "ForgettingRecorder",
    "DataMapsRecorder", "DataIQRecorder", "DIFFICULTY_SCORES", "DifficultyRecorders",
    "compute_all",
]
