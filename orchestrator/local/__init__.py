"""Runs on the local Docker engine: an app container behind a sidecar container."""
