"""Model families and the names the CLI knows them by.

Families are imported lazily so that the TF-IDF path never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ModelError
from .base import Inputs, StanceModel, as_inputs

#: family name (as written in config.json) -> "module:Class"
FAMILIES = {
    "majority": "comment_stance.models.baselines:MajorityModel",
    "tfidf": "comment_stance.models.baselines:TfidfModel",
    "transformer": "comment_stance.models.transformer:TransformerModel",
    "ensemble": "comment_stance.models.ensemble:EnsembleModel",
}

#: names accepted by ``stance train --model`` -> (family, preset hyper-parameters)
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "majority": ("majority", {}),
    "tfidf-logreg": ("tfidf", {"classifier": "logreg"}),
    "tfidf-svm": ("tfidf", {"classifier": "svm"}),
    "transformer": ("transformer", {}),
    # all-mpnet-base-v2 (`stance backbone install mpnet`): slower, more accurate (docs/transformer.md)
    "transformer-mpnet": ("transformer", {"base_model": "all-mpnet-base-v2", "lr": 4e-5, "epochs": 3}),
    # the mean of the TF-IDF SVM's and the transformer's calibrated probabilities (models/ensemble.py)
    "ensemble": ("ensemble", {}),
}


def family_class(family: str) -> type[StanceModel]:
    """The class of a model family, imported on first use."""
    try:
        module_name, class_name = FAMILIES[family].split(":")
    except KeyError:
        raise ModelError(f"unknown model family '{family}'", f"known families: {', '.join(FAMILIES)}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"the '{family}' family needs a package that is not installed ({exc.name})",
                         "install the extra: pip install 'comment-stance[transformer]'") from None
    return getattr(module, class_name)


def make_model(name: str, **params: Any) -> StanceModel:
    """Build an unfitted model from a preset name and hyper-parameter overrides.

    >>> make_model("tfidf-svm", C=0.5).get_params()["classifier"]
    'svm'
    """
    if name not in PRESETS:
        raise ModelError(f"unknown model '{name}'", f"choose one of: {', '.join(PRESETS)}")
    family, preset = PRESETS[name]
    cls = family_class(family)
    merged = {**preset, **params}
    known = cls().get_params()  # constructors only store hyper-parameters, so this is cheap
    unknown = sorted(set(merged) - set(known))
    if unknown:
        raise ModelError(f"'{name}' has no hyper-parameter '{unknown[0]}'", f"known: {', '.join(sorted(known))}")
    return cls(**merged)


__all__ = ["FAMILIES", "PRESETS", "Inputs", "StanceModel", "as_inputs", "family_class", "make_model"]
