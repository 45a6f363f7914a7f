"""The book's glue/table helpers and the figure functions added for chapters 03-04."""
import pytest

from lilaw_edu.explain import book, theory


def test_table_renders_the_named_columns_with_formats():
    rows = [dict(a=1.23456, b="x", c=0), dict(a=2.0, b="y", c=1)]
    html = book.table(rows, {"a": "A value", "b": "B"}, {"a": "{:.2f}"}).to_html()
    assert "A value" in html and "1.23" in html and "1.23456" not in html and "C" not in html.split("<tbody")[0]


def test_table_names_missing_columns():
    with pytest.raises(ValueError, match=r"columns \['z'\] are missing"):
        book.table([dict(a=1)], {"z": "Z"})


def test_glue_rejects_an_empty_name():
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        book.glue("", 1.0)


def test_observed_weight_ranges_lie_inside_the_printed_bounds():
    for row in theory.observed_weight_ranges((3,), ((10.0, 2.0, 6.0),), n=5000):
        for key in ("w_alpha", "w_beta"):
            assert row[f"{key}_lo"] <= row[f"{key}_min"] <= row[f"{key}_max"] <= row[f"{key}_hi"]
        assert 0 < row["w_delta_min"] <= row["w_delta_max"] <= 1


def test_new_figures_draw(monkeypatch):
    from lilaw_edu.explain import figures

    fig = figures.plot_gradient_multiplier(resolution=21)
    assert len(fig.axes) == 3  # two panels and a colour bar
    fig = figures.plot_weights_along_constant_m(points=20)
    assert len(fig.axes) == 3
    with pytest.raises(ValueError, match="maxes must lie in"):
        figures.plot_weights_along_constant_m(maxes=(0.3,))
    hist = [dict(epoch=e, alpha=10.0 - 0.01 * e, beta=2.0 + 0.01 * e, delta=6.0) for e in range(1, 4)]
    ax = figures.plot_trajectories({"run": hist}).axes[0]
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= 2 * hist[0]["alpha"]
    assert figures.plot_trajectories({"run": hist}, from_zero=False).axes[0].get_ylim()[0] > 9


def test_optional_returns_none_with_a_reason(capsys):
    def missing(name, **kwargs):
        raise FileNotFoundError(f"no files for {name} under /nowhere")

    assert book.optional(missing, "breastmnist") is None
    assert "[breastmnist] not available here" in capsys.readouterr().out
    assert book.optional(lambda name, k=0: (name, k), "digits", k=3) == ("digits", 3)


def test_table_html_is_reproducible():
    rows = [dict(a=1.0), dict(a=2.0)]
    assert book.table(rows, {"a": "A"}).to_html() == book.table(rows, {"a": "A"}).to_html()
