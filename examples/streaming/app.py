"""Stream tokens as they are produced.

    orch run examples/streaming/app.py::Countdown --local
    curl -N -X POST http://127.0.0.1:PORT/count -H 'Content-Type: application/json' -d '{"start": 5}'
"""

import time

import orchestrator


class Countdown(orchestrator.App, machine_type="XS"):
    @orchestrator.endpoint("/count")
    def count(self, start: int = 5, delay: float = 0.2):
        """Yield one line per step; each line reaches the client when it is yielded."""
        for number in range(start, 0, -1):
            yield f"{number}\n"
            time.sleep(delay)
        yield "liftoff\n"
