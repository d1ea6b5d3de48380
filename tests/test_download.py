"""pwm.data.download against a hand-built local hub cache only: these tests never touch the network."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import pytest

from pwm.data.download import DownloadError, download_checkpoint, download_dataset

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def cached_file(cache: Path, kind: str, filename: str, content: bytes = b"x") -> Path:
    """Lay a file out as the hub does: <kind>s--org--name/refs/main -> snapshots/<sha>/<filename>."""
    repo = cache / f"{kind}s--nicklashansen--tdmpc2"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(SHA)
    path = repo / "snapshots" / SHA / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_dataset_from_local_cache(tmp_path):
    for i in range(4):
        cached_file(tmp_path, "dataset", f"mt30/chunk_{i}.pt")
    directory = download_dataset("mt30", cache_dir=tmp_path, offline=True)
    assert directory == tmp_path / "datasets--nicklashansen--tdmpc2" / "snapshots" / SHA / "mt30"
    assert sorted(p.name for p in directory.iterdir()) == [f"chunk_{i}.pt" for i in range(4)]


def test_checkpoint_from_local_cache(tmp_path):
    expected = cached_file(tmp_path, "model", "multitask/mt80-48M.pt", b"weights")
    path = download_checkpoint("mt80", "48M", cache_dir=tmp_path, offline=True)
    assert path == expected and path.read_bytes() == b"weights"


def test_missing_files_give_one_line_errors(tmp_path):
    cached_file(tmp_path, "dataset", "mt80/chunk_0.pt")
    assert download_dataset("mt80", chunks=[0], cache_dir=tmp_path, offline=True).name == "mt80"
    with pytest.raises(DownloadError) as info:
        download_dataset("mt80", chunks=[0, 1], cache_dir=tmp_path, offline=True)
    text = str(info.value)
    assert "\n" not in text
    assert "dataset repo nicklashansen/tdmpc2: file mt80/chunk_1.pt is not in the cache" in text
    assert str(tmp_path) in text
    with pytest.raises(DownloadError, match=r"model repo nicklashansen/tdmpc2: file multitask/mt30-5M\.pt"):
        download_checkpoint("mt30", "5M", cache_dir=tmp_path)  # offline through HF_HUB_OFFLINE


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"chunk index 4 out of range for mt30: chunks are 0\.\.3"):
        download_dataset("mt30", chunks=[4], cache_dir=tmp_path, offline=True)
    with pytest.raises(ValueError, match="unknown checkpoint size '2M'"):
        download_checkpoint("mt30", "2M", cache_dir=tmp_path, offline=True)
    with pytest.raises(KeyError, match="unknown task set 'mt10'"):
        download_dataset("mt10", cache_dir=tmp_path, offline=True)
