"""Shared foundations every pantau layer may use: the exception tree and unit parsing."""
