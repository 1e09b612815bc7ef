"""Spoken digits in the SC09 shape: the words "zero" … "nine", 16 kHz mono, exactly one second each.

`spoken-digits` is synthesized here, deterministically, by the Debian speech synthesizers espeak-ng
(8 English accents × 31 voice variants) and flite (5 voices): 253 speakers, each saying every digit at
3 rates/pitches. A speaker is one voice (engine + accent + variant); its rates/pitches are augmentations of
that speaker, never separate speakers, so the train/test split by speaker holds out whole voices.
The corpus is cached under $GENLAB_DATA_DIR/spoken-digits/ ({train,test}.npz + manifest.json).
The `human` split is the one human speaker on the machine: Asterisk's Allison saying 0 … 9 (8 kHz, upsampled).

A user's own folder loads too (`path`): `<label>/<name>.wav` or a CSV `path,label[,speaker]`; see docs/audio.md.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import warnings
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genlab.core.progress import progress_bar
from genlab.data.images import cache_root, check_labels
from genlab.errors import GenlabError
from genlab.io.audio import CLIP_SAMPLES, SAMPLE_RATE, fit_clip, from_pcm16, read_wav, resample, to_pcm16
from genlab.io.files import atomic_write, atomic_write_text, read_json

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CORPUS = "spoken-digits"
AUDIO_DATASETS = {CORPUS: "espeak-ng + flite, synthesized here; human: Asterisk's Allison"}
SPLITS = ("train", "test", "human")
# Bump when the speakers, settings or clip processing change: an older cache is then synthesized again.
CORPUS_VERSION = 1
INSTALL_HINT = "sudo apt-get install espeak-ng flite"

ESPEAK_ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
# espeak-ng's voice variants (`espeak-ng --voices=variant`) that sound distinct: "" is the accent's own
# voice; caleb and klatt6 are left out because they render the same bytes as klatt.
ESPEAK_VARIANTS = (
    "",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "klatt2",
    "klatt3",
    "klatt4",
    "klatt5",
    "Andy",
    "Annie",
    "aunty",
    "belinda",
    "benjamin",
    "david",
    "john",
    "linda",
    "Michael",
    "steph",
    "grandpa",
    "Alicia",
)
# awb_time is the awb speaker again, so it is not a voice of its own.
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
# Augmentations of one speaker. espeak-ng: (-s words per minute, -p pitch 0-99), 175/50 being its defaults.
# flite: duration_stretch (1 = its own pace); its voices' pitch is left alone, each voice has its own.
ESPEAK_SETTINGS = ((175, 50), (140, 35), (210, 65))
FLITE_STRETCHES = (1.0, 1.2, 0.85)
# Held out for test: espeak-ng (accent a, variant v) with (a + v) % 6 == 0 — a diagonal that takes every
# accent and (almost) every variant into test for some other accent — and flite's rms: 43 of 253 speakers.
HELD_OUT_EVERY = 6
FLITE_HELD_OUT = ("rms",)

HUMAN_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison/digits")
HUMAN_PACKAGE = "asterisk-core-sounds-en-wav"
USER_TEST_PERCENT = 10  # a user folder's test split: 10 % of its speakers, or of its files


@dataclass(frozen=True)
class Speaker:
    """One synthetic voice: engine + voice (+ espeak-ng variant). `held_out` puts all its clips in test."""

    engine: str  # "espeak-ng" | "flite"
    voice: str  # an espeak-ng accent ("en-gb-scotland") or a flite voice ("slt")
    variant: str = ""  # an espeak-ng variant ("f3"); "" for the voice's own
    held_out: bool = False

    @property
    def name(self) -> str:
        return f"{self.engine}:{self.voice}" + (f"+{self.variant}" if self.variant else "")


def _speakers() -> tuple[Speaker, ...]:
    espeak = [
        Speaker("espeak-ng", accent, variant, (a + v) % HELD_OUT_EVERY == 0)
        for a, accent in enumerate(ESPEAK_ACCENTS)
        for v, variant in enumerate(ESPEAK_VARIANTS)
    ]
    flite = [Speaker("flite", voice, "", voice in FLITE_HELD_OUT) for voice in FLITE_VOICES]
    return tuple(espeak + flite)


SPEAKERS = _speakers()


@dataclass
class AudioData:
    """Clips (N, 16000) float32 in [-1, 1] with int64 labels (N,) and the speaker of each clip."""

    name: str
    source: str
    waves: np.ndarray
    labels: np.ndarray
    speakers: list[str]
    class_names: tuple[str, ...] = DIGITS
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.waves.ndim != 2 or self.waves.shape != (n, CLIP_SAMPLES) or self.waves.dtype != np.float32:
            raise GenlabError(
                f"{self.name} from {self.source}: waves have shape {self.waves.shape} "
                f"{self.waves.dtype}, expected ({n}, {CLIP_SAMPLES}) float32"
            )
        if len(self.speakers) != n:
            raise GenlabError(f"{self.name} from {self.source}: {len(self.speakers)} speakers for {n} clips")
        check_labels(self.labels, self.num_classes, f"{self.name} from {self.source}:")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.labels)


# --- synthesis -------------------------------------------------------------------------------------------


def _require_engines(speakers: Sequence[Speaker]) -> None:
    for engine in sorted({s.engine for s in speakers}):
        if shutil.which(engine) is None:
            raise GenlabError(
                f"{engine} is not installed, and {CORPUS} is synthesized with it (Debian: {INSTALL_HINT})"
            )


def engine_versions(engines: Sequence[str] = ("espeak-ng", "flite")) -> dict[str, str]:
    """The first line naming a version in `ENGINE --version`, for the manifest."""
    versions = {}
    for engine in engines:
        try:
            text = subprocess.run([engine, "--version"], capture_output=True, text=True, timeout=30).stdout
        except OSError:
            versions[engine] = "missing"
            continue
        lines = [line.strip() for line in text.splitlines() if "version" in line.lower() or "1." in line]
        versions[engine] = lines[0] if lines else text.strip()[:80]
    return versions


def _settings(speaker: Speaker) -> list[list[str]]:
    """Command-line options of each augmentation of a speaker."""
    if speaker.engine == "espeak-ng":
        return [["-s", str(rate), "-p", str(pitch)] for rate, pitch in ESPEAK_SETTINGS]
    return [["--setf", f"duration_stretch={stretch}"] for stretch in FLITE_STRETCHES]


def synthesize_word(speaker: Speaker, word: str, options: Sequence[str], tmp_dir: Path) -> np.ndarray:
    """One clip: run the engine into a WAV, resample to 16 kHz, fit_clip, quantise to 16 bits. (16000,) int16."""
    wav = tmp_dir / "clip.wav"
    if speaker.engine == "espeak-ng":
        voice = speaker.voice + (f"+{speaker.variant}" if speaker.variant else "")
        command = ["espeak-ng", "-v", voice, *options, "-w", str(wav), word]
    else:
        command = ["flite", "-voice", speaker.voice, *options, "-t", word, "-o", str(wav)]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        raise GenlabError(f"{' '.join(command)} failed: {exc}") from None
    samples, rate = read_wav(wav)
    return to_pcm16(fit_clip(resample(samples, rate, SAMPLE_RATE)))


def _synthesize_speaker(speaker: Speaker, digits: tuple[int, ...]) -> np.ndarray:
    """All clips of one speaker, digit-major then setting: (len(digits) * settings, 16000) int16."""
    with tempfile.TemporaryDirectory(prefix="genlab-tts-") as tmp:
        return np.stack(
            [synthesize_word(speaker, DIGITS[d], options, Path(tmp)) for d in digits for options in _settings(speaker)]
        )


def _sha256(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _save_split(path: Path, pcm: np.ndarray, labels: np.ndarray, speakers: list[str]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append .npz to a bare name
            np.savez(fh, pcm=pcm, labels=labels, speakers=np.array(speakers))

    atomic_write(path, write)


def synthesize(
    out_dir: str | Path,
    speakers: Sequence[Speaker] = SPEAKERS,
    digits: Sequence[int] = range(10),
    workers: int = 2,
    progress: bool = True,
) -> dict:
    """Synthesize `speakers` × `digits` × their settings into out_dir/{train,test}.npz + manifest.json.

    Deterministic: the same speakers and engine versions give the same bytes, whatever `workers` is.
    Returns the manifest. Small `speakers`/`digits` lists make a corpus of a few clips for tests.
    """
    speakers, digits = list(speakers), tuple(int(d) for d in digits)
    if not speakers or not digits:
        raise GenlabError("synthesize needs at least one speaker and one digit")
    if not all(0 <= d < 10 for d in digits):
        raise GenlabError(f"digits must be in 0..9, got {list(digits)}")
    _require_engines(speakers)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    clips = _synthesize_all(speakers, digits, workers, progress)
    manifest: dict = {
        "name": CORPUS,
        "version": CORPUS_VERSION,
        "sample_rate": SAMPLE_RATE,
        "clip_samples": CLIP_SAMPLES,
        "engines": engine_versions(sorted({s.engine for s in speakers})),
        "digits": [DIGITS[d] for d in digits],
        "settings": {"espeak-ng": [list(s) for s in ESPEAK_SETTINGS], "flite": list(FLITE_STRETCHES)},
        "splits": {},
    }
    for split, held_out in (("train", False), ("test", True)):
        chosen = [i for i, s in enumerate(speakers) if s.held_out == held_out]
        manifest["splits"][split] = _write_split(out_dir / f"{split}.npz", chosen, clips, speakers, digits)
    manifest["synthesis_seconds"] = round(time.perf_counter() - start, 1)
    atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def _synthesize_all(speakers: list[Speaker], digits: tuple[int, ...], workers: int, progress: bool) -> list[np.ndarray]:
    """Each speaker's clips (n_digits * settings, CLIP_SAMPLES) int16, in the order of `speakers`."""
    bar = progress_bar(len(speakers), desc=f"synthesizing {CORPUS}", unit="speaker", disable=not progress)
    clips = []
    if workers > 1 and len(speakers) > 1:
        # Each task is one speaker's clips, run as subprocesses of the engines; map keeps the order.
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(_synthesize_speaker, speakers, [digits] * len(speakers)):
                clips.append(result)
                bar.update()
    else:
        for speaker in speakers:
            clips.append(_synthesize_speaker(speaker, digits))
            bar.update()
    bar.close()
    return clips


def _write_split(
    path: Path, chosen: list[int], clips: list[np.ndarray], speakers: list[Speaker], digits: tuple[int, ...]
) -> dict:
    """The clips of the speakers `chosen` (indices) as one .npz; returns the manifest's entry for the split."""
    per_speaker = len(clips[0]) // len(digits)
    pcm = np.concatenate([clips[i] for i in chosen]) if chosen else np.zeros((0, CLIP_SAMPLES), dtype=np.int16)
    labels = np.array([d for _ in chosen for d in digits for _ in range(per_speaker)], dtype=np.int64)
    names = [speakers[i].name for i in chosen for _ in range(len(digits) * per_speaker)]
    _save_split(path, pcm, labels, names)
    return {"clips": len(labels), "speakers": [speakers[i].name for i in chosen], "sha256": _sha256(pcm, labels)}


# --- loading -----------------------------------------------------------------------------------------------


def corpus_dir() -> Path:
    return cache_root() / CORPUS


def _cached_manifest(folder: Path) -> dict | None:
    """The manifest of a complete, current cache in folder, else None."""
    path = folder / "manifest.json"
    if not path.is_file():
        return None
    manifest = read_json(path, f"{CORPUS} manifest")
    if not isinstance(manifest, dict) or manifest.get("version") != CORPUS_VERSION:
        return None
    if not all((folder / f"{split}.npz").is_file() for split in ("train", "test")):
        return None
    return manifest


def is_synthesized(name: str = CORPUS) -> bool:
    return name == CORPUS and _cached_manifest(corpus_dir()) is not None


def audio_sizes(name: str = CORPUS) -> dict[str, int]:
    """Clips per split and speakers of a synthesized corpus, from its manifest alone (fast)."""
    manifest = _cached_manifest(corpus_dir()) if name == CORPUS else None
    if manifest is None:
        raise GenlabError(f"{name} is not synthesized yet")
    splits = manifest["splits"]
    return {
        "train": splits["train"]["clips"],
        "test": splits["test"]["clips"],
        "human": len(DIGITS),
        "speakers": len(splits["train"]["speakers"]) + len(splits["test"]["speakers"]),
    }


def _read_split(folder: Path, split: str, manifest: dict, name: str, source: str) -> AudioData:
    path = folder / f"{split}.npz"
    hint = f"delete {folder} to synthesize it again"
    try:
        with np.load(path) as archive:
            pcm, labels, speakers = archive["pcm"], archive["labels"], archive["speakers"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # empty, cut short, not an npz
        raise GenlabError(f"{path} is damaged ({exc}); {hint}") from None
    if _sha256(pcm, labels) != manifest["splits"][split]["sha256"]:
        raise GenlabError(f"{path} does not match the sha256 in {folder / 'manifest.json'}; {hint}")
    return AudioData(name, source, from_pcm16(pcm), labels.astype(np.int64), [str(s) for s in speakers])


def load_human() -> AudioData:
    """Asterisk's Allison saying 0 … 9 (8 kHz), upsampled to 16 kHz and fitted like the synthetic clips."""
    files = [HUMAN_DIR / f"{d}.wav" for d in range(10)]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise GenlabError(f"the human split needs {missing[0]} (Debian: sudo apt-get install {HUMAN_PACKAGE})")
    clips = []
    for path in files:
        samples, rate = read_wav(path)
        # Quantised like the cached corpus, so every split holds values on the same 16-bit grid.
        clips.append(from_pcm16(to_pcm16(fit_clip(resample(samples, rate, SAMPLE_RATE)))))
    return AudioData(
        CORPUS,
        f"human: Asterisk en_US_f_Allison ({HUMAN_DIR}, 8 kHz upsampled)",
        np.stack(clips),
        np.arange(10, dtype=np.int64),
        ["asterisk:en_US_f_Allison"] * 10,
    )


def _label_of(text: str, where: str) -> int:
    key = text.strip().lower()
    if key.isdigit() and len(key) == 1:
        return int(key)
    if key in DIGITS:
        return DIGITS.index(key)
    raise GenlabError(f"{where}: unknown label {text!r} (use 0-9 or {DIGITS[0]} … {DIGITS[-1]})")


def _user_entries(folder: Path) -> tuple[list[tuple[Path, int, str]], bool]:
    """(wav path, label, speaker) of every clip in a user folder, and whether speakers are known."""
    csvs = sorted(folder.glob("*.csv"))
    if len(csvs) > 1:
        raise GenlabError(f"{folder} holds {len(csvs)} CSV files; keep one `path,label[,speaker]` table")
    if csvs:
        table = csvs[0]
        try:
            with open(table, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise GenlabError(f"cannot read {table}: {exc}") from None
        if not rows or not {"path", "label"} <= set(rows[0]):
            raise GenlabError(f"{table} must have a header with columns path,label (and optionally speaker)")
        has_speaker = "speaker" in rows[0]
        entries = [
            (
                folder / row["path"],
                _label_of(row["label"] or "", f"{table} line {i + 2}"),
                (row.get("speaker") or "") if has_speaker else "",
            )
            for i, row in enumerate(rows)
        ]
        return entries, has_speaker
    entries = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        label = _label_of(sub.name, f"folder {sub}")
        for path in sorted(p for p in sub.iterdir() if not p.name.startswith(".")):
            if path.suffix.lower() != ".wav":
                raise GenlabError(f"{path} is not a .wav file (a label folder holds only WAV clips)")
            # Speech Commands names its clips <speaker>_nohash_<n>.wav: the speaker is known then.
            match = re.match(r"(.+?)_nohash_", path.name)
            entries.append((path, label, match.group(1) if match else ""))
    return entries, bool(entries) and all(speaker for _, _, speaker in entries)


def _in_test(key: bytes) -> bool:
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % 100 < USER_TEST_PERCENT


def load_audio_folder(folder: str | Path, split: str) -> AudioData:
    """A user's folder of 16 kHz WAVs (`<label>/<name>.wav` or a CSV `path,label[,speaker]`), or a folder
    written by `synthesize`. Clips are fitted to one second; test = 10 % of speakers (or of files)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GenlabError(f"{folder}: no such folder of audio clips")
    manifest = _cached_manifest(folder)
    if manifest is not None:
        return _read_split(folder, split, manifest, CORPUS, f"folder {folder}")
    entries, by_speaker = _user_entries(folder)
    if not entries:
        raise GenlabError(f"{folder} holds no clips: expected <label>/<name>.wav folders or a path,label CSV")
    waves, labels, speakers = [], [], []
    for path, label, speaker in entries:
        # Speaker split: all of a speaker's clips on one side. Without speakers: the file's content hash,
        # so a copy of a file can never land on both sides.
        if not path.is_file():
            raise GenlabError(f"{path}: no such file")
        if _in_test(speaker.encode() if by_speaker else path.read_bytes()) != (split == "test"):
            continue
        samples, rate = read_wav(path)
        if rate != SAMPLE_RATE:
            raise GenlabError(
                f"{path} is sampled at {rate} Hz; clips must be {SAMPLE_RATE} Hz "
                f"(e.g. `sox in.wav -r {SAMPLE_RATE} out.wav`)"
            )
        waves.append(fit_clip(samples))
        labels.append(label)
        speakers.append(speaker)
    if not waves:
        warnings.warn(f"{folder}: the {split} split is empty ({len(entries)} clips in all)", stacklevel=2)
    stacked = np.stack(waves) if waves else np.zeros((0, CLIP_SAMPLES), dtype=np.float32)
    return AudioData(folder.name, f"folder {folder}", stacked, np.array(labels, dtype=np.int64), speakers)


def load_audio_dataset(name: str = CORPUS, split: str = "train", path: str | None = None) -> AudioData:
    """The `train` / `test` (held-out speakers) / `human` split of `spoken-digits`, or of a folder `path`.

    The first use synthesizes the corpus (about a minute on 2 cores) into the cache; later ones read it.
    """
    if split not in SPLITS:
        raise GenlabError(f"unknown split {split!r} (choose {', '.join(SPLITS)})")
    if path is not None:
        if split == "human":
            raise GenlabError(
                "the human split is Asterisk's recordings, not part of a folder; with a path choose train or test"
            )
        return load_audio_folder(path, split)
    if name not in AUDIO_DATASETS:
        raise GenlabError(f"unknown audio dataset {name!r} (known: {', '.join(AUDIO_DATASETS)})")
    if split == "human":
        return load_human()
    folder = corpus_dir()
    manifest = _cached_manifest(folder)
    source = f"cache {folder}"
    if manifest is None or [s for sp in ("train", "test") for s in manifest["splits"][sp]["speakers"]] != [
        s.name for s in SPEAKERS if not s.held_out
    ] + [s.name for s in SPEAKERS if s.held_out]:
        manifest = synthesize(folder, SPEAKERS, workers=min(2, os.cpu_count() or 1))
        source = f"synthesized into {folder}"
    return _read_split(folder, split, manifest, name, source)
