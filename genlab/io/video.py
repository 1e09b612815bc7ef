"""Clips and their files: (N, T, H, W) tensors in [0, 1] <-> animated GIF, MP4, filmstrip PNG and .npy.

GIF is written by Pillow; MP4 (H.264) by PyPI `imageio` with `imageio-ffmpeg`, whose wheel ships an ffmpeg
binary. Several clips play side by side in one GIF or MP4; a filmstrip has one clip per row, one frame
per column.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genlab.errors import GenlabError
from genlab.io.files import atomic_write, atomic_write_bytes
from genlab.io.images import make_grid, png_bytes
from genlab.io.validate import output_file

VIDEO_SUFFIXES = (".gif", ".mp4", ".png", ".npy")
FPS = 8  # frames per second of GIF and MP4 (Moving MNIST has no native rate; 20 frames play in 2.5 s)
MAX_SIDE = 4096  # pixels: a wider tiling is unwatchable and a large file


def check_video_path(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix not in VIDEO_SUFFIXES:
        raise GenlabError(f"--out {out} must end in {', '.join(VIDEO_SUFFIXES)}")
    return output_file(out)


def tiled_frames(clips: torch.Tensor, scale: int, pad: int = 2) -> np.ndarray:
    """(N, T, H, W) in [0, 1] -> (T, H', W') uint8: the N clips side by side, scaled up `scale` times,
    padded to a multiple of 16 pixels (H.264's block)."""
    frames = []
    for t in range(clips.size(1)):
        grid = make_grid(clips[:, t : t + 1], nrow=clips.size(0), pad=pad)
        frames.append(np.kron(grid, np.ones((scale, scale), dtype=np.uint8)))
    video = np.stack(frames)  # (T, H', W')
    h, w = (-s % 16 for s in video.shape[1:])
    return np.pad(video, ((0, 0), (0, h), (0, w)), constant_values=255)


def gif_bytes(frames: np.ndarray, fps: int = FPS) -> bytes:
    """(T, H, W) uint8 -> an animated GIF that loops."""
    buffer = io.BytesIO()
    images = [Image.fromarray(f) for f in frames]
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
    return buffer.getvalue()


def write_mp4(path: Path, frames: np.ndarray, fps: int = FPS) -> None:
    """(T, H, W) uint8 -> an H.264 MP4 at `path` (H and W multiples of 16)."""
    ffmpeg = _imageio_ffmpeg()
    # "-f mp4": a temporary file's name does not end in .mp4; one thread: the same bytes every time
    writer = ffmpeg.write_frames(
        str(path),
        (frames.shape[2], frames.shape[1]),
        pix_fmt_in="gray",
        fps=fps,
        codec="libx264",
        macro_block_size=16,
        ffmpeg_log_level="error",
        output_params=["-f", "mp4", "-threads", "1"],
    )
    writer.send(None)  # start ffmpeg
    for frame in frames:
        writer.send(np.ascontiguousarray(frame).tobytes())
    writer.close()


def read_video(path: str | Path) -> np.ndarray:
    """A GIF or MP4 -> (T, H, W) uint8 (grey): for checking what was written."""
    path = Path(path)
    if path.suffix == ".gif":
        with Image.open(path) as image:
            frames = []
            for i in range(image.n_frames):
                image.seek(i)
                frames.append(np.asarray(image.convert("L")))
        return np.stack(frames)
    reader = _imageio_ffmpeg().read_frames(str(path))  # rgb24
    size = next(reader)["size"]  # (W, H)
    return np.stack([np.frombuffer(f, np.uint8).reshape(size[1], size[0], 3)[..., 0] for f in reader])


def _imageio_ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError:
        raise GenlabError(
            "MP4 needs PyPI imageio-ffmpeg (its wheel ships ffmpeg): pip install imageio-ffmpeg"
        ) from None
    return imageio_ffmpeg


@dataclass
class GeneratedVideo:
    """What a video run's `generate` returns: clips (N, T, H, W) in [0, 1] and the request behind each
    (labels (N,) for the server's class names, None when the clips were not asked by label)."""

    clips: torch.Tensor
    labels: torch.Tensor | None = None
    scale: int = 4  # GIF / MP4 / filmstrip pixels per clip pixel

    def __len__(self) -> int:
        return self.clips.size(0)

    @property
    def images(self) -> torch.Tensor:
        """Each clip as one filmstrip image (N, 1, H, T*W): what the server's images endpoint sends."""
        n, t, h, w = self.clips.shape
        return self.clips.permute(0, 2, 1, 3).reshape(n, 1, h, t * w)

    def filmstrip(self) -> np.ndarray:
        """uint8: one row per clip, one column per frame."""
        n, t, h, w = self.clips.shape
        return make_grid(self.clips.reshape(n * t, 1, h, w), nrow=t)

    def save(self, out: str | Path) -> Path:
        """.gif / .mp4: the clips playing side by side; .png: the filmstrip; .npy: (N, T, H, W) float32."""
        out = check_video_path(out)
        if out.suffix == ".npy":
            array = self.clips.detach().float().cpu().clamp(0, 1).numpy()

            def write(tmp: Path) -> None:
                with open(tmp, "wb") as fh:
                    np.save(fh, array)

            return atomic_write(out, write)
        if out.suffix == ".png":
            return atomic_write_bytes(out, png_bytes(self.filmstrip(), scale=self.scale // 2 or 1))
        frames = tiled_frames(self.clips.detach().cpu(), self.scale)
        if frames.shape[2] > MAX_SIDE:
            raise GenlabError(f"{len(self)} clips side by side are wider than {MAX_SIDE} pixels: write .png or .npy")
        if out.suffix == ".gif":
            return atomic_write_bytes(out, gif_bytes(frames))
        return atomic_write(out, lambda tmp: write_mp4(tmp, frames))


def read_frames_npy(path: str | Path, what: str) -> np.ndarray:
    """A .npy of frames (T, H, W): uint8, or floats in [0, 1] -> float32 (T, H, W) in [0, 1]."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise GenlabError(f"{what} {path}: not a readable .npy array ({exc})") from None
    if array.ndim != 3:
        raise GenlabError(f"{what} {path}: frames must be an array (T, H, W), got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise GenlabError(f"{what} {path}: frames must be uint8 or finite floats in [0, 1], got {array.dtype}")
    if array.min() < 0 or array.max() > 1:
        raise GenlabError(f"{what} {path}: float frames must lie in [0, 1]")
    return array.astype(np.float32)


def read_frame_image(path: str | Path, what: str) -> np.ndarray:
    """A greyscale image file -> float32 (H, W) in [0, 1]."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L"), dtype=np.float32) / 255
    except (OSError, ValueError) as exc:
        raise GenlabError(f"{what} {path}: not a readable image ({exc})") from None
