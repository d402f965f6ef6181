"""Backends start a run's containers: on the local engine, or on Docker Swarm."""
