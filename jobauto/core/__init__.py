"""The shared core: job model, errors, the dependency engine, settings."""
