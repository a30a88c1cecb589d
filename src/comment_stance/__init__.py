"""comment-stance: learn and score the stance of reader comments toward a target.

The Python API (the CLI ``stance`` only wraps it)::

    from comment_stance import train, evaluate, load_model, predict

    result = train("data/processed/random", "tfidf-logreg", "models/tfidf-logreg")
    print(evaluate("models/tfidf-logreg", "data/processed/unseen-article")["macro_f1"])
    model = load_model("models/tfidf-logreg")
    predict(model, ["Sign it and be done.", "Only with independent monitors."])

Names are imported on first use, so ``import comment_stance`` stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "train": "comment_stance.training:train",
    "TrainResult": "comment_stance.training:TrainResult",
    "combine": "comment_stance.training:combine",
    "evaluate": "comment_stance.evaluation:evaluate",
    "evaluate_model": "comment_stance.evaluation:evaluate_model",
    "score": "comment_stance.metrics:score",
    "load_model": "comment_stance.persist:load_model",
    "save_model": "comment_stance.persist:save_model",
    "make_model": "comment_stance.models:make_model",
    "predict": "comment_stance.scoring:predict",
    "score_file": "comment_stance.scoring:score_file",
    "read_comments": "comment_stance.data:read_comments",
    "load_dataset": "comment_stance.data:load_dataset",
    "Columns": "comment_stance.data:Columns",
    "StanceModel": "comment_stance.models.base:StanceModel",
    "MajorityModel": "comment_stance.models.baselines:MajorityModel",
    "TfidfModel": "comment_stance.models.baselines:TfidfModel",
    "TransformerModel": "comment_stance.models.transformer:TransformerModel",
    "StanceError": "comment_stance.errors:StanceError",
    "DataError": "comment_stance.errors:DataError",
    "ModelError": "comment_stance.errors:ModelError",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        module, attr = _API[name].split(":")
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'comment_stance' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
