"""The pantau host agent: probes, the report wire schema, the disk spool, the sender, the loop.

This package must import nothing beyond the standard library, psutil and ``core``/``backup``,
so an agency server runs it from pantau's minimal base install.
"""
