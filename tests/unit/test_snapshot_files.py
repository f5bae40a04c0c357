"""Snapshot files: save, load, and export for Chrome DevTools."""

import json
import os
from pathlib import Path

import pytest

import heaplens


class Invoice:
    def __init__(self, n):
        self.n = n


INVOICES = [Invoice(i) for i in range(50)]


def test_a_saved_snapshot_loads_back_with_every_object_and_label(tmp_path):
    snap = heaplens.snapshot()
    path = tmp_path / "heap.hlsnap"
    snap.save(path)
    loaded = heaplens.load(path)
    assert len(loaded) == len(snap) and loaded.edge_count == snap.edge_count
    assert loaded.pid == os.getpid() and loaded.python_version == snap.python_version
    node = loaded[id(INVOICES[7])]
    assert node.type == f"{__name__}.Invoice"
    assert str(loaded.path_to(node)) == str(snap.path_to(INVOICES[7]))
    assert loaded.census().as_dict() == snap.census().as_dict()
    assert os.path.getsize(path) < 10 * (len(snap) + snap.edge_count)


def test_a_diff_of_loaded_files_finds_the_same_leak(tmp_path):
    before = heaplens.snapshot()
    INVOICES.extend(Invoice(i) for i in range(300))
    after = heaplens.snapshot()
    before.save(tmp_path / "before.hlsnap")
    after.save(tmp_path / "after.hlsnap")
    diff = heaplens.load(tmp_path / "after.hlsnap").diff(heaplens.load(tmp_path / "before.hlsnap"))
    assert diff.suspects[0].entry_type == f"{__name__}.Invoice"
    assert diff.suspects[0].entries == 300
    del INVOICES[50:]


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        heaplens.load(tmp_path / "missing.hlsnap")
    junk = tmp_path / "junk.hlsnap"
    junk.write_bytes(b"definitely not a heap snapshot")
    with pytest.raises(heaplens.SnapshotFormatError, match="junk.hlsnap"):
        heaplens.load(junk)
    good = tmp_path / "good.hlsnap"
    heaplens.snapshot().save(good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.hlsnap"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(heaplens.SnapshotFormatError):
        heaplens.load(truncated)
    with pytest.raises((FileNotFoundError, PermissionError, OSError)):
        heaplens.snapshot().save(tmp_path / "no-such-dir" / "x.hlsnap")


def test_export_for_chrome_devtools(tmp_path):
    snap = heaplens.snapshot()
    path = tmp_path / "heap.heapsnapshot"
    snap.export(path, format="chrome")
    data = json.loads(path.read_text())
    meta = data["snapshot"]["meta"]
    assert len(meta["node_fields"]) == 7 and len(meta["edge_fields"]) == 3
    assert len(data["nodes"]) == data["snapshot"]["node_count"] * 7
    assert len(data["edges"]) == data["snapshot"]["edge_count"] * 3
    assert f"{__name__}.Invoice" in data["strings"]
    with pytest.raises(ValueError, match="unknown export format"):
        snap.export(tmp_path / "x", format="graphviz")


@pytest.mark.parametrize("write", ["save", "export"])
def test_writing_through_a_link_keeps_the_link_and_fifos_and_devices_are_refused(
    tmp_path, write
):
    """save() and export() write through a symbolic link to its target (readers of the target
    see the new snapshot), and refuse a FIFO or a device instead of replacing it."""
    snap = heaplens.load(CAPTURED[0])
    kept = tmp_path / "kept"
    kept.mkdir()
    target = kept / "latest.data"
    target.write_text("old")
    link = tmp_path / "latest.link"
    link.symlink_to(Path("kept") / "latest.data")
    getattr(snap, write)(link)
    assert link.is_symlink() and os.readlink(link) == str(Path("kept") / "latest.data")
    assert target.read_bytes() != b"old"
    if write == "save":
        assert len(heaplens.load(target)) == len(snap)
    else:
        assert json.loads(target.read_text())["snapshot"]["node_count"] > 0
    assert sorted(p.name for p in kept.iterdir()) == ["latest.data"]  # no temporary file left

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="a FIFO"):
        getattr(snap, write)(fifo)
    assert fifo.is_fifo()
    with pytest.raises(OSError, match="a device"):
        getattr(snap, write)("/dev/full")
    with pytest.raises(OSError, match="a directory"):
        getattr(snap, write)(kept)


CAPTURED = sorted(
    (Path(__file__).parent.parent / "data").glob("captured-*.hlsnap"),
    key=lambda p: tuple(int(x) for x in p.stem.split("-")[1].split(".")),
)


def test_a_snapshot_of_each_supported_python_is_kept_for_these_tests():
    versions = [p.stem.split("-")[1] for p in CAPTURED]
    assert versions == ["3.11", "3.12", "3.13", "3.14", "3.15"]


@pytest.mark.parametrize("path", CAPTURED, ids=lambda p: p.stem)
def test_snapshots_taken_on_every_version_open_on_this_one(path, tmp_path):
    # Made by tests/data/make_captured.py on each version: a cache of Order objects.
    snap = heaplens.load(path)
    assert snap.python_version.startswith(path.stem.split("-")[1] + ".")
    orders = snap.by_type("Order")
    assert len(orders) == 20
    cache = next(n for n in snap.by_type("dict") if any(l == "['order-3']" for l, _ in n.referents))
    held = dict(cache.referents)
    assert held["['order-3']"].type == "__main__.Order"
    assert {label for label, _ in held["['order-3']"].referents} >= {".number", ".items", ".__class__"}
    line = held["['line']"]
    assert {label for label, node in line.referents} >= {".sku", ".qty"}
    assert "__main__.Order" in snap.report(limit=5)
    snap.export(tmp_path / "it.heapsnapshot", format="chrome")
    json.loads((tmp_path / "it.heapsnapshot").read_text())
