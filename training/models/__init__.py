"""Network architectures: the EfficientAT teacher backbone (efficientat) and the compact students (students)."""
