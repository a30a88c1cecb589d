"""Shared fixtures. Every test runs offline and writes only under pytest's tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    # Nothing may reach a model hub: tests must pass on a machine with no network.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def tiny_dir() -> Path:
    """A hand-written 42-comment dataset folder (train/dev/test), two targets, three labels."""
    return FIXTURES / "tiny"


@pytest.fixture
def repo() -> Path:
    return REPO
