"""Transports run argv lists on the cluster and move files; only they execute anything."""

from jobauto.cluster.transport.base import (
    Transport,
    batch_argv,
    batch_script,
    glob_regex,
    parse_batch,
)

__all__ = ["Transport", "batch_argv", "batch_script", "glob_regex", "parse_batch"]
