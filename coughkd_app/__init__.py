"""The demo app's pieces that are not Gradio: quality checks, the plain-language reading of a prediction, its
translations, the figure, the page's HTML and the downloadable report. app.py wires them into the page."""
