"""Job tables: CSV files, table operations, the pull worker, arrays of workers, render."""
