"""Crafted snapshot files: small files whose zstd body decodes to gigabytes (one string of
3.5 GB, 600 million nodes) are refused with a SnapshotFormatError, by `heaplens.load()` and by
`heaplens report`, without aborting the process that reads them (a failed allocation in Rust
aborts) and without taking more memory than the process can get.

The bodies are compressed by hand as zstd does runs (RLE blocks), so these tests need no zstd
module, which CPython has only from 3.14."""

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

import heaplens

DATA = Path(__file__).parent.parent / "data"

#: The largest block zstd allows, and the window that holds it (log 17).
BLOCK = 128 * 1024


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def header_of_a_real_file():
    """Everything before the zstd frame of the format-1 golden file: a valid, checksummed header."""
    data = (DATA / "golden-v1.hlsnap").read_bytes()
    fields = int.from_bytes(data[12:16], "little")
    return data[: 16 + fields + 4]


def block(kind, size, last=False):
    value = (1 if last else 0) | kind << 1 | size << 3
    return value.to_bytes(3, "little")


def crafted(path, prefix, zero_bytes):
    """A snapshot file whose body is `prefix` and then `zero_bytes` zeros, in 4 bytes per
    128 KiB. The content checksum at the end is not computed (the reader must refuse the file
    before it gets there)."""
    frame = bytearray(b"\x28\xb5\x2f\xfd")
    frame.append(0x04)  # frame header: content checksum, no content size
    frame.append(7 << 3)  # window: 2^(10 + 7) = 128 KiB
    for start in range(0, len(prefix), BLOCK):
        piece = prefix[start : start + BLOCK]
        frame += block(0, len(piece)) + piece
    runs = zero_bytes // BLOCK
    for i in range(runs):
        frame += block(1, BLOCK, last=i == runs - 1) + b"\x00"
    frame += b"\x00\x00\x00\x00"
    path.write_bytes(header_of_a_real_file() + bytes(frame))
    return path


def one_huge_string(path):
    # One string of 3.5 GB, as a crafted file of 118 KB declared it.
    return crafted(path, varint(1) + varint(3_500_000_000), 3_500_000_000)


def six_hundred_million_nodes(path):
    # No strings, one type, then 600 million nodes at address 0, root 0: 4.8 GB of body.
    prefix = varint(0) + varint(1) + varint(0) * 3 + b"\x00" + varint(600_000_000) + varint(0)
    return crafted(path, prefix, 600_000_000 * 8)


def limited_to(gigabytes):
    """Runs the child with its address space limited, as `ulimit -v` does: an allocation
    past it fails, and in Rust a failed allocation aborts the process."""

    def limit():
        size = gigabytes << 30
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return limit


LOAD = """
import resource, sys, heaplens
try:
    heaplens.load(sys.argv[1])
except heaplens.SnapshotFormatError as e:
    print("refused:", e)
else:
    print("loaded")
print("peak KiB:", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def load_in_a_child(path, limit=limited_to(2)):
    """`heaplens.load(path)` in a process limited to 2 GiB (by default): what it printed."""
    run = subprocess.run(
        [sys.executable, "-c", LOAD, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit,
    )
    assert run.returncode == 0, run.stderr
    assert "memory allocation" not in run.stderr
    return run.stdout


def test_a_file_with_a_string_of_gigabytes_is_refused_by_its_length(tmp_path):
    path = one_huge_string(tmp_path / "string.hlsnap")
    assert path.stat().st_size < 150_000
    printed = load_in_a_child(path)
    assert printed.startswith("refused:"), printed
    assert "string.hlsnap" in printed
    assert "string 1 is 3500000000 bytes long, more than the 16384" in printed


def test_a_file_declaring_more_nodes_than_memory_holds_is_refused_not_an_abort(tmp_path):
    path = six_hundred_million_nodes(tmp_path / "nodes.hlsnap")
    assert path.stat().st_size < 200_000
    printed = load_in_a_child(path)
    assert printed.startswith("refused:"), printed
    assert "it declares 600000000 nodes" in printed
    assert "more than the" in printed and "this process can get" in printed

    # The command line says so on one line, with its status for bad input, not SIGABRT.
    report = subprocess.run(
        [sys.executable, "-m", "heaplens", "report", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limited_to(2),
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert report.returncode == 2, report.stderr
    assert "memory allocation" not in report.stderr
    assert "600000000 nodes" in report.stderr
    assert "Traceback" not in report.stderr


def test_a_small_file_never_takes_gigabytes_even_where_memory_is_free(tmp_path):
    # Without a limit the machine may have the 11 GB these 600 million nodes need; a 146 KB
    # file still may not take them: its arrays may not pass 10,000 times the bytes read from
    # it (1.4 GB here; heaplens' own files stay under about 1,000 times).
    path = six_hundred_million_nodes(tmp_path / "nodes.hlsnap")
    printed = load_in_a_child(path, limit=None)
    assert printed.startswith("refused:"), printed
    assert "over 10000 times their size" in printed or "this process can get" in printed
    peak = int(printed.rsplit("peak KiB:", 1)[1]) * 1024
    bound = 10_000 * path.stat().st_size + (200 << 20)
    assert peak < bound, f"peak RSS {peak} bytes, more than {bound}"
