"""Parameter-efficient fine-tuning: LoRA (lora), bottleneck adapters (adapters) and the methods that apply them."""
