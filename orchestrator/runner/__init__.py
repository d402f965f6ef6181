"""The self-hosted runner: an HTTP API that starts runs through a backend."""
