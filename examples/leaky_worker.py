"""A job worker that leaks, and knows nothing of heaplens: the example for ``heaplens run``.

    heaplens run examples/leaky_worker.py

It processes jobs for a few seconds. Each job's result is memoised in a module-level dict keyed
by the job id, which never repeats, so the memo grows forever; a bounded LRU cache and a
per-batch scratch list look like growth at first but are not leaks. At exit ``heaplens run``
prints the types that grew steadily and the container holding them, and leaves the samples in a
history file (``heaplens history heaplens-leaky_worker-<pid>.db``).
"""

import functools
import itertools
import sys
import time


class JobResult:
    def __init__(self, job_id, payload):
        self.job_id = job_id
        self.rows = [payload] * 4
        self.summary = {"rows": 4, "job": job_id}


# The leak: results memoised by a key that never repeats.
_RESULTS = {}


@functools.lru_cache(maxsize=256)
def parse_config(name):
    return {"name": name, "retries": 3}


def run_job(job_id):
    parse_config(f"queue-{job_id % 512}")
    result = _RESULTS.get(job_id)
    if result is None:
        result = _RESULTS[job_id] = JobResult(job_id, f"payload-{job_id}")
    return result


def main(seconds):
    ids = itertools.count()
    deadline = time.monotonic() + seconds
    batches = 0
    while time.monotonic() < deadline:
        scratch = [run_job(next(ids)) for _ in range(500)]
        del scratch
        batches += 1
        time.sleep(0.02)
    print(f"processed {batches * 500:,} jobs in {batches} batches")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
