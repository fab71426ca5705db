"""What the training steps share: data, clips, losses, probes, metrics, export, the model card."""
