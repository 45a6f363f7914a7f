"""The selection rule of each record, as every experiment chapter reports it (issue 16)."""
from lilaw_edu.experiments.chapter import old_rule, selection_rules


def _record(preset, config, metrics):
    return {"preset": preset, "payload": {"config": config, "result": {"methods": {"lilaw": {"metrics": metrics}}}}}


def test_old_and_new_rule_records_are_told_apart():
    old = _record("cpu-a", {"seed": 0}, {"test": {}})
    new = _record("cpu-a", {"seed": 1, "select_by": "val_loss"}, {"test": {}, "select_by": "val_loss"})
    last = _record("cpu-b", {"seed": 0, "select_by": "last"}, {"test": {}})
    assert old_rule(old) and not old_rule(new) and not old_rule(last)
    assert selection_rules([old, new, last]) == {"cpu-a": {"first best val_acc (old rule)": 1, "val_loss": 1},
                                                 "cpu-b": {"last": 1}}


def test_shown_mean_is_checked_to_half_a_unit_of_its_last_digit():
    from lilaw_edu.experiments.chapter import _shows_mean

    assert _shows_mean("12.35 ± 0.10 (n=2)", 12.345, 2) and _shows_mean("12.34 ± 0.10 (n=2)", 12.345, 2)  # a tie
    assert not _shows_mean("12.36 ± 0.10 (n=2)", 12.345, 2)
    assert _shows_mean("not run yet", None, 2) and not _shows_mean("not run yet", 1.0, 2)
    assert not _shows_mean("12.34 ± 0.1", None, 2)
