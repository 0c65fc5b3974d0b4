"""jobauto: run thousands of dependent batch jobs on a remote cluster from your workstation."""

__version__ = "0.1.0"
