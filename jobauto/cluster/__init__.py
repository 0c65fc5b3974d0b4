"""Reaching the cluster: transports, scheduler adapters, and the one place that joins them."""
