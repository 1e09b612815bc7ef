"""nn.Modules, one readable file per architecture, and decoding (sampling, KV cache, batching)."""
