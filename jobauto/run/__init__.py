"""jobmon: a run directory mirrored to the cluster and the cycle that drives it."""
