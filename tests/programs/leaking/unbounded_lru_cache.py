"""functools.lru_cache(maxsize=None) on a function called with a new argument every request:
the cache declares no bound, so it keeps every result."""

import functools
import itertools


class Rendered:
    def __init__(self, page):
        self.page = page
        self.html = "<p>%s</p>" % page


@functools.lru_cache(maxsize=None)
def render(page):
    return Rendered(page)


pages = itertools.count()


def request():
    render(f"/page/{next(pages)}")
