"""Dropping root: the agent measures the host as an unprivileged user."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

from core.errors import PantauError


def drop_to(user: str, own: list[Path]) -> None:
    """Become ``user`` (and its primary group) after handing it ``own`` paths; no-op unless root."""
    if os.geteuid() != 0:
        return
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise PantauError(f"user {user!r} does not exist; create it (useradd --system {user}) "
                          "or pick another with --user") from None
    for path in own:
        for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
            os.chown(p, pw.pw_uid, pw.pw_gid)
    os.setgroups([g.gr_gid for g in grp.getgrall() if user in g.gr_mem])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    if os.geteuid() == 0:
        raise PantauError("could not drop root privileges")
