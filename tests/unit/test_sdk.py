"""Declarations: option validation, ``App`` classes, ``@function`` and ``@endpoint``."""

from __future__ import annotations

from typing import Any

import pytest

import orchestrator
from orchestrator.errors import OptionError, UsageError
from orchestrator.sdk import App, Function, Options, build_options

APP_OPTION_LIST = (
    "requirements, python_version, system_packages, machine_type, env, image, "
    "local_python_modules, max_concurrency, max_queue, request_timeout, startup_timeout"
)
FUNCTION_OPTION_LIST = (
    "requirements, python_version, system_packages, machine_type, env, image, "
    "local_python_modules, serve, max_concurrency, max_queue, request_timeout, startup_timeout"
)

ENV_NAME_RULE = "use letters, digits and '_', not starting with a digit"
ENV_CONTROL_CHARACTER = "contains a control character such as a newline; images cannot carry it"


def option_error(values: dict[str, Any]) -> OptionError:
    with pytest.raises(OptionError) as caught:
        build_options(values, source="app Demo")
    return caught.value


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"requirements": "six"},
         "app Demo: option 'requirements' must be a list of strings, got 'six'"),
        ({"requirements": ["six", ""]},
         "app Demo: option 'requirements' must contain non-empty strings, got ''"),
        ({"requirements": ["six", 3]},
         "app Demo: option 'requirements' must contain non-empty strings, got 3"),
        ({"requirements": None},
         "app Demo: option 'requirements' must be a list of strings, got None"),
        ({"system_packages": "ffmpeg"},
         "app Demo: option 'system_packages' must be a list of strings, got 'ffmpeg'"),
        ({"system_packages": ["  "]},
         "app Demo: option 'system_packages' must contain non-empty strings, got '  '"),
        ({"local_python_modules": "helpers"},
         "app Demo: option 'local_python_modules' must be a list of strings, got 'helpers'"),
        ({"python_version": "3.8"},
         "app Demo: option 'python_version': unsupported Python version '3.8'; "
         "supported: 3.9, 3.10, 3.11, 3.12, 3.13"),
        ({"python_version": 3.12},
         "app Demo: option 'python_version' must be a string such as '3.11', got 3.12"),
        ({"machine_type": ""},
         "app Demo: option 'machine_type' must name at least one machine type, got ''"),
        ({"machine_type": []},
         "app Demo: option 'machine_type' must name at least one machine type, got []"),
        ({"machine_type": 2},
         "app Demo: option 'machine_type' must be a list of strings, got 2"),
        ({"machine_type": ["M", ""]},
         "app Demo: option 'machine_type' must contain non-empty strings, got ''"),
        ({"env": ["TOKEN=1"]},
         "app Demo: option 'env' must be a mapping of names to strings, got ['TOKEN=1']"),
        ({"env": {"A=B": "1"}},
         f"app Demo: option 'env': invalid variable name 'A=B'; {ENV_NAME_RULE}"),
        ({"env": {"": "1"}},
         f"app Demo: option 'env': invalid variable name ''; {ENV_NAME_RULE}"),
        ({"env": {"1ST": "1"}},
         f"app Demo: option 'env': invalid variable name '1ST'; {ENV_NAME_RULE}"),
        ({"env": {"MY-VAR": "1"}},
         f"app Demo: option 'env': invalid variable name 'MY-VAR'; {ENV_NAME_RULE}"),
        ({"env": {"ÉTAT": "1"}},
         f"app Demo: option 'env': invalid variable name 'ÉTAT'; {ENV_NAME_RULE}"),
        ({"env": {3: "1"}},
         f"app Demo: option 'env': invalid variable name 3; {ENV_NAME_RULE}"),
        ({"env": {"WORKERS": 4}},
         "app Demo: option 'env': value of WORKERS must be a string, got 4"),
        ({"env": {"BANNER": "line 1\nline 2"}},
         f"app Demo: option 'env': value of BANNER {ENV_CONTROL_CHARACTER}"),
        ({"env": {"BANNER": "a\rb"}},
         f"app Demo: option 'env': value of BANNER {ENV_CONTROL_CHARACTER}"),
        ({"env": {"SEPARATOR": "\t"}},
         f"app Demo: option 'env': value of SEPARATOR {ENV_CONTROL_CHARACTER}"),
        ({"env": {"TERMINATOR": "end\x00"}},
         f"app Demo: option 'env': value of TERMINATOR {ENV_CONTROL_CHARACTER}"),
        ({"image": ""},
         "app Demo: option 'image' must be an image reference such as 'python:3.11-slim'"),
        ({"image": 3},
         "app Demo: option 'image' must be an image reference such as 'python:3.11-slim'"),
        ({"max_concurrency": 0},
         "app Demo: option 'max_concurrency' must be a positive integer, got 0"),
        ({"max_concurrency": -2},
         "app Demo: option 'max_concurrency' must be a positive integer, got -2"),
        ({"max_concurrency": 2.0},
         "app Demo: option 'max_concurrency' must be a positive integer, got 2.0"),
        ({"max_concurrency": True},
         "app Demo: option 'max_concurrency' must be a positive integer, got True"),
        ({"max_concurrency": "4"},
         "app Demo: option 'max_concurrency' must be a positive integer, got '4'"),
        ({"max_queue": -1},
         "app Demo: option 'max_queue' must be zero or a positive integer, got -1"),
        ({"max_queue": True},
         "app Demo: option 'max_queue' must be zero or a positive integer, got True"),
        ({"max_queue": 1.5},
         "app Demo: option 'max_queue' must be zero or a positive integer, got 1.5"),
        ({"request_timeout": 0},
         "app Demo: option 'request_timeout' must be a positive number of seconds, got 0"),
        ({"request_timeout": -1.5},
         "app Demo: option 'request_timeout' must be a positive number of seconds, got -1.5"),
        ({"request_timeout": "30"},
         "app Demo: option 'request_timeout' must be a positive number of seconds, got '30'"),
        ({"startup_timeout": False},
         "app Demo: option 'startup_timeout' must be a positive number of seconds, got False"),
        ({"startup_timeout": None},
         "app Demo: option 'startup_timeout' must be a positive number of seconds, got None"),
    ],
)
def test_option_invalid(values: dict[str, Any], message: str) -> None:
    error = option_error(values)

    assert error.message == message
    assert error.exit_code == 2


@pytest.mark.parametrize(
    ("value", "shown"),
    [(float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf")],
)
def test_option_timeout_not_finite(value: float, shown: str) -> None:
    error = option_error({"request_timeout": value})

    assert error.message == f"app Demo: option 'request_timeout' must be a positive number of seconds, got {shown}"


def test_option_defaults() -> None:
    options = build_options({}, source="app Demo")

    assert options == Options()
    assert options.requirements == ()
    assert options.python_version == "3.11"
    assert options.machine_type == ("S",)
    assert options.env == {}
    assert options.image is None
    assert options.max_concurrency == 1
    assert options.max_queue == 100
    assert options.request_timeout == 60.0
    assert options.startup_timeout == 300.0


def test_option_valid_values_normalized() -> None:
    options = build_options(
        {
            "requirements": [" six==1.16.0 "],
            "python_version": "3.12",
            "system_packages": ["ffmpeg"],
            "env": {"MODE": "fast"},
            "image": "python:3.12-bookworm",
            "local_python_modules": ["helpers"],
            "max_concurrency": 4,
            "max_queue": 0,
            "request_timeout": 5,
            "startup_timeout": 0.5,
        },
        source="app Demo",
    )

    assert options.requirements == ("six==1.16.0",)
    assert options.python_version == "3.12"
    assert options.system_packages == ("ffmpeg",)
    assert options.env == {"MODE": "fast"}
    assert options.image == "python:3.12-bookworm"
    assert options.local_python_modules == ("helpers",)
    assert options.max_concurrency == 4
    assert options.max_queue == 0
    assert options.request_timeout == 5.0
    assert isinstance(options.request_timeout, float)
    assert options.startup_timeout == 0.5


def test_option_env_printable_values_kept() -> None:
    env = {"GREETING": "héllo wörld ☃", "PATTERN": 'a\\b "c" $HOME', "_PRIVATE_2": ""}

    options = build_options({"env": env}, source="app Demo")

    assert options.env == env


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("M", ("M",)),
        (" GPU-H100 ", ("GPU-H100",)),
        (["GPU-H100", "GPU-A100"], ("GPU-H100", "GPU-A100")),
        (("L",), ("L",)),
    ],
)
def test_option_machine_type_string_or_list(value: Any, expected: tuple[str, ...]) -> None:
    options = build_options({"machine_type": value}, source="app Demo")

    assert options.machine_type == expected


@pytest.mark.parametrize("version", ["3.9", "3.10", "3.11", "3.12", "3.13"])
def test_option_python_version_supported(version: str) -> None:
    assert build_options({"python_version": version}, source="app Demo").python_version == version


def test_option_unknown_suggests_closest() -> None:
    error = option_error({"requirment": ["six"]})

    assert error.message == (
        "app Demo: unknown option 'requirment'; did you mean 'requirements'? "
        f"Valid options: {APP_OPTION_LIST}."
    )


def test_option_unknown_without_suggestion() -> None:
    error = option_error({"zzz": 1})

    assert error.message == f"app Demo: unknown option 'zzz'. Valid options: {APP_OPTION_LIST}."


def test_options_replace_validates() -> None:
    assert Options().replace(max_concurrency=4).max_concurrency == 4

    with pytest.raises(OptionError) as caught:
        Options().replace(max_concurrency=0)

    assert caught.value.message == "options: option 'max_concurrency' must be a positive integer, got 0"


def test_app_unknown_class_kwarg() -> None:
    with pytest.raises(OptionError) as caught:

        class Thumbnails(orchestrator.App, machine_tpye="M"):
            pass

    assert caught.value.message == (
        "app Thumbnails: unknown option 'machine_tpye'; did you mean 'machine_type'? "
        f"Valid options: {APP_OPTION_LIST}."
    )
    assert caught.value.exit_code == 2


def test_app_serve_is_not_an_app_option() -> None:
    with pytest.raises(OptionError) as caught:

        class Thumbnails(orchestrator.App, serve=True):
            pass

    assert caught.value.message.startswith("app Thumbnails: unknown option 'serve'")


def test_app_invalid_class_attribute() -> None:
    with pytest.raises(OptionError) as caught:

        class Thumbnails(orchestrator.App):
            request_timeout = -1

    assert caught.value.message == (
        "app Thumbnails: option 'request_timeout' must be a positive number of seconds, got -1"
    )


def test_app_attributes_equal_kwargs() -> None:
    class WithAttributes(orchestrator.App):
        requirements = ["six"]
        machine_type = "M"
        max_concurrency = 3

    class WithKwargs(orchestrator.App, requirements=["six"], machine_type="M", max_concurrency=3):
        pass

    assert WithAttributes.options == WithKwargs.options
    assert WithAttributes.options.requirements == ("six",)
    assert WithAttributes.options.machine_type == ("M",)
    assert WithAttributes.options.max_concurrency == 3


def test_app_kwarg_overrides_attribute() -> None:
    class Thumbnails(orchestrator.App, max_concurrency=3):
        max_concurrency = 2

    assert Thumbnails.options.max_concurrency == 3


def test_app_without_options_uses_defaults() -> None:
    class Plain(orchestrator.App):
        pass

    assert Plain.options == Options()


def test_app_inheritance() -> None:
    class Base(orchestrator.App, machine_type="M"):
        requirements = ["six"]
        max_concurrency = 4

    class Child(Base, python_version="3.12"):
        env = {"MODE": "fast"}

    class Override(Base):
        requirements = ["seven"]

    assert Child.options.requirements == ("six",)
    assert Child.options.machine_type == ("M",)
    assert Child.options.max_concurrency == 4
    assert Child.options.python_version == "3.12"
    assert Child.options.env == {"MODE": "fast"}
    assert Override.options.requirements == ("seven",)
    assert Override.options.machine_type == ("M",)
    assert Base.options.python_version == "3.11"
    assert Base.options.env == {}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("predict", "endpoint path must start with '/', got 'predict'"),
        ("", "endpoint path must start with '/', got ''"),
        (None, "endpoint path must start with '/', got None"),
        (3, "endpoint path must start with '/', got 3"),
    ],
)
def test_endpoint_invalid_path(path: Any, message: str) -> None:
    with pytest.raises(OptionError) as caught:
        orchestrator.endpoint(path)

    assert caught.value.message == message
    assert caught.value.exit_code == 2


def test_endpoint_marks_method() -> None:
    def predict(self: Any) -> None:
        pass

    marked = orchestrator.endpoint("/predict")(predict)

    assert marked is predict
    assert marked.__orchestrator_endpoint__ == "/predict"


def test_endpoints_routes_inherited() -> None:
    class Base(orchestrator.App):
        @orchestrator.endpoint("/predict")
        def predict(self) -> None:
            pass

        def helper(self) -> None:
            pass

    class Child(Base):
        @orchestrator.endpoint("/health-check")
        def check(self) -> None:
            pass

    assert Base.endpoints() == {"/predict": "predict"}
    assert Child.endpoints() == {"/health-check": "check", "/predict": "predict"}


def test_endpoints_none_declared() -> None:
    class Plain(orchestrator.App):
        pass

    assert Plain.endpoints() == {}


def test_endpoints_duplicate_path() -> None:
    class Thumbnails(orchestrator.App):
        @orchestrator.endpoint("/resize")
        def small(self) -> None:
            pass

        @orchestrator.endpoint("/resize")
        def large(self) -> None:
            pass

    with pytest.raises(OptionError) as caught:
        Thumbnails.endpoints()

    assert caught.value.message == "app Thumbnails: path /resize is declared by both large() and small()"


def test_function_bare_decorator() -> None:
    @orchestrator.function
    def add(a: int, b: int = 1) -> int:
        """Add two numbers."""
        return a + b

    assert isinstance(add, Function)
    assert add(2) == 3
    assert add(2, b=5) == 7
    assert add.options == Options()
    assert add.serve is False
    assert add.__name__ == "add"
    assert add.__doc__ == "Add two numbers."
    assert add.__wrapped__(1, 1) == 2


def test_function_with_options() -> None:
    @orchestrator.function(requirements=["six"], machine_type=["M", "L"], serve=True)
    def resize(width: int) -> int:
        return width // 2

    assert resize(640) == 320
    assert resize.serve is True
    assert resize.options.requirements == ("six",)
    assert resize.options.machine_type == ("M", "L")


def test_function_serve_truthy_stored_as_bool() -> None:
    served = orchestrator.function(serve=1)(lambda: None)

    assert served.serve is True


def test_function_call_raises_through() -> None:
    @orchestrator.function
    def fail() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError):
        fail()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"requirments": ["six"]},
         "function resize: unknown option 'requirments'; did you mean 'requirements'? "
         f"Valid options: {FUNCTION_OPTION_LIST}."),
        ({"machine_typ": "M"},
         "function resize: unknown option 'machine_typ'; did you mean 'machine_type'? "
         f"Valid options: {FUNCTION_OPTION_LIST}."),
        ({"serv": True},
         "function resize: unknown option 'serv'; did you mean 'serve'? "
         f"Valid options: {FUNCTION_OPTION_LIST}."),
    ],
)
def test_function_unknown_option(options: dict[str, Any], message: str) -> None:
    def resize() -> None:
        pass

    with pytest.raises(OptionError) as caught:
        orchestrator.function(**options)(resize)

    assert caught.value.message == message


def test_function_invalid_option() -> None:
    def resize() -> None:
        pass

    with pytest.raises(OptionError) as caught:
        orchestrator.function(max_concurrency=0)(resize)

    assert caught.value.message == "function resize: option 'max_concurrency' must be a positive integer, got 0"


def test_function_decorates_non_callable() -> None:
    with pytest.raises(OptionError) as caught:
        orchestrator.function(requirements=["six"])(3)

    assert caught.value.message == "@function must decorate a function, got 3"


def test_option_error_is_usage_error() -> None:
    assert issubclass(OptionError, UsageError)
    assert OptionError("x").exit_code == 2


@pytest.mark.parametrize(("attribute", "option"), [
    ("requirments", "requirements"),
    ("request_timout", "request_timeout"),
    ("machine_types", "machine_type"),
])
def test_app_misspelled_attribute_rejected(attribute: str, option: str) -> None:
    with pytest.raises(OptionError) as caught:
        type("Demo", (App,), {attribute: 5})

    assert caught.value.message == (
        f"app Demo: class attribute '{attribute}' is not an option; did you mean '{option}'? "
        f"Rename it, or start its name with '_' if it is the app's own attribute."
    )


def test_app_own_attributes_allowed() -> None:
    demo = type("Demo", (App,), {"model_name": "resnet", "threshold": 0.5, "_cache": {}})

    assert demo.model_name == "resnet"
    assert demo.options.requirements == ()
