"""The benchmark: speed, size, memory and accuracy of the student beside the models it replaces, and the app's
throughput (`python -m bench`)."""
