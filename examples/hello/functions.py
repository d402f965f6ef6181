"""Two functions: one called once, one served over HTTP.

    orch run examples/hello/functions.py::platform_report --local
    orch run examples/hello/functions.py::add --local
"""

import orchestrator


@orchestrator.function(requirements=["six==1.17.0"], machine_type="XS")
def platform_report():
    """Called once inside its image; the result is printed and the command exits."""
    import platform

    import six

    return {"python": platform.python_version(), "six": six.__version__}


@orchestrator.function(serve=True, machine_type="XS")
def add(a: float, b: float) -> dict:
    """Served as POST / taking {"a": ..., "b": ...}."""
    return {"sum": a + b}
