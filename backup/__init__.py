"""Backups: restic wrapper, backup policy evaluation, agent-side runner, NOC-side verifier.

Empty until the backup issue lands; the inventory already parses backup policies (noc.model).
"""
