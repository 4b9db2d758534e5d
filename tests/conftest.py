"""Test-wide settings: property tests draw the same examples on every run (no unseeded randomness)."""

from hypothesis import settings

settings.register_profile("forecast", derandomize=True, print_blob=True)
settings.load_profile("forecast")
