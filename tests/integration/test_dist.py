"""The NOC's package directory (``noc serve --dist-dir``), fetched by a real pip from a real NOC process.

pip reads ``/dist/`` as a ``--find-links`` page, checks each file's SHA-256 from it, and installs
nothing else (``--no-index``); names that try to leave the directory, hidden files, symlinks out
of it and files that are not packages are never served.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _make_wheel(where: Path, name: str, version: str) -> Path:
    """A small real wheel, written here (no package index is asked for anything)."""
    tag, info = f"{name}-{version}", f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": b"WHO = 'pantau'\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},"
                     f"{len(d)}\n" for p, d in files.items()) + f"{info}/RECORD,,\n"
    path = where / f"{tag}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, d in {**files, f"{info}/RECORD": record.encode()}.items():
            z.writestr(p, d)
    return path


def test_pip_installs_from_the_nocs_package_directory_and_nothing_else_is_served(noc_factory: Any,
                                                                                  world_tmp: Path) -> None:
    dist = world_tmp / "dist"
    dist.mkdir()
    wheel = _make_wheel(dist, "pantau_probe", "1.0")
    (dist / ".hidden.whl").write_bytes(b"x")
    (dist / "notes.txt").write_text("not a package")
    (world_tmp / "secret.whl").write_text("outside")
    (dist / "outside.whl").symlink_to(world_tmp / "secret.whl")
    (dist / "sub").mkdir()
    (dist / "sub" / "deep.whl").write_bytes(b"x")

    noc = noc_factory(extra=["--dist-dir", str(dist)])
    base = f"http://127.0.0.1:{noc.port}/dist/"
    status, page = _get(base)
    assert status == 200
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert f'href="{wheel.name}#sha256={sha}"' in page.decode()
    for hidden in (".hidden.whl", "notes.txt", "outside.whl", "secret.whl", "deep.whl"):
        assert hidden not in page.decode()
    for bad in (".hidden.whl", "notes.txt", "outside.whl", "sub/deep.whl", "..%2Fsecret.whl", "%2e%2e%2fcity.toml",
                "..%2F..%2Fnoc0%2Fcity.toml"):
        status, body = _get(base + bad)
        assert status == 404, (bad, status, body[:200])
    status, body = _get(base + wheel.name)
    assert status == 200 and body == wheel.read_bytes()

    target = world_tmp / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", base,
                          "--target", str(target), "pantau_probe"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (target / "pantau_probe" / "__init__.py").read_text() == "WHO = 'pantau'\n"
    assert f"package {wheel.name} sent to 127.0.0.1" in noc.log.read_text()
