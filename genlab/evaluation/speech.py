"""Judges of speech that genlab does not train: PocketSphinx (its bundled US-English acoustic model,
dictionary and language model, offline) and a small speaker classifier.

- `SentenceJudge.identify`: the recogniser constrained to a JSGF grammar of the corpus's sentences — which
  sentence was said (exact match of the words).
- `SentenceJudge.transcribe`: open vocabulary with the bundled language model; `word_error_rate` by jiwer.
- `SpeakerClassifier`: logistic regression on an utterance's mean and spread of mel-cepstra; trained on real
  recordings against synthetic voices, it says whether a clip sounds like the real speaker. Given a `channel`
  (`griffin_lim_channel` or `world_channel`: analysis to log-mel and resynthesis by a vocoder, the path a
  synthesized clip takes), it also learns every training clip of both classes through that channel, so the
  channel carries no label and the classifier hears the voice, not the vocoder.
Audio goes in at 8 kHz (genlab.data.speech.RATE) and is upsampled to the recogniser's 16 kHz.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from genlab.data.speech import RATE, normalise
from genlab.data.speech_features import cepstra, griffin_lim, log_mel
from genlab.data.speech_vocoder import VoiceProfile, pitch_track, world_vocode
from genlab.errors import GenlabError
from genlab.io.audio import resample, to_pcm16

RECOGNISER_RATE = 16_000
ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen \
seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(number: str) -> str:
    """'7' -> 'seven', '42' -> 'forty two', longer numbers digit by digit ('911' -> 'nine one one')."""
    value = int(number)
    if len(number) > 2 or (len(number) == 2 and number[0] == "0"):
        return " ".join(ONES[int(d)] for d in number)
    if value < 20:
        return ONES[value]
    return TENS[value // 10] + ("" if value % 10 == 0 else " " + ONES[value % 10])


def spoken_words(text: str) -> str:
    """What a listener would write: normalised words with the numbers spelled out ('Press 1.' -> 'press one')."""
    return " ".join(number_words(w) if w.isdigit() else w for w in normalise(re.sub(r"(\d+)", r" \1 ", text)).split())


def _pcm(samples: np.ndarray) -> bytes:
    return to_pcm16(resample(samples, RATE, RECOGNISER_RATE)).tobytes()


class SentenceJudge:
    """PocketSphinx with two searches: `grammar` (the given sentences, those whose words its dictionary knows)
    and the bundled language model."""

    def __init__(self, sentences: Sequence[str]):
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise GenlabError("the speech judge needs PocketSphinx (pip install pocketsphinx)") from None
        self.decoder = Decoder(samprate=RECOGNISER_RATE, loglevel="FATAL")
        self.lm_search = self.decoder.current_search()
        unique = sorted({spoken_words(s) for s in sentences})
        self.sentences = [s for s in unique if s and all(self.decoder.lookup_word(w) for w in s.split())]
        if not self.sentences:
            raise GenlabError("none of the sentences has only words the recogniser's dictionary knows")
        rules = " | ".join(f"( {s} )" for s in self.sentences)
        self.decoder.add_jsgf_string("corpus", f"#JSGF V1.0;\ngrammar corpus;\npublic <sentence> = {rules} ;\n")

    def knows(self, text: str) -> bool:
        return spoken_words(text) in self.sentences

    def _decode(self, search: str, samples: np.ndarray) -> str:
        # A fresh front end for every clip: PocketSphinx's noise removal and cepstral mean otherwise carry
        # their running estimates over from the clips decoded before, so a clip's words would depend on the
        # order of decoding. reinit_feat rebuilds only the feature extraction (about 40 µs), and a clip then
        # decodes exactly as by a new Decoder.
        self.decoder.reinit_feat()
        self.decoder.activate_search(search)
        self.decoder.start_utt()
        self.decoder.process_raw(_pcm(samples), full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return " ".join(hyp.hypstr.split()) if hyp is not None else ""

    def identify(self, samples: np.ndarray) -> str:
        """The grammar's sentence the recogniser hears in (T,) samples at RATE ('' when none)."""
        return self._decode("corpus", samples)

    def transcribe(self, samples: np.ndarray) -> str:
        """Open-vocabulary words heard in (T,) samples at RATE."""
        return self._decode(self.lm_search, samples)


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER (jiwer) of hypotheses against references, both compared as spoken_words."""
    import jiwer

    return float(jiwer.wer([spoken_words(r) for r in references], [spoken_words(h) or "-" for h in hypotheses]))


def speaker_features(samples: np.ndarray) -> np.ndarray:
    """(T,) at RATE -> (2 * 12,): mean and standard deviation of c1..c12 over the frames that are not
    silence (within 50 dB of the loudest), i.e. the voice's average spectral envelope and its spread."""
    frames = log_mel(samples)
    energy = frames.max(axis=1)
    voiced = frames[energy >= energy.max() - 50 / (10 / np.log(10))]
    c = cepstra(voiced)
    return np.concatenate([c.mean(axis=0), c.std(axis=0)]).astype(np.float64)


def griffin_lim_channel(n_iter: int = 32) -> Callable[[np.ndarray], np.ndarray]:
    """(T,) at RATE -> the same clip analysed to log-mel frames and resynthesised by Griffin-Lim (n_iter)."""
    return lambda samples: griffin_lim(log_mel(samples), n_iter)


def world_channel(profile: VoiceProfile) -> Callable[[np.ndarray], np.ndarray]:
    """(T,) at RATE -> the same clip analysed to log-mel frames and its own pitch, resynthesised by WORLD with
    the profile's aperiodicity (the pitch is kept as it is, not moved into the profile's range)."""
    return lambda samples: world_vocode(log_mel(samples), pitch_track(samples), profile)


class SpeakerClassifier:
    """P(the real speaker) of a clip: standardised speaker_features -> logistic regression.

    channel: when given, each training clip (of both classes) is learnt twice, as recorded and through the
    channel, so a clip's label cannot be read from whether it went through the channel."""

    def __init__(
        self,
        real: Sequence[np.ndarray],
        synthetic: Sequence[np.ndarray],
        channel: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        clips = [*real, *synthetic]
        y = np.r_[np.ones(len(real)), np.zeros(len(synthetic))]
        if channel is not None:
            clips, y = clips + [channel(c) for c in clips], np.r_[y, y]
        x = np.stack([speaker_features(s) for s in clips])  # (clips, 24)
        self.train_clips, self.train_labels = len(clips), y
        self.model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(x, y)

    def is_real(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) bool: clips labelled as the real speaker."""
        return self.model.predict(np.stack([speaker_features(s) for s in clips])).astype(bool)
