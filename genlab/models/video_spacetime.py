"""A factorised space-time U-Net: the image U-Net run on every frame, with attention across frames.

The frames-as-channels U-Net (genlab.models.video_unet) folds a clip's 20 frames into its first layer
and unfolds them from separate output weights, so what a digit looks like is learnt once per frame
position. This network shares all its spatial weights over time instead (as Video Diffusion Models, Ho
et al. 2022, and Make-A-Video do): every frame goes through the same 2-D residual blocks, so a digit drawn
in any frame teaches all frames. Frames talk in two ways. After every block, a convolution over time
(kernel 3) lets each frame take in its neighbours' features at the same position, at every resolution;
a digit moves about one position a frame at the first (16x16 for a 32x32 frame), so with the blocks'
3x3 convolutions it stays in reach. At the lowest resolution, attention over time at each position, and
attention over the frame's positions in the middle, carry the given frames to any frame of the clip.
(Attention over time at the higher resolution and over every position of every frame at once cost 60 %
more per step between them, measured on one core.) It costs about one image pass per frame, many times
the stacked network's pass per clip: fewer clips per CPU-minute, each worth more (docs/video.md).

Inputs and outputs are those of the stacked VideoUNet: x (B, T, S, S) the frames at flow time t with the
given ones clean, mask (B, T) 1 on given frames, t (B,), digits (B, 2) or None, drop (B,) -> (B, T, S, S). Each
frame also gets its mask flag as an input plane and its index as a learned embedding added to the
time + digits embedding, so a frame knows where it sits in the clip and whether it is given.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models.unet import Attention, ResBlock
from genlab.models.video_unet import ClipNetwork, VideoUNetConfig


class TimeConv(nn.Module):
    """A convolution over time (kernel 3) at each position, with a residual connection: each frame's features
    take in its two neighbours' (the temporal half of a pseudo-3-D convolution, as in Make-A-Video)."""

    def __init__(self, channels: int, frames: int):
        super().__init__()
        self.frames = frames
        self.norm = nn.GroupNorm(8, channels)
        self.conv = nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0))
        nn.init.zeros_(self.conv.weight)  # starts as the identity
        nn.init.zeros_(self.conv.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h (B*T, C, H, W) -> the same shape."""
        bt, c, hh, ww = h.shape
        x = F.silu(self.norm(h)).reshape(-1, self.frames, c, hh, ww).transpose(1, 2)  # (B, C, T, H, W)
        return h + self.conv(x).transpose(1, 2).reshape(bt, c, hh, ww)


class TimeAttention(nn.Module):
    """Self-attention over the T frames of a clip at each position, with a residual connection."""

    def __init__(self, channels: int, frames: int, heads: int = 4):
        super().__init__()
        self.frames, self.heads = frames, heads
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        nn.init.zeros_(self.proj.weight)  # starts as the identity: the per-frame network alone
        nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h (B*T, C, H, W) -> the same shape."""
        bt, c, hh, ww = h.shape
        x = h.reshape(-1, self.frames, c, hh, ww).permute(0, 3, 4, 1, 2)  # (B, H, W, T, C)
        seq = x.reshape(-1, self.frames, c)  # (B*H*W, T, C)
        q, k, v = self.qkv(self.norm(seq)).reshape(*seq.shape[:2], 3, self.heads, c // self.heads).unbind(2)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        seq = seq + self.proj(out.transpose(1, 2).reshape(seq.shape))
        return seq.reshape(x.shape).permute(0, 3, 4, 1, 2).reshape(bt, c, hh, ww)


def across_time(channels: int, frames: int, attention: bool) -> nn.Module:
    """What follows a residual block: a convolution over time, and at the lowest resolution attention too."""
    conv = TimeConv(channels, frames)
    return nn.Sequential(conv, TimeAttention(channels, frames)) if attention else conv


class SpaceTimeUNet(ClipNetwork):
    """Per-frame blocks with convolutions and attention over time (the `factorised` layout; pixels only)."""

    def __init__(self, config: VideoUNetConfig):
        super().__init__(config)
        width, emb_dim, p, t = config.width, 4 * config.width, config.patch, config.frames
        self.frame_index = nn.Parameter(torch.zeros(t, emb_dim))  # where each frame sits in the clip
        # One frame and its mask flag, folded; with stem_frames k > 1 also its neighbours' (a k x 3 x 3
        # convolution over time and space): a stroke one frame away, moved a pixel, is in the first features.
        k = config.stem_frames
        self.stem = (
            nn.Conv2d(2 * p * p, width, 3, padding=1)
            if k == 1
            else nn.Conv3d(2 * p * p, width, (k, 3, 3), padding=(k // 2, 1, 1))
        )
        chans = [width * m for m in config.mults]
        self.down, self.down_time, self.downsample, c_prev = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), width
        for i, c in enumerate(chans):
            self.down.append(ResBlock(c_prev, c, emb_dim, 0.0))
            self.down_time.append(across_time(c, t, attention=i == len(chans) - 1))
            self.downsample.append(nn.Identity() if i == len(chans) - 1 else nn.Conv2d(c, c, 3, stride=2, padding=1))
            c_prev = c
        self.mid = ResBlock(c_prev, c_prev, emb_dim, 0.0)
        self.attn = nn.Sequential(Attention(c_prev), TimeAttention(c_prev, t)) if config.attention else nn.Identity()
        self.mid_time = TimeConv(c_prev, t)
        self.up, self.up_time = nn.ModuleList(), nn.ModuleList()
        for i, c in enumerate(reversed(chans)):
            self.up.append(ResBlock(c_prev + c, c, emb_dim, 0.0))
            self.up_time.append(across_time(c, t, attention=i == 0))
            c_prev = c
        self.out_norm = nn.GroupNorm(8, c_prev)
        self.out = nn.Conv2d(c_prev, p * p, 3, padding=1)
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
        """x (B, T, S, S), mask (B, T), t (B,), digits (B, 2) -> (B, T, S, S)."""
        b, frames, s, _ = x.shape
        p = self.config.patch
        emb = (self.embedding(t, digits, drop)[:, None] + self.frame_index).reshape(b * frames, -1)  # (B*T, E)
        flags = mask[:, :, None, None].to(x.dtype).expand_as(x)
        h = torch.stack([x, flags], dim=2).reshape(b * frames, 2, s, s)  # (B*T, 2, S, S): a frame, its flag
        h = self._stem(F.pixel_unshuffle(h, p), frames)  # (B*T, width, S/p, S/p)
        skips = []
        for block, across, downsample in zip(self.down, self.down_time, self.downsample):
            h = across(block(h, emb))
            skips.append(h)
            h = downsample(h)
        h = self.attn(self.mid_time(self.mid(h, emb)))
        for block, across in zip(self.up, self.up_time):
            up = F.interpolate(h, size=skips[-1].shape[-2:], mode="nearest")
            h = across(block(torch.cat([up, skips.pop()], 1), emb))
        h = F.pixel_shuffle(self.out(F.silu(self.out_norm(h))), p)  # (B*T, 1, S, S)
        return h.reshape(b, frames, s, s)

    def _stem(self, h: torch.Tensor, frames: int) -> torch.Tensor:
        """h (B*T, C, H, W) folded frames -> (B*T, width, H, W), each frame alone or with its neighbours."""
        if isinstance(self.stem, nn.Conv2d):
            return self.stem(h)
        bt, c, hh, ww = h.shape
        clip = h.reshape(-1, frames, c, hh, ww).transpose(1, 2)  # (B, C, T, H, W)
        return self.stem(clip).transpose(1, 2).reshape(bt, -1, hh, ww)
