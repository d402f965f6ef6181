"""Make thumbnails of images with Pillow.

    orch run examples/thumbnail/app.py::Thumbnails --local

    curl -X POST http://127.0.0.1:PORT/thumbnail -H 'Content-Type: application/json' \
         -d "{\"image\": \"$(base64 -w0 photo.jpg)\", \"max_size\": 128}"
"""

import orchestrator
from pydantic import BaseModel, Field


# A 2x2 PNG, so that the example request in /docs and in the banner works as is.
EXAMPLE_IMAGE = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR42mP4zwAE/0Ho////AB/uBfuXrhxRAAAAAElFTkSuQmCC"


class ThumbnailRequest(BaseModel):
    image: str = Field(description="The image, base64-encoded (PNG, JPEG, WebP, ...)", examples=[EXAMPLE_IMAGE])
    max_size: int = Field(128, ge=8, le=2048, description="Maximum width and height of the thumbnail, in pixels")
    format: str = Field("PNG", pattern="^(PNG|JPEG|WEBP)$")


class ThumbnailResponse(BaseModel):
    image: str
    width: int
    height: int


class InfoRequest(BaseModel):
    image: str = Field(description="The image, base64-encoded", examples=[EXAMPLE_IMAGE])


class InfoResponse(BaseModel):
    format: str
    width: int
    height: int
    mode: str


class Thumbnails(orchestrator.App, machine_type="S", max_concurrency=2):
    requirements = ["pillow==11.3.0", "pydantic==2.11.7"]
    request_timeout = 30

    def setup(self):
        # Imported here, not at the top: the host reads this file without Pillow.
        from PIL import Image

        self.image_module = Image

    @orchestrator.endpoint("/thumbnail")
    def thumbnail(self, request: ThumbnailRequest) -> ThumbnailResponse:
        image = self._open(request.image)
        image.thumbnail((request.max_size, request.max_size))
        return ThumbnailResponse(image=self._encode(image, request.format), width=image.width, height=image.height)

    @orchestrator.endpoint("/info")
    def info(self, request: InfoRequest) -> InfoResponse:
        image = self._open(request.image)
        return InfoResponse(format=image.format or "unknown", width=image.width, height=image.height, mode=image.mode)

    def _open(self, encoded: str):
        import base64
        import io

        return self.image_module.open(io.BytesIO(base64.b64decode(encoded)))

    def _encode(self, image, image_format: str) -> str:
        import base64
        import io

        buffer = io.BytesIO()
        if image_format == "JPEG" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(buffer, format=image_format)
        return base64.b64encode(buffer.getvalue()).decode()
