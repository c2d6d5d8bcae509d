"""Adapters to outside systems. They implement ports of ``coordinator``; ``coordinator``
never imports them (``bootstrap`` loads them by import path)."""
