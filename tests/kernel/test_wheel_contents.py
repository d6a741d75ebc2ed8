"""The kernel wheel carries no test code: the fake model server and the pytest plugin ship in aegis-testkit.

Builds both wheels with ``uv build`` (uv_build backend, no network needed once the backend is cached) and reads
them as zip files, as a user's ``pip install`` would see them.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def build_wheel(folder: str, out: Path) -> zipfile.ZipFile:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    subprocess.run([uv, "build", "--wheel", str(ROOT / folder), "-o", str(out)], check=True, capture_output=True,
                   timeout=300)
    (wheel,) = out.glob(f"aegis_{folder}-*.whl")
    return zipfile.ZipFile(wheel)


def entry_points(wheel: zipfile.ZipFile) -> configparser.ConfigParser:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(wheel.read(name).decode())
    return parser


def test_kernel_wheel_has_no_fake_model_server_and_no_pytest_plugin(tmp_path: Path) -> None:
    wheel = build_wheel("kernel", tmp_path)
    names = wheel.namelist()
    assert "aegis_kernel/sessions.py" in names  # the right wheel, really built
    assert not [n for n in names if "fakemodel" in n]
    assert "pytest11" not in entry_points(wheel).sections()
    assert "import pytest" not in wheel.read("aegis_kernel/testing.py").decode()


def test_testkit_wheel_provides_the_fake_model_server_and_the_pytest_plugin(tmp_path: Path) -> None:
    wheel = build_wheel("testkit", tmp_path)
    assert "aegis_testkit/fakemodel.py" in wheel.namelist()
    plugin = dict(entry_points(wheel)["pytest11"])
    assert plugin == {"aegis": "aegis_testkit.pytest_plugin"}
    source = wheel.read("aegis_testkit/pytest_plugin.py").decode()
    assert "async def kernel(" in source


def test_kernel_testing_helpers_import_without_pytest() -> None:
    """``aegis_kernel.testing`` (FakeDriver and friends) is plain code: importing it loads no pytest."""
    code = "import sys, aegis_kernel.testing; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"
