"""pipeline.package: the Lambda code directory and its deterministic zip."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import pytest
from support.cli import run_module

from pipeline.package import HANDLER_MODULES, build_lambda, check_imports, lambda_zip
from pipeline.paths import BUILD_LAMBDA, ROOT


def test_the_code_directory_holds_only_the_handler_modules(tmp_path):
    # given a stale file from an earlier build
    stale = tmp_path / "lambda" / "pipeline" / "certificates.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("import cryptography\n")
    # when the code directory is built
    code_dir = build_lambda(tmp_path / "lambda")
    # then pipeline/ at its root holds exactly the handler's modules, copied unchanged
    assert sorted(p.name for p in (code_dir / "pipeline").iterdir()) == sorted(HANDLER_MODULES)
    for name in HANDLER_MODULES:
        assert (code_dir / "pipeline" / name).read_bytes() == (
            ROOT / "pipeline" / name
        ).read_bytes()


def test_the_zip_is_deterministic_with_pipeline_at_its_root(tmp_path):
    # given the code directory built twice, the second time later and with a __pycache__
    first = lambda_zip(build_lambda(tmp_path / "a"))
    second_dir = build_lambda(tmp_path / "b")
    (second_dir / "pipeline" / "__pycache__").mkdir()
    (second_dir / "pipeline" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"x")
    second = lambda_zip(second_dir)
    # then the zips are byte-identical, list pipeline/<module> only, readable by everyone
    assert first == second
    infos = zipfile.ZipFile(io.BytesIO(first)).infolist()
    assert [i.filename for i in infos] == sorted(f"pipeline/{m}" for m in HANDLER_MODULES)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {(i.external_attr >> 16) & 0o777 for i in infos} == {0o644}


def test_the_zip_runs_the_handler_as_pipeline_handler_lambda_handler(tmp_path):
    # given the zip extracted where a Lambda would extract it
    data = lambda_zip(build_lambda(tmp_path / "build"))
    task = tmp_path / "task"
    zipfile.ZipFile(io.BytesIO(data)).extractall(task)
    # when the configured handler path is imported from there alone
    code = (
        "import importlib; m = importlib.import_module('pipeline.handler'); "
        "print(m.lambda_handler({'records': []}, None))"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            f"import sys; sys.path.insert(0, {str(task)!r}); {code}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then it answers
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "{'records': []}"


def test_a_shipped_module_importing_outside_the_zip_fails_the_build(tmp_path):
    # given a copy of the package whose transform imports a notebook-only module and pandas
    for name in HANDLER_MODULES:
        (tmp_path / name).write_bytes((ROOT / "pipeline" / name).read_bytes())
    transform = tmp_path / "transform.py"
    # then each stray import is named
    transform.write_text("from pipeline.paths import ROOT\n")
    with pytest.raises(ImportError, match="pipeline.paths, which is not in the Lambda zip"):
        check_imports(source=tmp_path)
    transform.write_text("import pandas\n")
    with pytest.raises(ImportError, match="standard library only"):
        check_imports(source=tmp_path)


def test_python_m_pipeline_package_builds_and_prints_the_path():
    proc = run_module("pipeline.package", check=True)
    assert proc.stdout.strip() == str(BUILD_LAMBDA)
    assert (BUILD_LAMBDA / "pipeline" / "handler.py").is_file()
