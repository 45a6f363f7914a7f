"""The shared validators of lilaw_edu._internal.checks and their use by noise, datasets, metrics,
explain, scores and the core (issue 9: one copy of the validators and of the 1e-3 tolerance)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from lilaw_edu._internal import checks
from lilaw_edu.core.weighting import check_probs
from lilaw_edu.datasets.core import split_off_validation, subsample
from lilaw_edu.explain import region, theory
from lilaw_edu.metrics import evaluate_predictions
from lilaw_edu.noise.inject import inject_label_noise
from lilaw_edu.scores.functional import el2n

PACKAGE = Path(__file__).resolve().parents[1] / "lilaw_edu"


@pytest.mark.parametrize("call, error, text", [
    (lambda: checks.check_int("k", 2.0, low=1), TypeError, "k must be an integer >= 1, got 2.0"),
    (lambda: checks.check_int("k", True, low=1), TypeError, "k must be an integer >= 1, got True"),
    (lambda: checks.check_int("k", 5, low=1, high=4), ValueError, "k must be an integer in [1, 4], got 5"),
    (lambda: checks.check_int("k", 5, high=4), ValueError, "k must be an integer <= 4, got 5"),
    (lambda: checks.check_num_classes(1), ValueError, "num_classes must be an integer >= 2, got 1"),
    (lambda: checks.check_fraction("rate", "0.5"), TypeError, "rate must be a real number in [0, 1], got '0.5'"),
    (lambda: checks.check_fraction("rate", float("nan")), ValueError, "rate must be in [0, 1], got nan"),
    (lambda: checks.check_fraction("f", 0.0, open_interval=True), ValueError, "f must be in (0, 1), got 0.0"),
    (lambda: checks.check_choice("kind", "x", ("a", "b")), ValueError, "kind must be one of ('a', 'b'), got 'x'"),
    (lambda: checks.check_choice("kind", ["x"], {"a"}), ValueError, "kind must be one of ('a',), got ['x']"),
    (lambda: checks.check_generator(np.random.default_rng(0)), TypeError, "generator must be a torch.Generator"),
    (lambda: checks.check_class_indices("y", [0, 1], 2), TypeError, "y must be a torch.Tensor of shape (N,), got list"),
    (lambda: checks.check_class_indices("y", torch.zeros(2), 2), TypeError, "y must have an integer dtype"),
    (lambda: checks.check_class_indices("y", torch.zeros(3, dtype=torch.long), 2, length=2), ValueError,
     "y must have shape (2,), got shape (3,)"),
    (lambda: checks.check_class_indices("y", torch.tensor([0, 2]), 2), ValueError,
     "y must lie in [0, num_classes=2), got values in [0, 2]"),
    (lambda: checks.check_prob_rows("p", torch.tensor([[0.6, 0.6]])), ValueError, "p rows must sum to 1 (tolerance 0.001)"),
    (lambda: checks.check_prob_rows("p", torch.tensor([[-0.5, 1.5]])), ValueError, "p must be probabilities in [0, 1]"),
])
def test_validator_messages_name_parameter_value_and_allowed(call, error, text):
    with pytest.raises(error, match=re.escape(text)) as info:
        call()
    assert "\n" not in str(info.value)


def test_validators_return_normalised_values():
    assert checks.check_int("k", np.int64(3), low=1) == 3 and type(checks.check_int("k", np.int64(3))) is int
    assert checks.check_fraction("rate", 1) == 1.0
    assert checks.check_class_indices("y", torch.tensor([1, 0], dtype=torch.int32), 2).dtype == torch.int64
    assert checks.check_class_indices("y", torch.zeros(0, dtype=torch.long), 2, length=0).numel() == 0


def _rows_off_by(offset: float) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.full((4, 2), 0.5, dtype=torch.float64)
    p[:, 0] += offset
    return p, torch.tensor([0, 1, 0, 1])


def test_one_probability_tolerance_everywhere():
    """Metrics, the LiLAW core and the difficulty scores accept and reject the same row sums."""
    assert checks.PROB_SUM_ATOL == 1e-3
    users = {"metrics": lambda p, y: evaluate_predictions(p, y, 2), "core": check_probs,
             "scores": lambda p, y: el2n(p[None], y)}
    for name, use in users.items():
        use(*_rows_off_by(0.5 * checks.PROB_SUM_ATOL))  # inside the tolerance
        with pytest.raises(ValueError, match="sum to 1"):
            use(*_rows_off_by(2 * checks.PROB_SUM_ATOL))


def test_subpackages_use_the_shared_validators():
    with pytest.raises(ValueError, match=re.escape("labels must lie in [0, num_classes=3)")):
        inject_label_noise(torch.tensor([0, 3]), "uniform", 0.5, 3, generator=torch.Generator())
    with pytest.raises(ValueError, match=re.escape("val_fraction must be in (0, 1), got 1.5")):
        split_off_validation(torch.zeros(4, 1), torch.arange(4), 1.5, seed=0)
    with pytest.raises(TypeError, match="max_train must be an integer >= 1, got 2.5"):
        subsample(torch.zeros(4, 1), torch.arange(4), 2.5, seed=0)
    with pytest.raises(ValueError, match=re.escape("resolution must be an integer in [3, 1001], got 2")):
        region.check_resolution(2)
    with pytest.raises(TypeError, match="rate must be a real number"):
        theory.expected_changed_fraction("0.3", 10)


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            yield node.lineno, base, [alias.name for alias in node.names]


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def test_no_underscore_name_crosses_a_subpackage():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        own = _subpackage(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        for line, module, names in _imports(path):
            if not module.startswith("lilaw_edu"):
                continue
            crossing = _subpackage(module) != own
            offenders += [f"{path.relative_to(PACKAGE)}:{line} imports {n} from {module}"
                          for n in names if crossing and n.startswith("_") and n != "__version__"]
    assert offenders == []


def test_internal_checks_names_are_public():
    assert all(not name.startswith("_") for name in checks.__all__)
    assert set(checks.__all__) <= set(dir(checks))
