"""Settings and app files that cannot be loaded: one line on stderr and exit code 2."""

from __future__ import annotations

import pytest

DECLARATIONS = """
import orchestrator


@orchestrator.function
def resize():
    return 1


class Thumbnails(orchestrator.App):
    pass


limit = 3
"""

# Each case: app.py source (None: no file), ORCH_APP_NAME, extra settings, and
# the expected stderr line, where {dir} is the folder of app.py.
LOADING_CASES = {
    "missing-file": (
        None,
        "resize",
        {},
        "error: app file {dir}/app.py not found; set ORCH_APP_FILE to the path of the "
        "app's Python file inside the image",
    ),
    "missing-name": (
        DECLARATIONS,
        "predict",
        {},
        "error: {dir}/app.py has no declaration named 'predict'; declarations in the file: "
        "Thumbnails, resize. Set ORCH_APP_NAME to one of them",
    ),
    "misspelled-name": (
        DECLARATIONS,
        "thumbnail",
        {},
        "error: {dir}/app.py has no declaration named 'thumbnail'; did you mean 'Thumbnails'?; "
        "declarations in the file: Thumbnails, resize. Set ORCH_APP_NAME to one of them",
    ),
    "no-declarations": (
        "x = 1\n",
        "x2",
        {},
        "error: {dir}/app.py has no declaration named 'x2'; the file declares no App subclass "
        "or @function",
    ),
    "not-a-declaration": (
        DECLARATIONS,
        "limit",
        {},
        "error: 'limit' in {dir}/app.py is a value of type int, not an App subclass or a "
        "@function; set ORCH_APP_NAME to a declaration, or declare it with "
        "@orchestrator.function or as a subclass of orchestrator.App",
    ),
    "syntax-error": (
        "import orchestrator\n\nvalues = [1, 2\n",
        "resize",
        {},
        "error: syntax error in {dir}/app.py line 3: '[' was never closed; fix the file and "
        "run it again",
    ),
    "missing-package": (
        "import orchestrator\nimport numpy_not_installed.linalg\n",
        "resize",
        {},
        "error: {dir}/app.py line 2 imports 'numpy_not_installed', which is missing from the "
        "image's requirements; add the package that provides it to the declaration's "
        "requirements, or to local_python_modules if it is a local module",
    ),
    "missing-submodule": (
        "import orchestrator\nimport json.tables\n",
        "resize",
        {},
        "error: {dir}/app.py line 2 imports 'json.tables', but the installed package 'json' has "
        "no such module; check the module name against the version pinned in the "
        "declaration's requirements",
    ),
    "import-error": (
        "import orchestrator\nfrom helper import resize_image\n",
        "resize",
        {},
        "error: import failed at {dir}/app.py line 2: cannot import name 'resize_image' from "
        "'helper' ({dir}/helper.py); check the name against the version pinned in the "
        "declaration's requirements",
    ),
    "app-in-call-mode": (
        DECLARATIONS,
        "Thumbnails",
        {"ORCH_MODE": "call"},
        "error: 'Thumbnails' is an App, but ORCH_MODE=call runs only a @function; serve the "
        "App with ORCH_MODE=serve",
    ),
    "unserved-function": (
        DECLARATIONS,
        "resize",
        {},
        "error: function 'resize' is not served over HTTP; declare it with "
        "@function(serve=True), or run it once with ORCH_MODE=call",
    ),
    "reserved-path": (
        "import orchestrator\n\n"
        "class Api(orchestrator.App):\n"
        "    @orchestrator.endpoint('/health')\n"
        "    def health(self):\n"
        "        return 'ok'\n",
        "Api",
        {},
        "error: app Api: endpoint path /health is reserved by the runtime (reserved: /health, "
        "/openapi.json, /docs and /_orch/*); choose another path",
    ),
    "duplicate-path": (
        "import orchestrator\n\n"
        "class Api(orchestrator.App):\n"
        "    @orchestrator.endpoint('/run')\n"
        "    def first(self):\n"
        "        return 1\n\n"
        "    @orchestrator.endpoint('/run')\n"
        "    def second(self):\n"
        "        return 2\n",
        "Api",
        {},
        "error: app Api: path /run is declared by both first() and second()",
    ),
    "positional-only": (
        "import orchestrator\n\n"
        "@orchestrator.function(serve=True)\n"
        "def scale(value, /):\n"
        "    return value\n",
        "scale",
        {},
        "error: function scale: parameter 'value' of scale() is positional-only, but JSON "
        "arguments are passed by keyword; remove the '/' from its signature",
    ),
    "missing-app-file-setting": (
        DECLARATIONS,
        "resize",
        {"ORCH_APP_FILE": ""},
        "error: ORCH_APP_FILE is not set; set it to the path of the app's Python file",
    ),
    "missing-app-name-setting": (
        DECLARATIONS,
        "",
        {},
        "error: ORCH_APP_NAME is not set; set it to the name of the App subclass or "
        "@function to run",
    ),
    "invalid-mode": (
        DECLARATIONS,
        "resize",
        {"ORCH_MODE": "batch"},
        "error: ORCH_MODE='batch' is invalid; use one of: serve, call",
    ),
    "invalid-port": (
        DECLARATIONS,
        "resize",
        {"ORCH_APP_PORT": "80000"},
        "error: ORCH_APP_PORT='80000' is invalid; set it to a port number from 1 to 65535",
    ),
    "invalid-drain": (
        DECLARATIONS,
        "resize",
        {"ORCH_DRAIN_SECONDS": "soon"},
        "error: ORCH_DRAIN_SECONDS='soon' is invalid; set it to a number of seconds >= 0",
    ),
}


@pytest.mark.parametrize(
    ("source", "name", "settings", "message"), LOADING_CASES.values(), ids=LOADING_CASES.keys()
)
def test_loading_error(run_app, tmp_path, source, name, settings, message):
    (tmp_path / "helper.py").write_text("def resize():\n    pass\n")

    result = run_app(source, name, **settings)

    assert result.returncode == 2
    assert result.stderr == message.format(dir=tmp_path) + "\n"
    assert result.stdout == ""


def test_loading_error_at_import_shows_traceback(run_app, tmp_path):
    source = "import orchestrator\n\nsettings = {}\nport = settings['port']\n"

    result = run_app(source, "resize")

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1] == f'  File "{tmp_path}/app.py", line 4, in <module>'
    assert lines[-2] == "KeyError: 'port'"
    assert lines[-1] == (
        f"error: importing {tmp_path}/app.py failed at {tmp_path}/app.py line 4: "
        "KeyError: 'port'; fix the error shown in the traceback above"
    )
    assert "orchestrator/runtime" not in result.stderr
