"""``stance serve``: the scoring API and the moderators' review desk.

:func:`create_app` builds the ASGI application around a loaded model; it is imported lazily so
that ``import comment_stance.serve`` (and ``stance --help``) never pulls in the web framework.

>>> from comment_stance import load_model
>>> from comment_stance.serve import create_app
>>> app = create_app(load_model("models/tfidf-logreg"), db="desk.sqlite")
>>> sorted(r.path for r in app.routes if r.path.startswith("/v1/"))[:3]
['/v1/counts', '/v1/decisions', '/v1/export']
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(model: Any, **options: Any):
    """See :func:`comment_stance.serve.app.create_app`."""
    from .app import create_app as build

    return build(model, **options)
