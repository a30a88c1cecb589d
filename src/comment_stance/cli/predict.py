from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import DataError, OutputError
from ._util import JSON_OUT, QUIET, TEXT_COL, cli_errors, print_json


@cli_errors
def predict_cli(
    input: Optional[str] = typer.Argument(None, help="File of comments to score, or - for one comment on stdin."),
    model: Path = typer.Option(..., "--model", "-m", help="Model folder written by 'stance train'."),
    text: Optional[str] = typer.Option(None, "--text", "-t", help="Score this one comment."),
    target: Optional[str] = typer.Option(None, "--target", help="Target of the comment(s), e.g. the pact."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write scored rows here (.csv or .jsonl)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
    text_col: str = TEXT_COL,
    json_out: bool = JSON_OUT,
    quiet: bool = QUIET,
) -> None:
    """Score comments: one given with --text or on stdin, or a whole file."""
    import pandas as pd

    from ..data import Columns, read_comments
    from ..scoring import predict

    if (text is not None) + (input is not None) != 1:
        raise DataError("give exactly one of INPUT, - or --text", "e.g. stance predict --model DIR --text 'Sign it.'")
    if input == "-" or text is not None:
        comment = text if text is not None else sys.stdin.read().strip()
        if not comment.strip():
            raise DataError("the comment is empty", "pass the comment text with --text or on stdin")
        table = pd.DataFrame({"text": [comment], "target": [target]})
    else:
        table = read_comments(input, Columns(text=text_col), require_label=False)
        if target is not None:
            table["target"] = target
    scored = predict(model, table)
    if out is not None:
        if out.exists() and not overwrite:
            raise OutputError(f"{out}: already exists", "choose another --out or pass --overwrite")
        if out.suffix.lower() == ".csv":
            scored.to_csv(out, index=False)
        else:
            scored.to_json(out, orient="records", lines=True, force_ascii=False)
    if json_out:
        records = scored.to_dict(orient="records")
        print_json(records[0] if text is not None or input == "-" else records)
    elif not quiet and out is None:
        typer.echo(scored.to_string(index=False))
