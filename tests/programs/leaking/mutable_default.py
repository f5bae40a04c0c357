"""A page-view tracker whose de-duplication set is a mutable default argument: meant to be per
session, it is one dict shared by every call, and it keeps every visit."""

import itertools


class PageVisit:
    def __init__(self, session_id, path):
        self.session_id = session_id
        self.path = path
        self.referrer = "https://example.com/"


def track(visit, history={}):  # noqa: B006 - the leak under test
    key = (visit.session_id, visit.path)
    first = key not in history
    history[key] = visit
    return first


sessions = itertools.count()


def request():
    return track(PageVisit(f"session-{next(sessions)}", "/products"))
