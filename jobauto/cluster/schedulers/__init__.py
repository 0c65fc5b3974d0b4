"""Scheduler adapters: pure functions that build argv lists and parse output."""

from jobauto.cluster.schedulers.base import SchedulerAdapter, adapter_for, detect_argv, parse_detect

__all__ = ["SchedulerAdapter", "adapter_for", "detect_argv", "parse_detect"]
