"""orchestrator: serve Python apps from reproducible Docker images.

Only the declaration API lives here. This package is also imported inside app
images, so importing it must not pull in Docker, click or any host-side code.
"""

from .errors import OrchestratorError
from .sdk import App, Function, endpoint, function

__version__ = "0.1.0"

__all__ = ["App", "Function", "OrchestratorError", "endpoint", "function", "__version__"]
