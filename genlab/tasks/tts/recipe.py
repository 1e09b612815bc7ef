"""The recipe schema of a text-to-speech run (`task: tts`): which synthetic voices say the Allison prompts
(the converter's inputs), the voice they are converted into (Allison's by default, or another synthetic
voice), how the converter is built and trained, and how its speech is scored."""

from __future__ import annotations

from dataclasses import dataclass, field

from genlab.core.recipe import EpochTrainConfig, recipe_type
from genlab.data.speech import ENGINES
from genlab.data.speech_pairs import TARGET_ALLISON
from genlab.models.voice_converter import ConverterConfig


@dataclass
class SpeechDataConfig:
    name: str = "allison"
    # The voices converted into Allison's: the first is the front end of text-to-speech; the others are
    # voices `generate --input` also converts. ENGINE:NAME, as genlab.data.speech.parse_voice reads them.
    voices: list[str] = field(default_factory=lambda: ["espeak-ng:en-us+f3", "flite:slt"])
    # The voice converted into: `allison` (her recordings of the prompts) or a synthetic voice ENGINE:NAME saying
    # the same prompts (e.g. flite:slt, espeak-ng:en-us+f2), for conversion between two synthetic voices.
    target: str = TARGET_ALLISON
    rate_wpm: int = 160  # espeak-ng's speed: at 160 words a minute its sentences last as long as Allison's
    chunk_frames: int = 64  # training windows: 0.64 s of aligned frames
    batch_size: int = 32
    limit: int = 0  # train on the first `limit` training prompts only (0 = all); for tiny runs

    def __post_init__(self) -> None:
        if self.name != "allison":
            raise ValueError("data.name must be allison (the one human voice with text on this machine)")
        if not self.voices or not all(isinstance(v, str) and ":" in v for v in self.voices):
            raise ValueError("data.voices must be a non-empty list of ENGINE:NAME, e.g. espeak-ng:en-us+f3")
        engine = self.target.partition(":")[0]
        if self.target != TARGET_ALLISON and (engine not in ENGINES or not self.target.partition(":")[2]):
            raise ValueError(
                f"data.target {self.target!r} is not a voice: give allison or ENGINE:NAME with ENGINE one of "
                f"{', '.join(ENGINES)} (e.g. flite:slt)"
            )
        if self.target in self.voices:
            raise ValueError(f"data.target {self.target} is also in data.voices: a voice converted into itself")
        if not 80 <= self.rate_wpm <= 450:
            raise ValueError("data.rate_wpm must be in 80..450 (espeak-ng's range)")
        if self.chunk_frames < 8 or self.batch_size < 1 or self.limit < 0:
            raise ValueError("data.chunk_frames must be >= 8, data.batch_size >= 1 and data.limit >= 0")


@dataclass
class SpeechTrainConfig(EpochTrainConfig):
    epochs: int = 20
    lr: float = 2e-3
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lr <= 0 or self.grad_clip <= 0:
            raise ValueError("train.lr and train.grad_clip must be > 0")


VOCODERS = ("world", "griffin-lim", "differential")


@dataclass
class SpeechEvalConfig:
    num_prompts: int = 20  # held-out sentences `genlab eval` scores (mel-cepstral distortion)
    # The waveform maker of generate and the samples: Griffin-Lim (phases by iteration), WORLD (pitch from the
    # rendering that was converted) or differential (the rendering itself, filtered toward the converted
    # envelope). docs/speech.md compares them.
    vocoder: str = "griffin-lim"
    griffin_lim_iters: int = 32  # Griffin-Lim's phase-recovery iterations

    def __post_init__(self) -> None:
        if self.num_prompts < 1 or self.griffin_lim_iters < 1:
            raise ValueError("eval.num_prompts and eval.griffin_lim_iters must be >= 1")
        if self.vocoder not in VOCODERS:
            raise ValueError(f"eval.vocoder must be one of {', '.join(VOCODERS)}, got {self.vocoder!r}")


SpeechRecipe = recipe_type(
    "tts", data=SpeechDataConfig, model=ConverterConfig, train=SpeechTrainConfig, eval=SpeechEvalConfig
)
