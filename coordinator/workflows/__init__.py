"""Pilot workflows: definitions as data, validated on load, executed by ``engine``."""
