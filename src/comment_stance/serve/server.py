"""Running the app: load the model once, build the app, hand it to uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def build(model: str | Path, *, targets=None, db=":memory:", api_key_file=None, review_below=0.6, max_batch=64,
          batch_wait_ms=5.0, max_body_bytes=1_000_000, max_comments=100, max_chars=20_000,
          max_upload_bytes=50 * 1024 * 1024, threads=None, batch_size=None, quantize=None,
          allowed_hosts=None) -> Any:
    """The app for a model folder, with the options of ``stance serve``."""
    from ..persist import load_model
    from .app import Limits, create_app

    estimator = load_model(model, threads=threads, quantize=quantize, inference_batch_size=batch_size)
    limits = Limits(max_body_bytes=max_body_bytes, max_comments=max_comments, max_chars=max_chars,
                    max_upload_bytes=max_upload_bytes)
    return create_app(estimator, model_dir=model, targets=targets, db=db, api_keys=api_key_file, limits=limits,
                      max_batch=max_batch, batch_wait_ms=batch_wait_ms, review_below=review_below,
                      allowed_hosts=allowed_hosts)


def default_hosts(host: str, extra: list[str] | None) -> tuple[str, ...] | None:
    """Host names to answer to: bound to this machine only, just its local names (and any extra);
    bound to a public address, any name unless some are given."""
    from .app import LOCAL_HOSTS

    if host in LOCAL_HOSTS:
        return (*LOCAL_HOSTS, *(extra or []))
    return tuple(extra) if extra else None


def run(model: str | Path, *, host: str = "127.0.0.1", port: int = 8000, root_path: str = "",
        log_level: str = "info", allowed_hosts: list[str] | None = None, **options: Any) -> None:
    import uvicorn

    import sys

    app = build(model, allowed_hosts=default_hosts(host, allowed_hosts), **options)
    shown = f"[{host}]" if ":" in host else host
    print(f"stance serve: {app.state.model_info['name']} {app.state.model_info['version']}; "
          f"review page http://{shown}:{port}{root_path}/review, API http://{shown}:{port}{root_path}/v1/score",
          file=sys.stderr)
    if host not in ("127.0.0.1", "localhost", "::1") and not options.get("api_key_file"):
        print(f"warning: listening on {host} without --api-key-file: anyone who can reach port {port} can read "
              "and change the review desk", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, root_path=root_path, log_level=log_level,
                proxy_headers=True, server_header=False)
