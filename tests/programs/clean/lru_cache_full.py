"""A bounded functools.lru_cache, full, evicting as new arguments come."""

import functools
import itertools


class Rendered:
    def __init__(self, page):
        self.page = page
        self.html = "<p>%s</p>" % page


@functools.lru_cache(maxsize=64)
def render(page):
    return Rendered(page)


pages = itertools.count()
WARMUP = 100


def request():
    render(f"/page/{next(pages)}")
