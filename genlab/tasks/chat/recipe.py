"""The recipe schema of a chat run (`task: chat`): supervised fine-tuning of a small GPT on conversations,
with the loss on the assistant's tokens only (genlab.data.chat builds the conversations)."""

from __future__ import annotations

from dataclasses import dataclass

from genlab.core.recipe import EpochAdamWTrainConfig, OptimizerChoice, TransformerSize, recipe_type
from genlab.models.generation import MAX_PENALTY


@dataclass
class ChatDataConfig:
    file: str = ""  # a .jsonl of {"kind", "messages"} conversations instead of the built-in five kinds
    # How many training conversations of each built-in kind (0 = none: a single-task run sets the others to 0).
    # A count beyond a kind's training split repeats it (small talk has about 560 conversations).
    translate: int = 2000
    modernize: int = 1500
    fortune: int = 500
    category: int = 1500
    smalltalk: int = 1000
    limit: int = 0  # with data.file: a seeded random `limit` of its training conversations (0 = all)
    system: float = 0.2  # the chance that a conversation starts with a system prompt
    multi_turn: float = 0.2  # the chance that another exchange comes first (the model must answer the last one)
    vocab_size: int = 4096  # byte-level BPE trained on the conversations, plus the chat markers
    block_size: int = 256  # context in tokens; longer conversations are skipped
    batch_size: int = 16
    eval_limit: int = 100  # held-out (test-split) conversations scored per kind

    def __post_init__(self) -> None:
        counts = (self.translate, self.modernize, self.fortune, self.category, self.smalltalk, self.limit)
        if min(counts) < 0 or self.eval_limit < 1:
            raise ValueError("data counts and data.limit must be >= 0, data.eval_limit >= 1")
        if not (0 <= self.system <= 1 and 0 <= self.multi_turn <= 1):
            raise ValueError("data.system and data.multi_turn are chances in [0, 1]")
        if self.vocab_size < 270 or min(self.block_size, self.batch_size) < 1:
            raise ValueError(
                "data.vocab_size must be >= 270 (bytes, special tokens, chat markers), block and batch >= 1"
            )


@dataclass
class ChatModelConfig(TransformerSize):
    n_embd: int = 192


@dataclass
class ChatTrainConfig(EpochAdamWTrainConfig, OptimizerChoice):
    epochs: int = 1
    warmup_iters: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_optimizer()


@dataclass
class ChatEvalConfig:
    batch_size: int = 32  # conversations decoded together (continuous batching)
    max_new_tokens: int = 160  # longest answer

    def __post_init__(self) -> None:
        if min(self.batch_size, self.max_new_tokens) < 1:
            raise ValueError("eval.batch_size and eval.max_new_tokens must be >= 1")


@dataclass
class ChatDecodingConfig:
    """How the run answers unless told otherwise: greedy, with OpenAI's penalties on the tokens of the answer so
    far. The evaluation, the training samples, `genlab chat`, `genlab generate` and the server (for requests
    that leave a penalty out) use it. A small model decoding greedily can fall into a loop ("a man who is a man
    who is ..."); a frequency penalty of 0.3, chosen on the validation conversations, ends every one of them
    (docs/chat.md)."""

    frequency_penalty: float = 0.3  # in [-2, 2]: lower a token's score per time it was generated
    presence_penalty: float = 0.0  # in [-2, 2]: lower a token's score once it was generated

    def __post_init__(self) -> None:
        if not (abs(self.frequency_penalty) <= MAX_PENALTY and abs(self.presence_penalty) <= MAX_PENALTY):
            raise ValueError("decoding.frequency_penalty and decoding.presence_penalty must be in [-2, 2]")


ChatRecipe = recipe_type(
    "chat",
    data=ChatDataConfig,
    model=ChatModelConfig,
    train=ChatTrainConfig,
    eval=ChatEvalConfig,
    decoding=ChatDecodingConfig,
)
