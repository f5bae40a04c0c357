"""A job runner that adds a handler to its logger per job, to tag the job's records with its
id, and forgets to remove it: the logger keeps every handler."""

import itertools
import logging


class JobContextHandler(logging.Handler):
    def __init__(self, job_id):
        super().__init__(logging.INFO)
        self.job_id = job_id
        self.tags = {"job": job_id}

    def emit(self, record):
        record.job = self.job_id


log = logging.getLogger("jobs")
log.setLevel(logging.INFO)
log.propagate = False
jobs = itertools.count()


def request():
    job_id = next(jobs)
    log.addHandler(JobContextHandler(job_id))
    log.info("job %d done", job_id)
