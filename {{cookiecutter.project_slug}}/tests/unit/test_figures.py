"""The report's PNGs: drawn from the CSVs evaluate writes for DVC, byte-identical from run to run."""

from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.evaluate import write_plots
from {{ cookiecutter.package_name }}.figures import FigureError, draw, markdown, pr_on_grid, read_csv, roc_on_grid
from {{ cookiecutter.package_name }}.metrics import Scored

PNG = b"\x89PNG\r\n\x1a\n"


def classified() -> Scored:
    truth = np.asarray(["no", "yes", "yes", "no", "yes", "no"], dtype=object)
    proba_yes = np.asarray([0.1, 0.8, 0.4, 0.3, 0.9, 0.6])
    proba = np.column_stack([1 - proba_yes, proba_yes])
    predicted = np.where(proba_yes > 0.5, "yes", "no").astype(object)
    return Scored(truth, predicted, proba, ("no", "yes"), "yes")


def test_classification_figures_are_drawn_from_the_plot_csvs(tmp_path: Path) -> None:
    write_plots(tmp_path / "plots", classified())
    drawn = draw(tmp_path / "plots", tmp_path / "figures", ["no", "yes"], "yes")
    assert [p.name for p in drawn] == ["confusion_matrix.png", "roc.png", "pr.png"]
    assert all(p.read_bytes().startswith(PNG) for p in drawn)
    again = draw(tmp_path / "plots", tmp_path / "again", ["no", "yes"], "yes")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in drawn]  # no timestamp in the PNGs


def test_regression_figures_are_drawn_from_the_predictions_csv(tmp_path: Path) -> None:
    truth = np.asarray([1.0, 2.0, 3.5, 4.0])
    write_plots(tmp_path / "plots", Scored(truth, truth + np.asarray([0.5, -0.25, 0.0, 1.0])))
    assert read_csv(tmp_path / "plots/predictions.csv")["residual"].tolist() == ["0.5", "-0.25", "0.0", "1.0"]
    drawn = draw(tmp_path / "plots", tmp_path / "figures", None, None)
    assert [p.name for p in drawn] == ["predicted_vs_actual.png", "residuals.png"]
    assert all(p.read_bytes().startswith(PNG) for p in drawn)


def test_a_missing_plot_csv_says_to_run_the_pipeline(tmp_path: Path) -> None:
    expected = r"plots/confusion.csv cannot be read \(No such file or directory\): run `dvc repro`"
    with pytest.raises(FigureError, match=expected):
        draw(tmp_path / "plots", tmp_path / "figures", ["no", "yes"], "yes")


def test_classification_markdown_has_mermaid_curves_and_a_confusion_table(tmp_path: Path) -> None:
    write_plots(tmp_path, classified())
    lines = markdown(tmp_path, ["no", "yes"], "yes")
    assert lines[:6] == [
        "```mermaid",
        "xychart-beta",
        '  title "ROC curve (positive class yes)"',
        '  x-axis "fpr" 0 --> 1',
        '  y-axis "tpr" 0 --> 1',
        "  line [" + ", ".join(["0.667"] * 7 + ["1"] * 14) + "]",  # one false positive (0.6) above two of three yes
    ]
    assert lines[-4:] == [
        "| actual \\ predicted | no | yes |",
        "|---|---|---|",
        "| **no** | 2 | 1 |",
        "| **yes** | 1 | 2 |",
    ]


def test_curves_are_resampled_on_the_grid_as_reachable_points() -> None:
    roc = {"fpr": np.asarray([0.0, 0.0, 0.5, 1.0]), "tpr": np.asarray([0.0, 0.5, 1.0, 1.0])}
    assert roc_on_grid(roc).tolist() == [0.5] * 10 + [1.0] * 11  # tpr 1 needs fpr 0.5
    pr = {"recall": np.asarray([1.0, 0.5, 0.0]), "precision": np.asarray([0.5, 1.0, 1.0])}
    assert pr_on_grid(pr).tolist() == [1.0] * 11 + [0.5] * 10  # best precision at that recall or more


def test_regression_markdown_is_a_histogram_of_every_residual(tmp_path: Path) -> None:
    truth = np.arange(20, dtype=np.float64)
    write_plots(tmp_path, Scored(truth, truth + np.linspace(-1.0, 1.0, 20)))
    lines = markdown(tmp_path, None, None)
    assert lines[2] == '  title "Residuals (predicted - actual)"'
    assert lines[3] == '  x-axis "residual" [-0.9, -0.7, -0.5, -0.3, -0.1, 0.1, 0.3, 0.5, 0.7, 0.9]'
    assert lines[5] == "  bar [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]"


def test_labels_cannot_break_the_table_or_the_chart(tmp_path: Path) -> None:
    scored = classified()
    rename = {"no": 'say "no"', "yes": "a|b"}
    truth = np.asarray([rename[v] for v in scored.y_true], dtype=object)
    predicted = np.asarray([rename[v] for v in scored.y_pred], dtype=object)
    write_plots(tmp_path, Scored(truth, predicted, scored.proba, ('say "no"', "a|b"), 'say "no"'))
    lines = markdown(tmp_path, ['say "no"', "a|b"], 'say "no"')
    assert lines[2] == "  title \"ROC curve (positive class say 'no')\""
    assert lines[-4] == '| actual \\ predicted | say "no" | a\\|b |'
    assert lines[-1] == "| **a\\|b** | 1 | 2 |"
