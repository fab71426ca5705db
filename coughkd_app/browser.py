"""What the page runs in the browser, and its style: plain strings for `launch(head=..., css=...)` and events' `js=`.

Why a script at all: Gradio's audio upload only takes files whose MIME type the browser reports as audio/*, and
Chromium and Android report .webm and .3gp as video/webm and video/3gpp (a recording is a video container without
video), so the page refused what Chrome itself records. The script gives such files an audio type, by their
extension, before Gradio's check sees them (file picker and drag and drop), and lists the extensions in the picker's
`accept`, so phone pickers offer them. It also makes the verdict a live region, so screen readers announce it.
"""
from __future__ import annotations

import json

# What the decoder reads (coughkd.audio.FORMATS: its demuxers), by extension, with the MIME type to give it.
UPLOAD_TYPES = {
    ".wav": "audio/wav", ".w64": "audio/x-w64", ".aif": "audio/aiff", ".aiff": "audio/aiff", ".aifc": "audio/aiff",
    ".caf": "audio/x-caf", ".au": "audio/basic", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
    ".oga": "audio/ogg", ".opus": "audio/ogg", ".webm": "audio/webm", ".mka": "audio/x-matroska",
    ".m4a": "audio/mp4", ".mp4": "audio/mp4", ".aac": "audio/aac", ".3gp": "audio/3gpp", ".3g2": "audio/3gpp2",
    ".amr": "audio/amr", ".wv": "audio/wavpack",
}

HEAD = """<script>
(() => {
  const TYPES = __TYPES__;
  const ACCEPT = Object.keys(TYPES).join(",");
  const audioType = (file) => TYPES["." + file.name.toLowerCase().split(".").pop()];
  function relabelled(files) {
    const list = Array.from(files || []);
    if (!list.some((f) => !f.type.startsWith("audio/") && audioType(f))) return null;
    const transfer = new DataTransfer();
    for (const f of list) {
      const type = !f.type.startsWith("audio/") && audioType(f);
      transfer.items.add(type ? new File([f], f.name, {type, lastModified: f.lastModified}) : f);
    }
    return transfer;
  }
  const isAudioInput = (el) => el instanceof HTMLInputElement && el.type === "file" &&
    (el.accept || "").includes("audio/");
  document.addEventListener("change", (event) => {
    if (!isAudioInput(event.target)) return;
    const transfer = relabelled(event.target.files);
    if (transfer) event.target.files = transfer.files;
  }, true);
  document.addEventListener("drop", (event) => {
    const zone = event.target instanceof Element && event.target.closest("#recording");
    const transfer = zone && event.dataTransfer && relabelled(event.dataTransfer.files);
    if (transfer) Object.defineProperty(event, "dataTransfer", {value: transfer});
  }, true);
  function upgrade() {
    for (const input of document.querySelectorAll("#recording input[type=file]")) {
      if (!input.accept.includes(".webm")) input.accept = input.accept + "," + ACCEPT;
    }
    const verdict = document.getElementById("verdict");
    if (verdict && !verdict.hasAttribute("aria-live")) {
      verdict.setAttribute("role", "status");
      verdict.setAttribute("aria-live", "polite");
    }
  }
  new MutationObserver(upgrade).observe(document.documentElement, {childList: true, subtree: true,
                                                                      attributes: true, attributeFilter: ["accept"]});
})();
</script>""".replace("__TYPES__", json.dumps(UPLOAD_TYPES))

# The last input of an event that wants it: the page's language (Gradio's choice, from the browser or its settings)
# and the browser's local time, for words and times the server writes.
CONTEXT_JS = """(...inputs) => [...inputs.slice(0, -1), JSON.stringify({
  lang: document.documentElement.lang || navigator.language || "en",
  time: new Date().toLocaleString(document.documentElement.lang || undefined,
                                  {dateStyle: "medium", timeStyle: "short"})})]"""

# After a result: bring it into view (below the fold on a phone), without animation if the person asked for less.
SHOW_RESULT_JS = """() => {
  const verdict = document.getElementById("verdict");
  if (!verdict) return;
  const calm = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  verdict.scrollIntoView({block: "start", behavior: calm ? "auto" : "smooth"});
}"""

CSS = """
.history { display: flex; flex-wrap: wrap; gap: 0.75rem; list-style: none; padding: 0; margin: 0; }
.history-card { flex: 1 1 10rem; max-width: 18rem; display: flex; flex-direction: column; gap: 0.2rem;
  border-left: 6px solid var(--neutral-400); padding: 0.5rem 0.75rem; background: var(--block-background-fill);
  overflow-wrap: anywhere; }
.history-name { font-weight: 600; }
.history-time { font-size: 0.85rem; color: var(--body-text-color-subdued); }
.verdict { border-left: 6px solid var(--neutral-400); padding: 0.25rem 0 0.25rem 1rem; }
.verdict-positive { border-color: #b3261e; }
.verdict-negative { border-color: #1e7b34; }
.verdict-retake, .verdict-error { border-color: #8a5a00; }
.verdict-idle { border-color: transparent; padding-left: 0; }
.verdict h2.verdict-headline { font-size: 1.5rem; margin: 0.2rem 0 0.5rem; }
.verdict-for { font-size: 0.95rem; color: var(--body-text-color-subdued); margin: 0; overflow-wrap: anywhere; }
.verdict details summary { cursor: pointer; font-weight: 600; }
.verdict details summary:focus-visible, .report-link:focus-visible { outline: 3px solid var(--color-accent);
  outline-offset: 2px; }
.result-figure { margin: 0; }
.result-figure img { width: 100%; max-width: 600px; height: auto; }  /* its natural width: crisp, never blown up */
.report-link { display: inline-block; padding: 0.5rem 1rem; border-radius: var(--button-large-radius);
  border: 1px solid var(--button-secondary-border-color); background: var(--button-secondary-background-fill);
  color: var(--button-secondary-text-color); font-weight: 600; text-decoration: none; }
"""
