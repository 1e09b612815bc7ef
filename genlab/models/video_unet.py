"""A U-Net over whole clips: the network of a masked-frame flow-matching video model.

A clip's frames are stacked as channels (SimVP, Gao et al. 2022: frames-as-channels 2-D convolutions
predict Moving MNIST better than recurrent nets at a fraction of the cost), so one 2-D U-Net pass sees
all T frames at once and its convolutions mix space and time together; the CPU cost of a 20-frame
clip is close to that of one image. The blocks are the image U-Net's (genlab.models.unet).

With `latent` > 0 the network owns a per-frame autoencoder (genlab.models.frame_codec) and works on its
latents: `encode` turns a clip (B, T, S, S) into (B, T * latent, S/4, S/4) planes, `decode` back; the
flow and the U-Net see those planes as they would see frames. Without it the planes are the frames.

Inputs: x (B, P, G, G), the P planes (frames, or their latents) at flow time t with the given frames'
planes already clean; mask (B, P), 1 on a given frame's planes (`plane_mask`); t (B,); digits (B, 2) the
two digits the clip should show, or None. The mask enters as P more channels, so one network serves
prediction (first frames given), in-betweening (first and last) and generation (none). The digits enter
as one embedding, the sum of the two digits' (order does not matter: "a 2 and a 9" is "a 9 and a 2");
`drop` (B,) bool replaces it by a learned null embedding (classifier-free guidance). Output:
(B, P, G, G), what the process asks of it (the clean planes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models.frame_codec import FrameCodec
from genlab.models.unet import Attention, ResBlock, time_features

LAYOUTS = ("stacked", "factorised")


@dataclass
class VideoUNetConfig:
    frames: int = 20  # T: frames per clip (channels of the network's input and output)
    size: int = 32  # frame side, pixels (the model's resolution)
    patch: int = 2  # pixels folded into channels first: 32x32 -> 16x16
    width: int = 64  # channels at the first resolution
    mults: list[int] = field(default_factory=lambda: [1, 2])  # width multiplier per resolution
    attention: bool = True  # self-attention at the lowest resolution
    num_digits: int = 10  # digit classes of the condition (0 = unconditional)
    latent: int = 0  # > 0: the flow works on a per-frame autoencoder's latents, this many planes per frame
    codec_width: int = 16  # channels of that autoencoder's first layer
    layout: str = "stacked"  # stacked: frames as channels of one 2-D U-Net; factorised: per-frame blocks +
    # attention across frames (genlab.models.video_spacetime)
    stem_frames: int = 1  # factorised: the first convolution sees each frame with its (k - 1) / 2 neighbours

    @property
    def grid(self) -> int:
        """The side of the planes the flow works on: the frame's, or its latents' (a quarter)."""
        return self.size // 4 if self.latent else self.size

    @property
    def planes(self) -> int:
        """Planes per clip the flow works on: T frames, or T * latent latent planes."""
        return self.frames * max(self.latent, 1)

    def __post_init__(self) -> None:
        if self.frames < 2 or self.size < 8 or self.grid % (self.patch * 2 ** (len(self.mults) - 1)):
            raise ValueError(
                "model.frames must be >= 2 and model.size (a quarter of it with model.latent) "
                "a multiple of patch * 2**(levels-1), >= 8"
            )
        if self.latent < 0 or self.latent and (self.size % 4 or self.codec_width < 8):
            raise ValueError("model.latent must be >= 0; with it, model.size a multiple of 4, codec_width >= 8")
        if self.width < 8 or self.width % 8 or not self.mults or min(self.mults) < 1:
            raise ValueError("model.width must be a multiple of 8 and model.mults positive integers")
        if self.layout not in LAYOUTS or self.layout == "factorised" and self.latent:
            raise ValueError(f"model.layout must be one of {', '.join(LAYOUTS)}; factorised works on pixels (latent 0)")
        if self.stem_frames < 1 or self.stem_frames % 2 == 0 or self.stem_frames > 1 and self.layout != "factorised":
            raise ValueError("model.stem_frames must be odd, and above 1 only with layout factorised")
        if self.patch not in (1, 2, 4) or self.num_digits < 0:
            raise ValueError("model.patch must be 1, 2 or 4 and model.num_digits >= 0")


class ClipNetwork(nn.Module):
    """What the video process asks of either layout's network, besides forward: the time + digits embedding,
    and the planes the flow works on (encode / decode / plane_mask)."""

    def __init__(self, config: VideoUNetConfig):
        super().__init__()
        self.config = config
        width, emb_dim = config.width, 4 * config.width
        self.time_mlp = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.digit = nn.Embedding(config.num_digits + 1, emb_dim)  # the last row: no digit (null condition)
        self.codec = FrameCodec(config.latent, config.codec_width) if config.latent else None

    def embedding(self, t: torch.Tensor, digits: torch.Tensor | None, drop: torch.Tensor | None) -> torch.Tensor:
        """Time + the two digits -> (B, 4*width); rows without digits (or dropped) get the null one twice."""
        null = self.config.num_digits
        if digits is None:
            digits = torch.full((t.size(0), 2), null, dtype=torch.long, device=t.device)
        if drop is not None:
            digits = torch.where(drop[:, None], torch.full_like(digits, null), digits)
        return self.time_mlp(time_features(t, self.config.width)) + self.digit(digits).sum(1)

    def encode(self, clips: torch.Tensor) -> torch.Tensor:
        """Clips (B, T, S, S) in [-1, 1] -> the planes the flow works on (B, planes, grid, grid)."""
        return clips if self.codec is None else self.codec.encode(clips)

    def decode(self, planes: torch.Tensor) -> torch.Tensor:
        """The inverse of encode: (B, planes, grid, grid) -> clips (B, T, S, S)."""
        return planes if self.codec is None else self.codec.decode(planes)

    def plane_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """A frame mask (B, T) as a mask of the flow's planes (B, planes): each frame's latents share its flag."""
        return mask if self.codec is None else mask.repeat_interleave(self.config.latent, dim=1)


class VideoUNet(ClipNetwork):
    """Frames stacked as channels of one 2-D U-Net (the `stacked` layout)."""

    def __init__(self, config: VideoUNetConfig):
        super().__init__(config)
        width, emb_dim, p = config.width, 4 * config.width, config.patch
        self.stem = nn.Conv2d(2 * config.planes * p * p, width, 3, padding=1)  # planes and mask, folded
        chans = [width * m for m in config.mults]
        self.down, self.downsample, c_prev = nn.ModuleList(), nn.ModuleList(), width
        for i, c in enumerate(chans):
            self.down.append(ResBlock(c_prev, c, emb_dim, 0.0))
            self.downsample.append(nn.Identity() if i == len(chans) - 1 else nn.Conv2d(c, c, 3, stride=2, padding=1))
            c_prev = c
        self.mid = ResBlock(c_prev, c_prev, emb_dim, 0.0)
        self.attn = Attention(c_prev) if config.attention else nn.Identity()
        self.up = nn.ModuleList()
        for c in reversed(chans):
            self.up.append(ResBlock(c_prev + c, c, emb_dim, 0.0))
            c_prev = c
        self.out_norm = nn.GroupNorm(8, c_prev)
        self.out = nn.Conv2d(c_prev, config.planes * p * p, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        t: torch.Tensor,
        digits: torch.Tensor | None = None,
        drop: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, P, G, G) the flow's planes (frames, or their latents: encode), mask (B, P) (plane_mask),
        t (B,), digits (B, 2) -> (B, P, G, G)."""
        emb = self.embedding(t, digits, drop)
        p = self.config.patch
        planes = mask[:, :, None, None].to(x.dtype).expand_as(x)  # (B, T, H, W): 1 on given frames
        h = self.stem(F.pixel_unshuffle(torch.cat([x, planes], dim=1), p))  # (B, width, H/p, W/p)
        skips = []
        for block, downsample in zip(self.down, self.downsample):
            h = block(h, emb)
            skips.append(h)
            h = downsample(h)
        h = self.attn(self.mid(h, emb))
        for block in self.up:
            h = block(torch.cat([F.interpolate(h, size=skips[-1].shape[-2:], mode="nearest"), skips.pop()], 1), emb)
        return F.pixel_shuffle(self.out(F.silu(self.out_norm(h))), p)  # (B, P, G, G)
