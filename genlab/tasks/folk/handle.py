"""A folk-tune run opened for use: tunes of a requested metre, mode and type, or the continuation of the first
bars of an ABC tune; evaluation against held-out tunes, an n-gram and an LSTM baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genlab.core.checkpoint import load_network
from genlab.core.run import CostMeter, RunDir
from genlab.data.folk import read_prompt
from genlab.data.folk_tokens import FolkTokenizer, Header, tonic_name
from genlab.errors import GenlabError
from genlab.interop.onnx import ExportGraph, token_logits_graph
from genlab.io.validate import check_int, check_seed
from genlab.models.transformer import Transformer, TransformerConfig
from genlab.tasks.contract import RunHandle, TextDecoding
from genlab.tasks.folk.evaluate import evaluate_run
from genlab.tasks.folk.grammar import check_guidance, check_sampling, draw_tunes
from genlab.tasks.folk.output import SUFFIXES, GeneratedTunes
from genlab.tasks.folk.process import EOS_ID
from genlab.tasks.folk.recipe import FolkRecipe

MAX_TUNES = 64  # tunes in one generate call
MAX_PROMPT_CHARS = 100_000
MAX_NEW_TOKENS = 2048  # about 120 bars of a reel


def prompt_text(prompt: str | None, prompt_file: str | None) -> str | None:
    if prompt is not None and prompt_file is not None:
        raise GenlabError("pass --prompt or --prompt-file, not both")
    if prompt_file is None:
        return prompt
    path = Path(prompt_file)
    if not path.is_file():
        raise GenlabError(f"--prompt-file {path}: no such file")
    if path.stat().st_size > MAX_PROMPT_CHARS:
        raise GenlabError(f"--prompt-file {path} is larger than {MAX_PROMPT_CHARS:,} bytes: give the tune's first bars")
    return path.read_text(encoding="utf-8", errors="replace")


def lstm_budget(lstm: str, report: dict[str, Any]) -> float | None:
    """--lstm off | same | SECONDS -> the LSTM baseline's CPU seconds (None: no LSTM)."""
    if lstm == "off":
        return None
    if lstm == "same":
        seconds = report.get("cost", {}).get("cpu_seconds")
        if not seconds:
            raise GenlabError("--lstm same: the run's report.json has no training CPU time (its cost ledger)")
        return float(seconds)
    try:
        seconds = float(lstm)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 86_400:
        raise GenlabError(f"--lstm must be off, same or CPU seconds in (0, 86400], got {lstm!r}")
    return seconds


class FolkRun(RunHandle):
    eval_section = "test"
    output_suffixes = SUFFIXES
    endpoint = "completions"  # the server continues token text ("<tune> M:6/8 K:dorian R:jig ...") or ABC

    def __init__(self, run: RunDir, recipe: FolkRecipe, checkpoint: str = "last"):
        super().__init__(run, recipe, checkpoint)
        self.config, self.model, _, _ = load_network(run, checkpoint, "folk", TransformerConfig, Transformer, "model")
        self.model.eval()
        self.tokenizer = FolkTokenizer()
        if self.config.vocab_size != self.tokenizer.vocab_size:
            raise GenlabError(
                f"{run.path}: the model reads {self.config.vocab_size} tokens, not the folk vocabulary's "
                f"{self.tokenizer.vocab_size}"
            )

    def generate(
        self,
        meter: str = "6/8",
        mode: str = "major",
        tune_type: str = "other",
        tonic: str = "D",
        n: int = 4,
        seed: int = 0,
        temperature: float = 1.0,
        top_k: int = 0,
        max_tokens: int = 384,
        prompt: str | None = None,
        prompt_file: str | None = None,
        prompt_bars: int = 2,
        sampling: str = "metre",
        guidance: float | None = None,
    ) -> GeneratedTunes:
        """n tunes in `meter` and `mode` (written in `tonic`), or, with an ABC prompt (text or a file), n
        continuations of its first `prompt_bars` bars in its own metre, mode and key. sampling "metre" keeps
        every bar full (genlab.tasks.folk.grammar), "free" lets the model alone decide.

        Args:
            meter: the time signature: 2/4, 3/4, 4/4, 2/2, 3/2, 6/8, 9/8 or 12/8
            mode: the tune's mode: major, minor, dorian or mixolydian
            tune_type: reel, jig, hornpipe, slipjig, strathspey, polka, waltz, march, air or other
            tonic: the key's tonic, a note name such as D, F# or Bb
            top_k: 0 = every token may be drawn
            prompt_file: an ABC file whose first bars to continue (instead of `prompt`)
            prompt_bars: how many of the prompt's bars to keep
            sampling: metre (every bar filled exactly), beats (and no note from between two beats across the
                next: the metre's beat grouping) or free
            guidance: metre sampling only: how far to push the tune away from its metre's twin (6/8 and 3/4,
                4/4 and 2/2, 12/8 and 3/2 have bars of the same length); 0 = off, default the recipe's
                eval.guidance
        """
        check_int("--n", n, 1, MAX_TUNES)
        check_seed("--seed", seed)
        check_int("--max-tokens", max_tokens, 1, MAX_NEW_TOKENS)
        check_int("--top-k", top_k, 0, self.config.vocab_size)
        check_int("--prompt-bars", prompt_bars, 1, 64)
        text = prompt_text(prompt, prompt_file)
        if guidance is None:
            guidance = 0.0 if sampling == "free" else self.recipe.eval.guidance
        if text is None:
            prefix, key_tonic = Header(meter, mode, tune_type).tokens(), tonic_name(tonic).replace("-", "b")
        else:
            prefix, key_tonic = read_prompt(text, prompt_bars)
        tunes = draw_tunes(self.model, prefix, n, seed, temperature, top_k or None, max_tokens, sampling, guidance)
        return GeneratedTunes(tunes, key_tonic)

    def text_decoding(self) -> TextDecoding:
        return TextDecoding(self.model, self.tokenizer, self.encode_prompt, frozenset({EOS_ID}))

    def encode_prompt(self, text: str) -> list[int]:
        """A served prompt: event tokens ("<tune> M:6/8 K:dorian R:jig"), or ABC (its header and first 2 bars)."""
        if text.lstrip().startswith("<tune>"):
            return self.tokenizer.encode(text)
        return self.tokenizer.encode(" ".join(read_prompt(text, 2)[0]))

    def export_graph(self) -> ExportGraph:
        """The transformer without a cache: event-token ids -> logits at every position."""
        return token_logits_graph(self.model, "folk event tokens (genlab.data.folk_tokens.VOCAB)")

    def evaluate(
        self,
        n: int | None = None,
        seed: int = 0,
        lstm: str = "off",
        sampling: str | None = None,
        guidance: float | None = None,
    ) -> dict[str, Any]:
        """Held-out NLL per note event beside a Kneser-Ney n-gram's (and an LSTM's trained for `lstm` CPU
        seconds: "same" = the run's own training CPU time, "off" = none), and statistics of n tunes generated
        with the test tunes' headers against the test tunes (`sampling` and `guidance` default to the recipe's
        eval section); report.json `test`.

        Args:
            sampling: metre, beats or free (default the recipe's eval.sampling)
            guidance: how far generated tunes are pushed away from their metre's twin (6/8 and 3/4, 4/4 and 2/2);
                default the recipe's eval.guidance
        """
        e = self.recipe.eval
        n = e.num_samples if n is None else n
        check_int("--n", n, 1, 10_000)
        e.sampling = e.sampling if sampling is None else check_sampling(sampling)
        e.guidance = check_guidance(e.guidance if guidance is None else guidance, e.sampling)
        lstm_seconds = lstm_budget(lstm, self.report)
        meter = CostMeter()
        metrics = evaluate_run(self, n, seed, lstm_seconds)
        metrics["checkpoint"] = self.checkpoint
        metrics["eval_seconds"] = meter.snapshot()["wall_seconds"]
        self.run.update_report(self.eval_section, metrics)
        return metrics
