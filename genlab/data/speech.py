"""A human voice with its text: Asterisk's Allison prompts (Debian `asterisk-core-sounds-en-wav`, 8 kHz, one
woman, about 570 prompts), their transcripts (`core-sounds-en.txt.gz`), and the synthetic voices that say the
same text (espeak-ng, flite) — parallel utterances for voice conversion and text-to-speech.

The split is by sentence: a prompt goes to `test` when the sha256 of its normalised text (with SPLIT_SEED) falls
in the lowest TEST_PERCENT, so two files that say the same words are always on the same side.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genlab.errors import GenlabError
from genlab.io.audio import read_wav, resample

RATE = 8_000  # the recordings' rate: every waveform of the speech corpus is at 8 kHz
PACKAGE = "asterisk-core-sounds-en-wav"
VOICE_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
SPLIT_SEED = "allison-2026"
TEST_PERCENT = 10
MAX_CHARS = 1000  # one request's text: about a minute of speech
# What the front end can say: letters, digits, spaces and the punctuation espeak-ng reads or pauses on.
SPEAKABLE = re.compile(r"[A-Za-z0-9\s.,;:!?'\"()&%$#*@/+\-]*")
ENGINES = {"espeak-ng": "espeak-ng", "flite": "flite"}  # engine -> its Debian package


@dataclass(frozen=True)
class Prompt:
    """One recording: its name in the package (`vm-goodbye`, `digits/7`), what it says, and its WAV."""

    name: str
    text: str
    path: Path

    @property
    def words(self) -> str:
        return normalise(self.text)

    @property
    def split(self) -> str:
        digest = hashlib.sha256(f"{SPLIT_SEED}:{self.words}".encode()).digest()
        return "test" if int.from_bytes(digest[:8], "big") % 100 < TEST_PERCENT else "train"


def normalise(text: str) -> str:
    """Lower-case words without punctuation ("Call-Forward on Busy." -> "call forward on busy"): what a
    recogniser's transcript is compared with."""
    return " ".join(re.sub(r"[^a-z0-9']+", " ", text.lower()).split())


def parse_transcripts(text: str) -> dict[str, str]:
    """`name: words` lines (`;` comments and blank lines skipped) -> {name: words}. A line without `: ` is
    refused in one line naming it."""
    out = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        name, sep, words = line.partition(": ")
        if not sep or not name or " " in name:
            raise GenlabError(f"transcripts line {number}: expected 'name: words', got {line[:60]!r}")
        out[name] = words.strip()
    return out


def _require(path: Path, what: str) -> None:
    if not path.exists():
        raise GenlabError(f"{what} needs {path} (Debian: sudo apt-get install {PACKAGE})")


def load_prompts(
    split: str | None = None, voice_dir: Path = VOICE_DIR, transcripts: Path = TRANSCRIPTS
) -> list[Prompt]:
    """The prompts whose WAV exists and whose text is speech (not `[beep tone]`, `<beep ascending>` or
    `(3 seconds of silence)`), sorted by name; `split` "train" / "test" keeps one side."""
    if split not in (None, "train", "test"):
        raise GenlabError(f"unknown split {split!r} (choose train or test)")
    _require(transcripts, "the Allison corpus")
    _require(voice_dir, "the Allison corpus")
    with gzip.open(transcripts, "rt", encoding="utf-8", errors="replace") as fh:
        table = parse_transcripts(fh.read())
    # "(simple tone sound plays)", "(3 seconds of silence)": notes about the recording, not words in it.
    spoken = {name: " ".join(re.sub(r"\([^)]*\)", " ", text).split()) for name, text in table.items()}
    prompts = [
        Prompt(name, text, voice_dir / f"{name}.wav")
        for name, text in sorted(spoken.items())
        if not re.search(r"[\[<]", text) and normalise(text) and (voice_dir / f"{name}.wav").is_file()
    ]
    return [p for p in prompts if split is None or p.split == split]


def read_prompt(prompt: Prompt) -> np.ndarray:
    """(T,) float32 at RATE: the recording, resampled if the package ever ships another rate."""
    samples, rate = read_wav(prompt.path)
    return resample(samples, rate, RATE)


def check_text(text: str) -> str:
    """The text the front end will say (NFKC, spaces collapsed), or one line naming what it cannot say."""
    if not isinstance(text, str):
        raise GenlabError(f"text must be a string, got {type(text).__name__}")
    text = " ".join(unicodedata.normalize("NFKC", text).split())
    if not text:
        raise GenlabError("text is empty: give a sentence to say")
    if len(text) > MAX_CHARS:
        raise GenlabError(f"text has {len(text):,} characters; at most {MAX_CHARS:,} in one request")
    if not SPEAKABLE.fullmatch(text):
        bad = next(c for c in text if not SPEAKABLE.fullmatch(c))
        raise GenlabError(
            f"text holds {bad!r} ({unicodedata.name(bad, 'unnamed')}), which the English front end cannot say"
        )
    if not re.search(r"[A-Za-z0-9]", text):
        raise GenlabError("text has no letter or digit to say")
    return text


def require_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise GenlabError(f"unknown speech engine {engine!r} (known: {', '.join(ENGINES)})")
    if shutil.which(engine) is None:
        raise GenlabError(f"{engine} is not installed (Debian: sudo apt-get install {ENGINES[engine]})")


def parse_voice(voice: str) -> tuple[str, str]:
    """'espeak-ng:en-us+f3' / 'flite:slt' -> (engine, voice name)."""
    engine, sep, name = voice.partition(":")
    if not sep or not name:
        raise GenlabError(f"voice {voice!r}: expected ENGINE:NAME, e.g. espeak-ng:en-us+f3 or flite:slt")
    require_engine(engine)
    return engine, name


def synthesize(voice: str, text: str, rate_wpm: int = 150) -> np.ndarray:
    """What a synthetic `voice` says for `text`: (T,) float32 at RATE. espeak-ng speaks at `rate_wpm`."""
    engine, name = parse_voice(voice)
    text = check_text(text)
    with tempfile.TemporaryDirectory(prefix="genlab-speech-") as tmp:
        wav = Path(tmp) / "say.wav"
        if engine == "espeak-ng":
            command = ["espeak-ng", "-v", name, "-s", str(rate_wpm), "-w", str(wav), "--", text]
        else:
            command = ["flite", "-voice", name, "-t", text, "-o", str(wav)]
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=120)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            raise GenlabError(f"{engine} could not say the text ({type(exc).__name__})") from None
        samples, rate = read_wav(wav)
    return resample(samples, rate, RATE)


def phonemes(text: str) -> str:
    """espeak-ng's IPA phonemes of `text` (what its rendering says), e.g. 'jɔː kˈɔːl ɪz ...'."""
    require_engine("espeak-ng")
    done = subprocess.run(
        ["espeak-ng", "-q", "--ipa", "-v", "en-us", "--", check_text(text)], capture_output=True, text=True, timeout=60
    )
    return " ".join(done.stdout.split())
