"""The scheduler as a node service."""

from __future__ import annotations

from hotline.runtime import Runtime
from hotline.scheduler import JobScheduler, build_scheduler
from hotline.services import NodeOptions


class SchedulerService:
    name = "scheduler"
    role = "scheduler"
    order = 80

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.jobs: JobScheduler | None = None

    async def start(self) -> None:
        self.jobs = build_scheduler(self.runtime)
        self.jobs.scheduler.start()

    async def stop(self) -> None:
        if self.jobs is not None:
            # wait=False: running jobs are asyncio tasks; they finish or are cancelled
            # with the loop, and every job is idempotent.
            self.jobs.scheduler.shutdown(wait=False)

    def describe(self) -> str:
        count = len(self.jobs.job_ids) if self.jobs else 0
        return f"scheduler: {count} job(s)"


def create_service(runtime: Runtime, options: NodeOptions) -> SchedulerService:
    return SchedulerService(runtime)
