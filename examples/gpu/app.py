"""Report the GPU the app was given.

    orch run examples/gpu/app.py::GpuInfo --local

On an engine without the NVIDIA runtime this stops with an error that names
the machine type and suggests a CPU one.
"""

import orchestrator


class GpuInfo(orchestrator.App, machine_type="GPU-H100"):
    requirements = ["nvidia-ml-py==12.575.51"]

    def setup(self):
        import pynvml

        pynvml.nvmlInit()
        self.nvml = pynvml

    @orchestrator.endpoint("/gpus")
    def gpus(self) -> dict:
        nvml = self.nvml
        devices = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            devices.append({"name": nvml.nvmlDeviceGetName(handle), "memory_total_bytes": memory.total})
        return {"driver": nvml.nvmlSystemGetDriverVersion(), "devices": devices}

    def teardown(self):
        self.nvml.nvmlShutdown()
