"""References: ``file.py::name``, ``file.py`` and app names from ``pyproject.toml``."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import refs
from orchestrator.errors import InvalidReference, OptionError, OrchestratorError

SINGLE = """\
    import orchestrator

    @orchestrator.function(requirements=["six"])
    def make_thumbnail(width):
        return width // 2
"""

TWO = """\
    import orchestrator

    THRESHOLD = 3

    def plain():
        pass

    class Thumbnails(orchestrator.App, machine_type="M"):
        requirements = ["pillow"]
        max_concurrency = 2

    @orchestrator.function
    def resize():
        pass
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with no ``pyproject.toml`` of its own, resolved like ``refs.resolve`` does."""
    return tmp_path.resolve()


@pytest.fixture
def clean_modules() -> Iterator[None]:
    """Remove the helper modules that user files import, so that each test imports its own copy."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def resolve_error(reference: str, cwd: Path) -> OrchestratorError:
    with pytest.raises(OrchestratorError) as caught:
        refs.resolve(reference, cwd)
    return caught.value


def test_resolve_file_and_name(project: Path) -> None:
    path = write(project, "two.py", TWO)

    declaration = refs.resolve("two.py::Thumbnails", project)

    assert declaration.name == "Thumbnails"
    assert declaration.path == path
    assert declaration.is_app
    assert declaration.serves
    assert declaration.app_name == "thumbnails"
    assert declaration.reference == f"{path}::Thumbnails"
    assert declaration.options.machine_type == ("M",)
    assert declaration.options.requirements == ("pillow",)
    assert declaration.app_table == {}


def test_resolve_function(project: Path) -> None:
    write(project, "two.py", TWO)

    declaration = refs.resolve("two.py::resize", project)

    assert declaration.name == "resize"
    assert not declaration.is_app
    assert not declaration.serves


def test_resolve_file_in_subfolder(project: Path) -> None:
    path = write(project, "apps/single.py", SINGLE)

    declaration = refs.resolve("apps/single.py::make_thumbnail", project)

    assert declaration.path == path
    assert declaration.target(10) == 5


@pytest.mark.parametrize("reference", ["single.py", "single.py::"])
def test_resolve_file_with_one_declaration(project: Path, reference: str) -> None:
    write(project, "single.py", SINGLE)

    declaration = refs.resolve(reference, project)

    assert declaration.name == "make_thumbnail"
    assert declaration.app_name == "make-thumbnail"
    assert declaration.options.requirements == ("six",)


def test_resolve_file_with_two_declarations(project: Path) -> None:
    path = write(project, "two.py", TWO)

    error = resolve_error("two.py", project)

    assert isinstance(error, InvalidReference)
    assert error.message == (
        f"{path} declares 2 apps or functions (Thumbnails, resize); name one as {path}::NAME"
    )
    assert error.exit_code == 2


@pytest.mark.parametrize("reference", ["missing.py", "missing.py::Thumbnails", "apps/missing.py"])
def test_resolve_missing_file(project: Path, reference: str) -> None:
    error = resolve_error(reference, project)

    file_part = reference.partition("::")[0]
    assert isinstance(error, InvalidReference)
    assert error.message == f"file not found: {project / file_part}; check the path in the reference"
    assert error.exit_code == 2


def test_resolve_missing_name_closest(project: Path) -> None:
    path = write(project, "two.py", TWO)

    error = resolve_error("two.py::resise", project)

    assert isinstance(error, InvalidReference)
    assert error.message == (
        f"{path} has no app or function named 'resise'; did you mean 'resize'? "
        "Declared: Thumbnails, resize"
    )
    assert error.exit_code == 2


def test_resolve_missing_name_no_suggestion(project: Path) -> None:
    path = write(project, "two.py", TWO)

    error = resolve_error("two.py::zzzz", project)

    assert isinstance(error, InvalidReference)
    assert error.message == f"{path} has no app or function named 'zzzz'. Declared: Thumbnails, resize"
    assert error.exit_code == 2


@pytest.mark.parametrize(
    ("name", "kind"),
    [("plain", "a function"), ("THRESHOLD", "an int"), ("orchestrator", "a module")],
)
def test_resolve_name_not_declaration(project: Path, name: str, kind: str) -> None:
    path = write(project, "two.py", TWO)

    error = resolve_error(f"two.py::{name}", project)

    assert isinstance(error, InvalidReference)
    assert error.message == (
        f"{path}::{name} is {kind}, not an orchestrator.App subclass or an "
        "@orchestrator.function; reference one of: Thumbnails, resize"
    )
    assert error.exit_code == 2


NO_DECLARATIONS = """\
    import orchestrator

    LIMIT = 3

    def helper():
        pass
"""


def test_resolve_file_without_declarations(project: Path) -> None:
    path = write(project, "plain.py", NO_DECLARATIONS)

    error = resolve_error("plain.py", project)

    assert isinstance(error, InvalidReference)
    assert error.message == (
        f"{path} declares no apps or functions; subclass orchestrator.App or "
        "decorate a function with @orchestrator.function"
    )
    assert error.exit_code == 2


def test_resolve_name_in_file_without_declarations(project: Path) -> None:
    path = write(project, "plain.py", NO_DECLARATIONS)

    missing = resolve_error("plain.py::run", project)
    not_declaration = resolve_error("plain.py::LIMIT", project)

    assert missing.message == f"{path} has no app or function named 'run'. Declared: none"
    assert not_declaration.message == (
        f"{path}::LIMIT is an int, not an orchestrator.App subclass or an "
        "@orchestrator.function; reference one of: none declared"
    )


def test_resolve_syntax_error(project: Path) -> None:
    path = write(project, "broken.py", """\
        import orchestrator

        x = = 1
    """)

    error = resolve_error("broken.py", project)

    assert isinstance(error, InvalidReference)
    assert error.message == f"syntax error in {path}, line 3: invalid syntax"
    assert error.exit_code == 2


def test_resolve_missing_package(project: Path) -> None:
    path = write(project, "heavy.py", """\
        import orchestrator
        import package_that_is_not_installed

        @orchestrator.function
        def run():
            pass
    """)

    error = resolve_error("heavy.py::run", project)

    assert isinstance(error, InvalidReference)
    assert error.message == (
        f"{path} imports 'package_that_is_not_installed' at module level, but it is not installed "
        "on this machine. Declarations are read on the host, so import "
        "'package_that_is_not_installed' inside setup(), an endpoint or the function body "
        "instead; keep it in 'requirements' so the image has it."
    )
    assert error.exit_code == 2


def test_resolve_exception_at_import(project: Path) -> None:
    path = write(project, "raises.py", """\
        import orchestrator

        LIMITS = {}
        DEFAULT = LIMITS["default"]
    """)

    error = resolve_error("raises.py", project)

    assert isinstance(error, InvalidReference)
    assert error.message == f"importing {path}, line 4 raised KeyError: 'default'"
    assert error.exit_code == 2


def test_resolve_invalid_option_in_file(project: Path) -> None:
    write(project, "bad.py", """\
        import orchestrator

        @orchestrator.function(max_concurrency=0)
        def run():
            pass
    """)

    error = resolve_error("bad.py", project)

    assert isinstance(error, OptionError)
    assert error.message == "function run: option 'max_concurrency' must be a positive integer, got 0"
    assert error.exit_code == 2


def test_resolve_restores_sys_path(project: Path) -> None:
    write(project, "single.py", SINGLE)
    write(project, "raises.py", "raise RuntimeError('boom')\n")
    before = list(sys.path)

    refs.resolve("single.py", project)
    resolve_error("raises.py", project)

    assert sys.path == before


def test_resolve_imports_sibling_module(project: Path, clean_modules: None) -> None:
    write(project, "sibling_helpers_refs.py", "FACTOR = 3\n")
    write(project, "uses_helper.py", """\
        import orchestrator
        from sibling_helpers_refs import FACTOR

        @orchestrator.function
        def scale(value):
            return value * FACTOR
    """)

    declaration = refs.resolve("uses_helper.py", project)

    assert declaration.target(2) == 6


def test_resolve_ignores_imported_app(project: Path, clean_modules: None) -> None:
    write(project, "shared_apps_refs.py", """\
        import orchestrator

        class SharedBase(orchestrator.App):
            pass
    """)
    write(project, "main.py", """\
        from shared_apps_refs import SharedBase

        class Thumbnails(SharedBase):
            pass
    """)

    declaration = refs.resolve("main.py", project)

    assert declaration.name == "Thumbnails"


SHARED_FUNCTION = """\
    import orchestrator

    @orchestrator.function
    def shared_resize(width):
        return width // 2
"""


def test_resolve_ignores_imported_function(project: Path, clean_modules: None) -> None:
    write(project, "shared_functions_refs.py", SHARED_FUNCTION)
    write(project, "main.py", """\
        import orchestrator
        from shared_functions_refs import shared_resize

        @orchestrator.function
        def thumbnail(width):
            return shared_resize(width)
    """)

    declaration = refs.resolve("main.py", project)

    assert declaration.name == "thumbnail"
    assert declaration.target(10) == 5


def test_resolve_only_imported_function(project: Path, clean_modules: None) -> None:
    write(project, "shared_functions_refs.py", SHARED_FUNCTION)
    path = write(project, "reexport.py", "from shared_functions_refs import shared_resize\n")

    error = resolve_error("reexport.py", project)

    assert isinstance(error, InvalidReference)
    assert error.message == (
        f"{path} declares no apps or functions; subclass orchestrator.App or "
        "decorate a function with @orchestrator.function"
    )


def test_resolve_imported_function_by_name(project: Path, clean_modules: None) -> None:
    write(project, "shared_functions_refs.py", SHARED_FUNCTION)
    path = write(project, "reexport.py", "from shared_functions_refs import shared_resize\n")

    error = resolve_error("reexport.py::shared_resize", project)

    assert isinstance(error, InvalidReference)
    assert error.message == (
        f"{path}::shared_resize is imported from module 'shared_functions_refs'; "
        "reference the file that declares it"
    )


def test_resolve_file_with_dataclass(project: Path) -> None:
    write(project, "typed.py", """\
        from __future__ import annotations

        import dataclasses

        import orchestrator

        @dataclasses.dataclass
        class Item:
            name: str

        @orchestrator.function
        def run():
            return Item("a")
    """)

    declaration = refs.resolve("typed.py", project)

    assert declaration.name == "run"
    assert declaration.target().name == "a"
    assert sys.modules[declaration.target.func.__module__].Item is type(declaration.target())


PYPROJECT = """\
    [tool.orchestrator]
    base_image = "python:{python_version}-bookworm"

    [tool.orchestrator.apps.thumbs]
    ref = "apps/two.py::Thumbnails"
    machine_type = ["L", "M"]
    max_concurrency = 8
    env = {MODE = "fast"}

    [tool.orchestrator.apps.single]
    ref = "apps/single.py"

    [tool.orchestrator.apps.noref]
    max_concurrency = 8
"""


def test_resolve_app_name(project: Path) -> None:
    pyproject = write(project, "pyproject.toml", PYPROJECT)
    path = write(project, "apps/two.py", TWO)

    declaration = refs.resolve("thumbs", project)

    assert declaration.name == "Thumbnails"
    assert declaration.path == path
    assert declaration.app_name == "thumbs"
    assert declaration.project.path == pyproject
    assert declaration.app_table["ref"] == "apps/two.py::Thumbnails"


def test_resolve_app_table_overrides_options(project: Path) -> None:
    write(project, "pyproject.toml", PYPROJECT)
    write(project, "apps/two.py", TWO)

    options = refs.resolve("thumbs", project).options

    assert options.machine_type == ("L", "M")
    assert options.max_concurrency == 8
    assert options.env == {"MODE": "fast"}
    assert options.requirements == ("pillow",)


def test_resolve_app_name_from_subfolder(project: Path) -> None:
    write(project, "pyproject.toml", PYPROJECT)
    write(project, "apps/single.py", SINGLE)
    subfolder = project / "apps" / "deeper"
    subfolder.mkdir()

    declaration = refs.resolve("single", subfolder)

    assert declaration.name == "make_thumbnail"
    assert declaration.app_name == "single"
    assert declaration.options.max_concurrency == 1


def test_resolve_app_table_invalid_option(project: Path) -> None:
    write(project, "pyproject.toml", """\
        [tool.orchestrator.apps.thumbs]
        ref = "two.py::Thumbnails"
        max_concurrency = 0
    """)
    write(project, "two.py", TWO)

    error = resolve_error("thumbs", project)

    assert isinstance(error, OptionError)
    assert error.message == (
        "[tool.orchestrator.apps] entry for two.py::Thumbnails: "
        "option 'max_concurrency' must be a positive integer, got 0"
    )


def test_resolve_unknown_app_name(project: Path) -> None:
    pyproject = write(project, "pyproject.toml", PYPROJECT)

    error = resolve_error("thumbz", project)

    assert isinstance(error, InvalidReference)
    assert error.message == (
        f"invalid reference 'thumbz': not a .py file and not an app in "
        f"[tool.orchestrator.apps] of {pyproject} (apps: thumbs, single, noref)"
    )
    assert error.exit_code == 2


def test_resolve_app_name_without_project(project: Path) -> None:
    error = resolve_error("thumbs", project)

    assert isinstance(error, InvalidReference)
    assert error.message == (
        "invalid reference 'thumbs': expected path/to/file.py::name, or an app name "
        "from [tool.orchestrator.apps] in pyproject.toml (none found above this folder)"
    )
    assert error.exit_code == 2


def test_resolve_app_table_without_ref(project: Path) -> None:
    pyproject = write(project, "pyproject.toml", PYPROJECT)

    error = resolve_error("noref", project)

    assert isinstance(error, InvalidReference)
    assert error.message == (
        f"[tool.orchestrator.apps.noref] in {pyproject} has no 'ref'; "
        'add ref = "path/to/file.py::Name"'
    )
    assert error.exit_code == 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ThumbnailApp", "thumbnail-app"),
        ("make_thumbnail", "make-thumbnail"),
        ("Thumbs", "thumbs"),
        ("resize_image_v2", "resize-image-v2"),
        ("__", "app"),
    ],
)
def test_default_app_name(name: str, expected: str) -> None:
    assert refs.default_app_name(name) == expected
