"""Moving genlab models to and from other ecosystems: Hugging Face layouts (hf) and ONNX graphs (onnx)."""
