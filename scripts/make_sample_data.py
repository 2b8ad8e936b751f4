"""Write the sample datasets the template ships, from datasets scikit-learn ships (no download).

Run from the template root: python scripts/make_sample_data.py
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes

DATA = Path("{{cookiecutter.project_slug}}/data")
CLASSIFICATION = DATA / "{{ 'breast_cancer.csv' if cookiecutter.task == 'classification' else '' }}"
REGRESSION = DATA / "{{ 'diabetes.csv' if cookiecutter.task == 'regression' else '' }}"


def breast_cancer() -> str:
    """Ten 'mean' measurements, a size band derived from area (a categorical slice), and the diagnosis."""
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.iloc[:, :10].copy()
    frame.columns = [c.replace("mean ", "").replace(" ", "_") + "_mean" for c in frame.columns]
    frame = frame.round(5)
    cuts = np.quantile(frame["area_mean"], [1 / 3, 2 / 3]).round(0)
    frame["size_band"] = np.select(
        [frame["area_mean"] < cuts[0], frame["area_mean"] < cuts[1]], ["small", "medium"], "large"
    )
    frame["diagnosis"] = np.where(bunch.target == 0, "malignant", "benign")
    return frame.to_csv(index=False, lineterminator="\n")


def diabetes() -> str:
    """The unscaled diabetes data: sex is kept as the source's codes '1'/'2' (a categorical slice)."""
    bunch = load_diabetes(as_frame=True, scaled=False)
    frame = bunch.frame.copy()
    frame.columns = ["age", "sex", "bmi", "bp", "tc", "ldl", "hdl", "tch", "ltg", "glu", "progression"]
    frame["age"] = frame["age"].astype(int)
    frame["sex"] = frame["sex"].astype(int).astype(str)
    frame["glu"] = frame["glu"].astype(int)
    return frame.to_csv(index=False, lineterminator="\n")


if __name__ == "__main__":
    DATA.mkdir(parents=True, exist_ok=True)
    CLASSIFICATION.write_text(breast_cancer())
    REGRESSION.write_text(diabetes())
    print(f"wrote {CLASSIFICATION} and {REGRESSION}")
