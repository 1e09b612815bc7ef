"""The recipe schema of a glyph-translation run (`task: pix2pix`): fonts, U-Net and PatchGAN, losses,
and the few-shot start from another run."""

from __future__ import annotations

from dataclasses import dataclass, field

from genlab.core.recipe import EpochTrainConfig, check_betas, recipe_type
from genlab.data.fashion_edges import PICTURE_SETS
from genlab.data.glyphs import BEYOND_LEVEL1, FONTS
from genlab.models.glyph_unet import GlyphUNetConfig
from genlab.tasks.gan.recipe import check_ema_decay


def _known(fonts: list[str], key: str, kind: str) -> None:
    known = list(FONTS) if kind == "glyphs" else PICTURE_SETS[kind]
    unknown = [f for f in fonts if f not in known]
    if unknown:
        raise ValueError(f"{key}: unknown font {', '.join(unknown)} (known: {', '.join(known)})")


@dataclass
class GlyphDataConfig:
    # glyphs: the fonts below; fashion-edges: Fashion-MNIST items drawn from their edge maps (source
    # fashion-edges, target fashion, fonts [fashion-edges, fashion]; num_chars counts items, size 32)
    kind: str = "glyphs"
    # The font library: characters are the first `num_chars` of the frequency order that every one of these
    # has, and the judges (font and character classifiers) learn all of them.
    fonts: list[str] = field(default_factory=lambda: list(FONTS))
    source: str = "wqy-microhei"  # the font the generator reads
    targets: list[str] = field(default_factory=lambda: ["arphic-ukai", "cwtex-kai"])  # the fonts it draws
    num_chars: int = 800
    test_every: int = 8  # every 8th character of the frequency order is held out of training in every font
    size: int = 64
    shots: int = 0  # train on the first `shots` training characters of each target only (0 = all): few-shot
    # shared: train on the library's training characters (those every font of data.fonts has); all: on every
    # level-1 character the source and that target have, except the held-out ones; gb2312: those and every
    # GB2312 level-2 character the two have; cjk: those and every other CJK unified ideograph the two have
    # (glyphs only; beyond level 1, variants of held-out characters are left out). The judges and the held-out
    # characters are the library's either way.
    train_chars: str = "shared"
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.kind not in ("glyphs", *PICTURE_SETS):
            raise ValueError(f"data.kind must be glyphs or {', '.join(PICTURE_SETS)}, got {self.kind!r}")
        for key, fonts in (("data.fonts", self.fonts), ("data.source", [self.source]), ("data.targets", self.targets)):
            _known(fonts, key, self.kind)
        if self.source not in self.fonts or not self.targets or not set(self.targets) <= set(self.fonts):
            raise ValueError("data.source and data.targets (at least one) must be among data.fonts")
        if self.source in self.targets:
            raise ValueError("data.targets must not include data.source")
        if self.train_chars not in ("shared", *BEYOND_LEVEL1) or (
            self.train_chars != "shared" and self.kind != "glyphs"
        ):
            raise ValueError(
                "data.train_chars must be shared, all, gb2312 or cjk (all but shared: glyphs only), "
                f"got {self.train_chars!r}"
            )
        if self.num_chars < 2 or self.test_every < 2 or self.shots < 0 or self.batch_size < 1:
            raise ValueError("data.num_chars and data.test_every must be >= 2, data.shots >= 0, data.batch_size >= 1")
        if self.size < 16 or self.size > 256 or (self.kind != "glyphs" and self.size < 28):
            raise ValueError("data.size must be in 16..256 (at least 28 for Fashion-MNIST items)")


@dataclass
class DiscriminatorConfig:
    width: int = 16
    depth: int = 3

    def __post_init__(self) -> None:
        if self.width < 1 or self.depth < 1:
            raise ValueError("discriminator.width and discriminator.depth must be >= 1")


@dataclass
class TranslationTrainConfig(EpochTrainConfig):
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    l1_weight: float = 100.0  # pix2pix's lambda: L1 to the true glyph against the adversarial loss's 1
    adversarial_weight: float = 1.0  # 0 = L1 only (no discriminator step)
    category_weight: float = 1.0  # zi2zi's font-classification loss, through the discriminator's font head
    constant_weight: float = 0.0  # zi2zi's constant loss (15 there): the glyph made keeps the source's bottleneck
    # pix2pix's schedule: both learning rates stay constant for this share of the steps, then fall linearly to
    # 0 at the last step (1.0 = constant throughout)
    decay_from: float = 1.0
    # Source and truth moved together by up to augment_shift pixels and scaled by 1 +- augment_zoom (the same
    # draw for both, seeded by the step): new positions of the same strokes, against memorising pixels
    augment_shift: float = 0.0
    augment_zoom: float = 0.0
    init: str | None = None  # a pix2pix run to start from (few-shot fine-tuning); its fonts keep their rows
    method: str = "full"  # with init: full | lora (the generator's convolutions get low-rank updates)
    lora_rank: int = 4
    lora_alpha: float = 8.0
    # Draw with an exponential moving average of the generator's weights (0 = the live weights): it smooths
    # the speckle a GAN generator's weights leave as they wander around the discriminator (Yazici et al. 2019)
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_betas(self.betas)
        check_ema_decay(self.ema_decay)
        if self.ema_decay and self.method == "lora":
            raise ValueError("train.ema_decay is for full training: a LoRA run ships its live low-rank updates")
        if (
            min(self.lr_g, self.lr_d) <= 0
            or min(self.l1_weight, self.adversarial_weight, self.category_weight, self.constant_weight) < 0
        ):
            raise ValueError("train learning rates must be > 0 and loss weights >= 0")
        if self.augment_shift < 0 or not 0 <= self.augment_zoom < 1:
            raise ValueError("train.augment_shift must be >= 0 and train.augment_zoom in 0..1")
        if not 0 <= self.decay_from <= 1:
            raise ValueError("train.decay_from must be in 0..1")
        if self.method not in ("full", "lora"):
            raise ValueError("train.method must be full or lora")
        if self.method == "lora" and self.init is None:
            raise ValueError("train.method lora fine-tunes a run: give it with train.init")
        if self.lora_rank < 1 or self.lora_alpha <= 0:
            raise ValueError("train.lora_rank must be >= 1 and train.lora_alpha > 0")


@dataclass
class TranslationEvalConfig:
    judge_epochs: int = 16  # passes of the character classifier over the real glyphs (the font one: half)
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.judge_epochs < 1 or self.batch_size < 1:
            raise ValueError("eval.judge_epochs and eval.batch_size must be >= 1")


Pix2PixRecipe = recipe_type(
    "pix2pix",
    data=GlyphDataConfig,
    model=GlyphUNetConfig,
    discriminator=DiscriminatorConfig,
    train=TranslationTrainConfig,
    eval=TranslationEvalConfig,
)
