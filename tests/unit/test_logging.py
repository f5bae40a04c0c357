"""Captures report what they did through Python's logging, never by printing."""

import logging

import heaplens


def test_captures_log_their_size_and_time_at_debug_level(caplog, capsys):
    with caplog.at_level(logging.DEBUG, logger="heaplens.capture"):
        heaplens.census()
        heaplens.snapshot()
    messages = [r.getMessage() for r in caplog.records if r.name == "heaplens.capture"]
    assert any(m.startswith("census: ") and " objects of " in m for m in messages)
    assert any(m.startswith("snapshot: ") and " references" in m for m in messages)
    assert capsys.readouterr() == ("", "")


def test_nothing_is_logged_at_the_default_level(caplog):
    with caplog.at_level(logging.WARNING, logger="heaplens.capture"):
        heaplens.census(gc_only=True)
    assert [r for r in caplog.records if r.name == "heaplens.capture"] == []


def test_a_capture_creates_no_logger_nobody_asked_for():
    import logging

    name = "heaplens.capture"
    if name in logging.Logger.manager.loggerDict:
        del logging.Logger.manager.loggerDict[name]
    heaplens.census()
    heaplens.snapshot()
    assert name not in logging.Logger.manager.loggerDict
