"""A functools.lru_cache(maxsize=2048) still filling: every request renders a page it has not
seen, so the cache grows by one entry per request, but never past the bound it declares."""

import functools
import itertools


class Rendered:
    def __init__(self, page):
        self.page = page
        self.html = "<p>%s</p>" % page


@functools.lru_cache(maxsize=2048)
def render(page):
    return Rendered(page)


pages = itertools.count()


def request():
    render(f"/page/{next(pages)}")
