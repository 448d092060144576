"""Secret references: credentials are named in configuration (``env:VAR``, ``secret:NAME``), never written inline."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SecretRef:
    """A credential named, never written inline: ``env:VAR`` or ``secret:NAME`` (secrets file)."""

    kind: str  # "env" | "secret"
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"
