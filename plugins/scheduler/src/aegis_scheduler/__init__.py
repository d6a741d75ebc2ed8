"""aegis-scheduler: schedules that fire workflows (see :mod:`aegis_scheduler.runtime` and docs/scheduler.md)."""
