"""What the web service refuses before any model runs (fer3d.app.service): images whose header
asks for more pixels than it decodes, formats outside the accepted list, and whole-image uploads
to a server without a face detector, which still takes 48x48 crops as crops."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fer3d.app.faces import MAX_PIXELS
from fer3d.app.service import ApiError, Service, Upload


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width), 128, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def refusal(service: Service, data: bytes, name: str, crops: bool = False) -> ApiError:
    with pytest.raises(ApiError) as exc:
        service._image(Upload(data, name, {}), crops)
    return exc.value


@pytest.fixture
def no_detector() -> Service:
    return Service(predictor=None, finder=None, max_upload_bytes=1 << 20)


def test_a_radiance_header_asking_for_gigapixels_is_refused_before_decoding(no_detector, monkeypatch):
    # 60 bytes that OpenCV would start decoding into 20000x20000 float pixels; Pillow cannot read them
    def decode(*_):
        raise AssertionError("decoded an image whose size was never checked")

    monkeypatch.setattr("fer3d.app.service.decode_image", decode)
    header = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 20000 +X 20000\n"
    error = refusal(no_detector, header, "sky.hdr")
    assert error.status == 415 and error.message.startswith("sky.hdr: not a readable image (expected one of .jpg")


def test_a_png_over_the_pixel_limit_is_413(no_detector):
    side = int(MAX_PIXELS**0.5) + 100
    error = refusal(no_detector, png(side, side), "flat.png")
    assert (
        error.status == 413
        and f"{side}x{side} image" in error.message
        and "the limit is 50 megapixels" in error.message
    )


def test_without_a_detector_a_48x48_image_is_a_crop_and_a_photo_is_refused(no_detector):
    crop = no_detector._image(Upload(png(48, 48), "face.png", {}), crops=False)
    assert crop.shape[:2] == (48, 48)
    error = refusal(no_detector, png(320, 240), "photo.png")
    assert error.status == 422 and "send 48x48 face crops with crops=true" in error.message
    assert no_detector._image(Upload(png(320, 240), "photo.png", {}), crops=True).shape[:2] == (240, 320)
