"""Adapters to outside systems. They implement ports of ``coordinator``; ``coordinator``
never imports them (``bootstrap`` and ``create_app`` load them by import path)."""
