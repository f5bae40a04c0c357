"""A pool of sqlite3 connections handed out and returned per request."""

import queue
import sqlite3

POOL = queue.Queue(maxsize=4)
for _ in range(4):
    POOL.put(sqlite3.connect(":memory:", check_same_thread=False))


def request():
    connection = POOL.get()
    try:
        return connection.execute("select 1 + 1").fetchone()
    finally:
        POOL.put(connection)
