"""The analyses give the same answer whatever the number of threads they use
(``HEAPLENS_THREADS``) and whether their arrays sit on huge pages (``HEAPLENS_HUGE_PAGES``)."""

import heaplens


class Session:
    def __init__(self, n):
        self.token = f"sess-{n:08x}"
        self.user = {"id": n}


SESSIONS = {}


def _answers(before_path, after_path):
    """Everything a comparison and an analysis report, from fresh copies of two snapshots (each
    snapshot computes its parts once, so a copy already analysed would answer from memory)."""
    before, after = heaplens.load(before_path), heaplens.load(after_path)
    diff = after.diff(before, min_objects=10, limit=20)
    after.analyze()
    leaked = [o for o in after.by_type(f"{__name__}.Session")]
    return {
        "suspects": [(s.entry_type, str(s.holder_path), s.entries) for s in diff.suspects],
        "types": diff.types,
        "new_objects": diff.new_objects,
        "top_retainers": [(o.address, size) for o, size in after.top_retainers(20)],
        "retained": sorted(o.retained_size for o in leaked),
        "paths": sorted(str(o.path) for o in leaked[:50]),
    }


def test_the_answer_does_not_depend_on_threads_or_huge_pages(tmp_path, monkeypatch):
    # A million objects more, so that the comparison's sorts are of millions of addresses and
    # the analyses' work is worth a second thread. (Huge pages are asked for arrays of 32 MiB
    # and more, heaps of several million objects: the Rust tests fill such arrays.)
    ballast = list(range(10**9, 10**9 + 1_000_000))
    before_path, after_path = tmp_path / "before.hlsnap", tmp_path / "after.hlsnap"
    heaplens.snapshot().save(before_path)
    for n in range(3000):
        SESSIONS[f"k{n}"] = Session(n)
    heaplens.snapshot().save(after_path)
    try:
        answers = {}
        monkeypatch.delenv("HEAPLENS_NO_HUGE_PAGES", raising=False)
        for threads, huge in (("1", "0"), ("2", "1"), ("4", "1"), ("1", "1")):
            monkeypatch.setenv("HEAPLENS_THREADS", threads)
            monkeypatch.setenv("HEAPLENS_HUGE_PAGES", huge)
            answers[threads, huge] = _answers(before_path, after_path)
        first = answers["1", "0"]
        (suspect, *_) = first["suspects"]
        assert suspect[0] == f"{__name__}.Session"
        assert suspect[1].endswith(".__dict__['SESSIONS'] -> dict")
        assert suspect[2] == 3000
        assert len(first["retained"]) == 3000
        for setting, answer in answers.items():
            assert answer == first, f"HEAPLENS_THREADS, HEAPLENS_HUGE_PAGES = {setting}"
    finally:
        SESSIONS.clear()
        del ballast
