"""Preprocessing built from the feature types of the contract, shared by training and serving.

Only transformers with a plain numpy equivalent (median imputation, standard scaling, constant imputation,
one-hot encoding with fixed categories), so serving can replicate the fitted transformer exactly without sklearn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import Feature
from .data import allowed_values

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer

MISSING_CATEGORY = "__missing__"


def build_preprocessor(features: Sequence[Feature]) -> ColumnTransformer:
    """numeric: median imputation + standard scaling; categorical: constant marker + one-hot on the contract's values.

    Categories come from the contract, never from the data: a category absent from the training rows still gets its
    column, an unknown one (or a missing value) encodes as all zeros.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f.name for f in features if not f.is_categorical]
    categorical = [f for f in features if f.is_categorical]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True)), ("scale", StandardScaler())]
        transformers.append(("numeric", Pipeline(steps), numeric))
    if categorical:
        encoder = OneHotEncoder(
            categories=[list(allowed_values(f)) for f in categorical],
            handle_unknown="ignore",
            sparse_output=False,
            dtype=np.float64,
        )
        impute = SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY, keep_empty_features=True)
        transformers.append(
            ("categorical", Pipeline([("impute", impute), ("onehot", encoder)]), [f.name for f in categorical])
        )
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def model_frame(frame: pd.DataFrame, features: Sequence[Feature]) -> pd.DataFrame:
    """The feature columns in contract order with the dtypes the preprocessor expects.

    Numbers as float64 (missing -> NaN); categories as Python strings in an object column (missing -> NaN), so a
    category typed as 1 in JSON and '1' in CSV is the same category.
    """
    import pandas as pd

    columns: dict[str, Any] = {}
    for feature in features:
        column = frame[feature.name]
        if feature.is_categorical:
            values = column.astype(object)
            if feature.type == "boolean":
                values = values.map(lambda v: str(v).lower() if isinstance(v, bool) else v, na_action="ignore")
            columns[feature.name] = values.map(str, na_action="ignore").astype(object).where(values.notna(), np.nan)
        else:
            columns[feature.name] = pd.to_numeric(column, errors="coerce").astype(np.float64)
    return pd.DataFrame(columns, index=frame.index)
