"""A report service that caches every query's result in a module-global dict keyed by the
query text: each request asks for a new date range, so the cache never stops growing."""

import datetime
import itertools


class QueryResult:
    def __init__(self, sql, rows):
        self.sql = sql
        self.rows = rows
        self.fetched_at = datetime.datetime(2024, 1, 1)


RESULTS = {}
days = itertools.count()


def run_query(sql, day):
    return [(day, region, day * 10 + i) for i, region in enumerate(("north", "south", "east"))]


def request():
    day = next(days)
    sql = f"SELECT region, total FROM sales WHERE day = {day}"
    result = RESULTS.get(sql)
    if result is None:
        result = RESULTS[sql] = QueryResult(sql, run_query(sql, day))
    return sum(total for _, _, total in result.rows)
