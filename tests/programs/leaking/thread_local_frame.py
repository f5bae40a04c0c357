"""An audit thread that receives events through a queue and keeps every one in a local list of
its long-running loop: nothing global holds them, only the running frame."""

import itertools
import queue
import threading


class AuditEvent:
    def __init__(self, number):
        self.number = number
        self.detail = {"user": number % 13, "action": "login"}


INBOX = queue.Queue()


def audit():
    seen = []  # grows for as long as the thread runs
    while True:
        event = INBOX.get()
        seen.append(event)
        INBOX.task_done()


threading.Thread(target=audit, name="auditor", daemon=True).start()
numbers = itertools.count()


def request():
    INBOX.put(AuditEvent(next(numbers)))
    INBOX.join()  # the request returns once the event is recorded
