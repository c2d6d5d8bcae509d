"""Adapters to outside systems. ``coordinator`` never imports them; settings name them."""
