"""The only package that talks to SQLite: a run's state (run.py) and job tables (table.py),
over one connection and transaction discipline (sqlite.py)."""

from jobauto.store.run import (
    ADDED_COLUMNS,
    JOB_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    Store,
    open_run_store,
)
from jobauto.store.table import TableStore  # noqa: E402

__all__ = ["ADDED_COLUMNS", "JOB_COLUMNS", "SCHEMA", "SCHEMA_VERSION", "Store", "TableStore",
           "open_run_store"]
