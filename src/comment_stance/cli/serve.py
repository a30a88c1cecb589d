"""``stance serve``: parse options, load the model once, run the service (see :mod:`comment_stance.serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import DataError
from ._util import cli_errors


@cli_errors
def serve_cli(
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Model folder written by 'stance train'."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; the default answers this machine only. "
                                                          "Use 0.0.0.0 only behind a reverse proxy or with keys."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    allowed_host: Optional[list[str]] = typer.Option(
        None, "--allowed-host", help="Host name requests may use (repeatable). Bound to 127.0.0.1, only "
                                     "127.0.0.1/localhost/::1 are answered unless more are given here."),
    targets: Optional[Path] = typer.Option(None, "--targets", help="JSON file mapping article ids or titles to "
                                                                    "targets (created when edited on the page)."),
    db: Path = typer.Option(Path("stance-review.sqlite"), "--db", help="SQLite file for the review queue and "
                                                                       "decisions (created if missing)."),
    api_key_file: Optional[Path] = typer.Option(None, "--api-key-file", help="File of hashed API keys; without it "
                                                                              "no key is needed."),
    new_key: Optional[Path] = typer.Option(None, "--new-key", help="Create an API key, add its hash to this file, "
                                                                    "print the key once and exit."),
    review_below: float = typer.Option(0.6, "--review-below", help="Flag comments whose confidence is below this."),
    max_batch: int = typer.Option(64, "--max-batch", help="Most comments scored in one model call "
                                                          "(1 turns batching off)."),
    batch_wait_ms: float = typer.Option(5.0, "--batch-wait-ms", help="How long a batch waits for more requests."),
    max_body_bytes: int = typer.Option(1_000_000, "--max-body-bytes", help="Largest JSON request body."),
    max_comments: int = typer.Option(100, "--max-comments", help="Most comments in one request."),
    max_chars: int = typer.Option(20_000, "--max-chars", help="Longest comment, in characters."),
    max_upload_bytes: int = typer.Option(50 * 1024 * 1024, "--max-upload-bytes", help="Largest uploaded export."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for the model (transformer family)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Comments per forward pass "
                                                                         "(transformer family)."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="Quantize for CPU inference, e.g. int8."),
    root_path: str = typer.Option("", "--root-path", help="URL prefix when served behind a reverse proxy, "
                                                          "e.g. /stance."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level."),
) -> None:
    """Serve a model: a scoring API (POST /v1/score) and a review page for moderators (/review).

    The model is loaded once. Decisions are kept in --db and can be exported as a training file
    (GET /v1/export) that 'stance train --data' reads.
    """
    if new_key is not None:
        from ..serve.keys import add_key

        key = add_key(new_key)
        typer.echo(f"{key}\n(its hash is in {new_key}; the key itself is not stored anywhere - keep it now)")
        return
    if model is None:
        raise DataError("--model is needed", "e.g. stance serve --model models/tfidf-logreg")
    for name, value in (("--max-batch", max_batch), ("--max-body-bytes", max_body_bytes),
                        ("--max-comments", max_comments), ("--max-chars", max_chars),
                        ("--max-upload-bytes", max_upload_bytes)):
        if value < 1:
            raise DataError(f"{name} {value} is too small", f"give {name} a value of at least 1")
    if batch_wait_ms < 0:
        raise DataError(f"--batch-wait-ms {batch_wait_ms} is negative", "use 0 or more")
    from ..serve.server import run

    run(model, host=host, port=port, allowed_hosts=allowed_host, targets=targets, db=db, api_key_file=api_key_file, review_below=review_below,
        max_batch=max_batch, batch_wait_ms=batch_wait_ms, max_body_bytes=max_body_bytes, max_comments=max_comments,
        max_chars=max_chars, max_upload_bytes=max_upload_bytes, threads=threads, batch_size=batch_size,
        quantize=quantize, root_path=root_path, log_level=log_level)
