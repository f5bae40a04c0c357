"""A client that parses distinct URLs: urllib.parse keeps a bounded cache of recent splits."""

import itertools
import urllib.parse

ids = itertools.count()
WARMUP = 300


def request():
    n = next(ids)
    url = f"https://api.example.com/v1/items/{n}?page={n % 7}&sort=asc"
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.parse_qs(parts.query)
