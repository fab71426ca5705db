"""Every network: the compact students and the gate (students), the EfficientAT backbone (efficientat) and the
teachers built on it and on Hugging Face wav2vec2-family models (teachers)."""
