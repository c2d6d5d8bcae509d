"""The HTTP API: the only home of FastAPI."""
