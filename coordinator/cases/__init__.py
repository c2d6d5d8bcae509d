"""The Case aggregate and its use cases."""
