"""Shipping: the PyInstaller desktop build (`python -m build.exe`), its smoke run (`python -m build.smoke`) and the
Hugging Face Space folder (`python -m build.space OUT_DIR`). See build/README.md."""
