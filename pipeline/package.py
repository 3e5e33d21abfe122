"""Build the transform Lambda's code: `build/lambda/pipeline/` and a deterministic zip of it.

    python -m pipeline.package          # builds build/lambda/ and prints its path

The template's function has `CodeUri: build/lambda` and `Handler: pipeline.handler.lambda_handler`:
the code directory (and the zip made from it) holds `pipeline/` at its root, so the handler's
import path is the same in Lambda as in the notebooks. Only the modules the handler needs are
copied; they must import nothing but the standard library and each other, which is checked here
so that a stray import fails the build rather than the first invocation
(`Runtime.ImportModuleError`).

The zip is deterministic (sorted entries, fixed timestamps and permissions), so the same source
gives the same bytes and the same CodeSha256: a redeploy without a change updates nothing.
"""

from __future__ import annotations

import ast
import io
import shutil
import sys
import zipfile
from pathlib import Path

from pipeline.paths import BUILD_LAMBDA

SOURCE = Path(__file__).resolve().parent
PACKAGE = "pipeline"
HANDLER_MODULES = ("__init__.py", "handler.py", "transform.py")
# The earliest time a zip entry can carry (MS-DOS date); any fixed value makes the zip stable.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = (
    0o644  # Lambda needs the files world-readable (Lambda developer guide, "python-package")
)


def _top_level_imports(source: str) -> set[str]:
    """Modules imported at module level (imports inside functions or `if __name__` are skipped)."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def check_imports(modules: tuple[str, ...] = HANDLER_MODULES, source: Path = SOURCE) -> None:
    """Raise if a shipped module imports something the Lambda zip does not contain."""
    shipped = {f"{PACKAGE}.{m.removesuffix('.py')}" for m in modules} | {PACKAGE}
    for module in modules:
        for name in sorted(_top_level_imports((source / module).read_text(encoding="utf-8"))):
            root = name.split(".")[0]
            if root == PACKAGE and name not in shipped:
                raise ImportError(f"{module} imports {name}, which is not in the Lambda zip")
            if root not in (PACKAGE, "__future__") and root not in sys.stdlib_module_names:
                raise ImportError(
                    f"{module} imports {name}: the handler path must use the standard library only"
                )


def build_lambda(dest: Path = BUILD_LAMBDA) -> Path:
    """Write `dest/pipeline/` with the handler's modules only; returns `dest` (the CodeUri)."""
    check_imports()
    target = dest / PACKAGE
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for module in HANDLER_MODULES:
        (target / module).write_bytes((SOURCE / module).read_bytes())
    return dest


def lambda_zip(code_dir: Path = BUILD_LAMBDA) -> bytes:
    """A deterministic zip of `code_dir` (files only, `__pycache__` left out), paths relative."""
    files = sorted(
        p
        for p in code_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(code_dir).as_posix(), date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100000 | FILE_MODE) << 16  # a regular file, rw-r--r--
            info.create_system = 3  # Unix, so the mode above is honoured
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def main() -> int:
    dest = build_lambda()
    print(dest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
