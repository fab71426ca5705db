"""The model card: every section of assets/MODEL_CARD.md is rendered here, from the run's figures (reproduce), the
cross-validation's (crossval) and the benchmark's (python -m bench), and written between its markers."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from bench.render import fmt_ms, fmt_x
from bench.timing import REFERENCE, ratio
from coughkd.audio import SAMPLE_RATE
from coughkd.features import HOP_LENGTH, N_MELS
from training.lib.distillation import recipe
from training.lib.metrics import format_auc, gate_tables, markdown_table, paired_table
from training.lib.sounds import LATER_SETTINGS
from training.models.students import ACTIVE_DB

# The card's speed section lies between these markers; `python -m bench` rewrites it for the model it measured.
BENCH_START, BENCH_END = "<!-- bench:start -->", "<!-- bench:end -->"
# ... and its cross-validation section between these; `python -m training.crossval` rewrites it for the recipe it ran.
CROSSVAL_START, CROSSVAL_END = "<!-- crossval:start -->", "<!-- crossval:end -->"


def positive_share(counts: dict[str, int]) -> str:
    """"call-center 71%, telegram 18%" from the loader's "source/label" counts."""
    sources = sorted({key.rsplit("/", 1)[0] for key in counts})
    shares = []
    for source in sources:
        positives, total = counts.get(f"{source}/1", 0), counts.get(f"{source}/0", 0) + counts.get(f"{source}/1", 0)
        shares.append(f"{source} {positives / max(total, 1):.0%}")
    return ", ".join(shares)


def distillation(d: dict) -> str:
    """The distillation recipe in words, from the checkpoint's own settings."""
    parts = [f"hard labels (weight {d['hard_weight']})",
             f"teacher targets at temperature {d['temperature']} (weight {d['soft_weight']})"]
    if d["embedding_weight"] > 0:
        parts.append(f"matching the teacher's embedding (weight {d['embedding_weight']})")
    if d["layer_weight"] > 0:
        parts.append(f"predicting the teacher's hidden layers {d['layers']} (weight {d['layer_weight']})")
    return " + ".join(parts) + (" with SpecAugment masks" if d["spec_augment"] else "")


def gate_teacher(config: dict) -> str:
    """The card's word on the gate's teacher where the COVID-19 student has another one."""
    if config["teacher"] == "efficientat":
        return ""
    return (" It is the COVID-19 student's teacher only: the sound-type gate's teacher is EfficientAT mn04, since "
            "the gate learns from AudioSet tags and a wav2vec2-family model has none.")


def cough_targets(config: dict) -> str:
    """What the students' auxiliary cough head learns from: mn04's tags blended with the known labels, or the known
    labels alone when the teacher has no AudioSet tags (training.teacher.cough_target)."""
    if config["teacher"] == "efficientat":
        return "mn04's AudioSet Cough/Throat clearing/Sneeze vs Speech/Music tags"
    return "the known labels alone (this teacher has no AudioSet tags)"


def quantisation(info: dict) -> str:
    """How the INT8 model was made, with the validation AUCs that decided it when they were measured."""
    if "fp32_metric" not in info:
        return info.get("method", "n/a")
    text = (f"{info['method']}; validation within-source AUC FP32 {info['fp32_metric']:.3f}, "
            f"plain PTQ {info['ptq_metric']:.3f}")
    return text + (f", shipped INT8 {info['int8_metric']:.3f}" if info["method"] == "accuracy_control" else "")


def families_heading(families: list[str]) -> str:
    """The line over the student-family table: a comparison when the run trained several families."""
    if len(families) > 1:
        return ("Student families compared (PyTorch, same clips, same teacher cache; within-source AUC = mean of the "
                "per-source AUCs):")
    return (f"The {families[0]} student (PyTorch; within-source AUC = mean of the per-source AUCs; "
            "`--families=cnn,wav2vec` trains the tiny waveform transformer beside it for comparison):")


def previous_note(previous: dict | None) -> str:
    """What the "previous model" rows are, when the run was given one (``previous_scores``)."""
    if previous is None:
        return ""
    return (f"\nThe previous model ({previous['model']}) is the model this one replaces, scored on the same test "
            f"recordings by its own runtime (`docs/previous_model_scores.py`: `{previous['command']}`); its paired "
            "difference is what this release changed.\n")


def unusable_note(refused: list[str]) -> str:
    """The test clips the runtime refused as unusable audio before the gate (they are in no table)."""
    if not refused:
        return ""
    counts = ", ".join(f"{n} {name}" for name, n in sorted(Counter(refused).items()))
    return f"\nRefused as unusable audio (too quiet, silent) before the gate, so in no table above: {counts}.\n"


def resumed_note(steps: list[str]) -> str:
    """Which steps a ``--resume=True`` run loaded from its run folder, so the minutes above are read right."""
    if not steps:
        return ""
    return (f" Resumed: {', '.join(steps)} loaded from the run folder (outputs of an earlier run of this checkout), "
            "so the minutes count only the steps after them.")


def roc_image(card: Path) -> Path:
    """Where the run's test-split ROC plot goes: beside the card, so its picture shows wherever the card is read."""
    return card.with_name(f"{card.stem}_roc.png")


def gate_image(card: Path) -> Path:
    """Where the gate's ROC plot goes, beside the card too."""
    return card.with_name(f"{card.stem}_gate_roc.png")


def model_card(config: dict, results: dict, summary: dict) -> str:
    """The card: what the model is, how it was made, and the figures this run measured, nothing else."""
    s = summary
    families_table = "\n".join(
        f"| {f} | {c['parameters']:,} | {c['val_auc']:.3f} | {s['family_test'][f]:.3f} |"
        for f, c in s["checkpoints"].items())
    per_source = results["student_int8"]["test_operating_point"]["per_source"]
    val_points = s["val_operating_points"]["per_source"]
    op_rows = "\n".join(f"| {src} | {val_points[src]['sensitivity']:.3f} | {val_points[src]['specificity']:.3f} | "
                         f"{v['sensitivity']:.3f} | {v['specificity']:.3f} |" for src, v in per_source.items())
    g, gate_test, coswara = s["gate"], s["gate_test"], s["coswara"]
    gate_data = g["data"]
    member_sources = sorted(next(iter(s["members"].values())))
    members_table = "\n".join(f"| {name} | " + " | ".join(f"{aucs[src]:.3f}" for src in member_sources) + " |"
                               for name, aucs in s["members"].items())
    return f"""# Model card: coughkd student ({s['shipped']})

**A research demo, not a medical device.** It was trained on {sum(s['splits'].values())} induced-cough recordings
from one public data set, negatives carry no laboratory test, and it has not been validated clinically. Do not use
it to decide anything about anyone's health.

## What it is
- A {s['checkpoints'][s['shipped']]['parameters']:,}-parameter COVID-19 student ({s['shipped']} family) and a
  {g['parameters']:,}-parameter sound-type gate, exported with their front end as one OpenVINO graph from 16 kHz
  audio of any length to scores, in one call: inside it a low-pass to the 4 kHz telephone band, the {N_MELS}-band
  log-mel every {1000 * HOP_LENGTH // SAMPLE_RATE} ms (`training/models/frontend.py`, the module training computes its features with) and
  the frame energies on which `coughkd.events` finds the events; out of it the scores of the whole recording
  (recordings over 30 s in 30 s pieces) and of every 1 s window, which give each event its own.
- The gate decides first: it hears each recording as cough, speech, breathing or other, and a recording that is not
  a cough gets no COVID-19 score at all (the app and CLI say what they heard). A recording is a cough if any of it
  sounds like one, so speech around the coughs does not hide them; the COVID-19 score then reads the whole
  recording, non-cough parts included, as the student was trained on whole recordings. The cross-validation below
  measures the alternative, cutting out the events the gate hears as speech or other sounds first.
- The COVID-19 logit is the mean of two members, each fitted to the same distillation loss: a linear read-out
  (L2-penalised) of standardised MFCC statistics of the same log-mel, computed inside the network and fitted
  outright (L-BFGS) on the whole training clips first, then frozen; and the CNN's head, trained by SGD.
  Exploratory cross-validation (`docs/experiments.md`) motivated the read-out: it found the MFCC
  statistics stronger than the CNN on Telegram audio. The member rows below show what each member scores in this
  recipe, on the test split and in cross-validation.
- Shipped as OpenVINO IR, FP32 and INT8 (NNCF post-training quantisation: {quantisation(s['export']['int8'])}).
  FP32 IR vs PyTorch max abs difference: {s['export']['fp32_parity_max_abs_diff']:.1e}.
- Teacher: {s['teacher']['description']}, run once over each whole
  recording.{gate_teacher(config)} Its COVID-19 head is the mean of two linear probes fitted on the
  training split, one per source each (labels balanced, regularisation by inner cross-validation): on the teacher's
  embedding, and on MFCC statistics of the same clip (`training.lib.probe`; on the training clips the teacher's
  logits are cross-fitted, so the student learns what the teacher predicts for recordings it has not seen).
  Teacher within-source AUC: validation {s['teacher']['val_within_source_auc']:.3f}, test
  {s['teacher']['test_within_source_auc']:.3f} (test figures with CIs in the table below).
  Distillation: {distillation(recipe(s['checkpoints'][s['shipped']]))}, on whole recordings (batches of
  recordings of nearly equal length, cut to the shortest); its auxiliary cough head (not exported) learns from
  {cough_targets(config)} on the data set's coughs and on
  {config['non_cough_clips']} generated non-cough clips (espeak-ng speech, noise, tones, music-like sounds).
- The gate (`training.gate`; `students.GateEnsemble`, a mean of `students.SoundTypeCNN` networks) is distilled from
  mn04's AudioSet tags on real recordings: its targets blend each clip's known sound type with the tagger's
  sound-type distribution (weight {g['config']['tag_weight']}; `training.lib.sounds` says which AudioSet classes
  make each type), on whole clips and on event windows{gate_recipe(g['config'])}.
  Throat clearing counts as a cough; sneezes and laughter count as other sounds.

## Data
- `covid19-cough` (CC0; {s['data']['found']:,} files; call-centre 8 kHz telephone audio and Telegram 48 kHz audio).
  Exact duplicates were merged and the {s['data']['conflicting_groups']} duplicate groups whose labels disagree were
  dropped; {s['data']['undecodable']} unusable files were skipped. Kept: {s['data']['counts']}.
- Split 70/15/15 grouped by content hash, stratified by source and label, seed {config['seed']}: train / val / test =
  {s['splits']['train']} / {s['splits']['val']} / {s['splits']['test']} recordings.
- Channel confound: positives are {s['positive_share']} of the kept recordings, so a pooled AUC rewards
  recognising the channel. All audio, in training and at run time, is band-limited to the 4 kHz telephone band,
  and the losses balance the labels within each source. **The within-source AUCs are the headline figures.**

## Results on the held-out test split (95% bootstrap CI)
{markdown_table(results)}
The shipped INT8 student against the others, paired: each bootstrap replicate resamples the same test recordings for
both models, so the noise they share (an easy or a hard draw of recordings) cancels, and a difference whose CI
excludes 0 is one this split can tell apart:

{paired_table('student_int8', results['student_int8']['paired'])}{previous_note(s['previous'])}
{families_heading(list(s['checkpoints']))}

| family | parameters | val within-source AUC | test within-source AUC |
|---|---|---|---|
{families_table}

The shipped student's COVID-19 head, member by member (PyTorch, test split, AUC within each source):

| member | {' | '.join(member_sources)} |
|---|{'---|' * len(member_sources)}
{members_table}

Operating point per recording channel, threshold {s['threshold']:.3f} chosen on validation data for 90% pooled
specificity: on validation (the PyTorch student the threshold was chosen on; the app quotes these) and on the test
split (the shipped INT8 model):

| source | validation sensitivity | validation specificity | test sensitivity | test specificity |
|---|---|---|---|---|
{op_rows}

![ROC curves of every model on the test split, per source and pooled]({roc_image(Path(config['card'])).name})

## Sound-type gate on held-out real recordings
Data: the covid19-cough recordings in their splits above; Coswara (`coswara-20200413`, CC BY 4.0: the coughs,
breathing, counting and vowels of the same people on the same microphones; split by participant, seed
{config['seed']}; files its listeners rated bad left out), ESC-10 folds 1-4 (everyday sounds, CC BY; folds 1-2
train, 3 validation, 4 test) and Speech Commands (one-word speech, CC BY 4.0; split by speaker); a telephone copy
(8 kHz, G.711 mu-law) of every wideband clip; generated clips; and cough recordings made here with speech or an
everyday sound before or after the cough. Clips per split: {s['gate_splits']}. What the loaders dropped:
{', '.join(f"{name}: {', '.join(f'{n} {reason}' for reason, n in r['excluded'].items()) or 'nothing excluded'}, {len(r['undecodable'])} undecodable" for name, r in gate_data.items())}.

The threshold on the recording's cough probability, {gate_test['threshold']:.3f}, was chosen on the validation
clips as the one whose worst group is furthest above its bar. On the test split, through the shipped INT8 model as
users run it (95% Wilson intervals; "telephone" rows are the 8 kHz copies):

{gate_tables(gate_test)}{unusable_note(gate_test['unusable'])}
Gate ROC on the real test recordings (coughs against every other sound type): AUC {gate_test['roc']['auc']:.3f}.

![The gate's ROC on the held-out real recordings]({gate_image(Path(config['card'])).name})

Outside the training population: of the {coswara['n']} held-out Coswara cough recordings (healthy people in India,
web browsers; no COVID-19 positives in this batch), the gate accepted {coswara['accepted']} and
{coswara['flagged']} ({coswara['flagged'] / max(coswara['n'], 1):.0%}) were flagged COVID-19 positive at the
shipped threshold: the specificity outside the call-centre and Telegram recordings the threshold was set on is
about {1 - coswara['flagged'] / max(coswara['n'], 1):.0%}, not the validation figure above.

## Cross-validation of the recipe (training and validation recordings)
Validation and test hold few Telegram positives each, so one split's Telegram AUC is a noisy draw. Each fold repeats
this recipe (teacher probes, distillation, baseline) on the other folds and scores the held-out one.
{CROSSVAL_START}
Not measured for this recipe yet: run `python -m training.crossval --run_dir={config['run_dir']}`, which writes its
figures here.
{CROSSVAL_END}

## Speed and size
{BENCH_START}
Not measured for this model yet: run `python -m bench`, which writes its figures here.
{BENCH_END}

## Limits of the evidence
- The test split holds only {s['splits']['test']} recordings, few of them Telegram positives: the confidence
  intervals are wide, and differences of a few hundredths between models are within them.
- The cross-validation runs on the recordings that the recipe's design choices (the MFCC read-out, its penalty)
  were made on, so it is somewhat optimistic for this recipe; the test split chose nothing.
- No participant identifiers exist, so the same person may appear in train and test under different recordings.
- Negatives carry no laboratory test; only some positives are PCR-verified.
- An independent held-out set (218 recordings) is kept outside this repository for the project's own checks.

## How it was made
```
{s['command']}
```
Run on {s['machine']}, {s['minutes']:.1f} minutes, torch {torch.__version__}.{resumed_note(s['resumed'])}
"""


def gate_recipe(config: dict) -> str:
    """The card's words on the gate's training beyond its targets: the read-out of every AudioSet class, the
    augmentations, the epochs and the members whose mean is the gate."""
    config = {**LATER_SETTINGS, **config}
    words = []
    if config["speed_copies"] > 1.0:
        words.append(f"; beside each real wideband training recording, a copy played up to {config['speed_copies']:g} "
                     "times faster or slower (pitch and pace together), which the tagger tags afresh: other voices "
                     "and sneezes than the few recorded (docs/experiments.md)")
    if config.get("all_tags_weight"):
        words.append(f"; while it trains, a linear read-out of its embedding also learns the tagger's probabilities of "
                     f"all 527 AudioSet classes (weight {config['all_tags_weight']}; the read-out is dropped after "
                     "training), so the tagger's finer judgement (a bark, a sneeze, a rooster are not coughs, whatever "
                     "the four types say) shapes what the gate hears")
    if config["sneeze_weight"] != 1.0:
        words.append(f"; ESC-10's sneezes (and their copies) weigh {config['sneeze_weight']:g} times their share of the "
                     "loss: the everyday sound most like a cough, a tenth of ESC-10 (docs/experiments.md)")
    if config.get("gain_db") or config.get("tilt_db"):
        words.append(f"; each training input at a random level (+-{config.get('gain_db', 0):g} dB) and spectral tilt "
                     f"(+-{config.get('tilt_db', 0):g} dB across the band), as other microphones give it")
    if config.get("noise_snr_max_db"):
        words.append(f"; half of them with steady background noise at {config['noise_snr_min_db']:g}-"
                     f"{config['noise_snr_max_db']:g} dB signal-to-noise, as most rooms have (docs/experiments.md: "
                     "without it, coughs in a noisy room were refused)")
    if config.get("pitch_bins") or config.get("speed_max", 1.0) != 1.0:
        words.append(f"; half of them shifted by up to {config.get('pitch_bins', 0)} mel bins and played up to "
                     f"{config.get('speed_max', 1.0):g} times faster or slower, as other voices and paces give them")
    if config.get("reverb_rt60_max_s"):
        words.append(f"; half of them with a room's reverberant tail (reverberation time 0.2-"
                     f"{config['reverb_rt60_max_s']:g} s), as a phone away from the mouth hears it")
    if config["pooling"] == "max":
        words.append("; each network pools its frames over time by their maximum alone (not the mean beside it), so "
                     "a cough heard in a few frames of a long quiet recording counts as much as in a short one")
    if config["pooling"] == "active":
        words.append("; each network pools its frames over time (their mean and maximum) over the recording's active "
                     f"span alone, from its first to its last frame within {ACTIVE_DB:g} dB of its loudest, so quiet "
                     "or digital silence before and after the sound is not heard at all: ESC-10 cuts its sneezes with "
                     "seconds of silence after them, which a gate could otherwise learn as a sign of \"not a cough\"")
    if config["quiet_padding"] > 1.0:
        words.append(f"; half the training batches set inside up to {config['quiet_padding']:g} times their length "
                     "(at most 10 s) of their own background, as a recording may hold one cough in seconds of quiet")
    words.append(f"; {config['epochs']} epochs")
    if config.get("members", 1) > 1:
        words.append(f"; {config['members']} such networks, from seeds {config['seed']} to "
                     f"{config['seed'] + config['members'] - 1}, and the gate is the mean of their logits")
    return "".join(words)


def in_words(paired: dict[str, dict], model: str) -> str:
    """What each paired difference says, read off its 95% CI: above 0, below 0, or not told apart from 0."""
    sentences = []
    for name, comparison in paired.items():
        parts = []
        for panel, d in [*comparison["per_source"].items(), ("pooled", comparison["pooled"])]:
            if d is None:
                continue
            low, high = d["ci"]
            verdict = ("better" if low > 0 else "worse" if high < 0 else "not told apart (the CI includes 0)")
            parts.append(f"{panel} {d['difference']:+.3f}, {verdict}")
        sentences.append(f"against the {name.split(',', 1)[-1].strip()}: " + "; ".join(parts))
    return f"In words, the {model}: " + ". And ".join(sentences) + "."


def section(results: dict, report: dict) -> str:
    """The card's cross-validation text: per-source out-of-fold AUCs with bootstrap CIs."""
    first = next(iter(results.values()))["per_source"]
    sources = list(first)
    counts = ", ".join(f"{s} n={g['n']}, {g['positives']} positive" for s, g in first.items())
    lines = [f"Out-of-fold AUC over the {report['recordings']} training and validation recordings ({counts}; "
             f"{report['folds']}-fold, stratified by source and label; the test split is never read), with 95% "
             "bootstrap CIs:", "",
             "| model | " + " | ".join(f"AUC {s}" for s in sources) + " |", "|---|" + "---|" * len(sources)]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(format_auc(g) for g in r["per_source"].values()) + " |")
    lines += ["", "The student against the others on the same out-of-fold scores, paired (one bootstrap resamples the "
              "same recordings for both):", "", paired_table("student", report["paired"]).rstrip("\n"),
              "", "The runtime scores a cough recording whole, non-cough parts included, as the student was trained. "
              "The alternative, cutting out the events the gate hears as speech or other sounds "
              f"({report['recordings_cut']} of the {report['recordings']} recordings hold some), paired against the "
              "same students on the whole recordings:", "",
              paired_table("cough parts", report["cut_minus_whole"]).rstrip("\n"),
              "", f"Measured with `{report['command']}` ({report['date']}, {report['minutes']:.0f} min)."]
    if "ablation" in report:  # before the closing "Measured with" line
        lines[-1:-1] = [("What distillation adds: on the same folds, students distilled with the hard-label loss "
                         "alone (soft_weight=0) and with the teacher's targets alone (hard_weight=0), rows above; "
                         "the shipped recipe minus each, paired (against hard labels only: with distillation minus "
                         "without):"), "", paired_table("shipped recipe", report["ablation"]).rstrip("\n"), "",
                         in_words(report["ablation"], "shipped recipe"), ""]
    return "\n".join(lines)


def snippet(report: dict) -> str:
    """A paragraph for the README's performance section and the model card, quoting this report."""
    h, m = report["headline"], report["machine"]
    rows = {(r["model"], r["clip_s"], r["threads"]): r for r in report["latency"]}
    clip = h["clip_s"]

    def target(threads: int) -> str:
        goal = h.get("speedup_targets", {}).get(str(threads))
        if goal is None:
            return ""
        met = ratio(rows[("wav2vec2_base_ov_fp32", clip, threads)]["median_ms"],
                    rows[(REFERENCE, clip, threads)]["median_ms"]) >= goal
        return f" (target {fmt_x(goal)} end to end: {'met' if met else 'not met'})"

    parts = []
    for threads in report["threads"]:
        int8 = rows.get((REFERENCE, clip, threads))
        bare = rows.get(("student_ir_int8", clip, threads))
        w2v = rows.get(("wav2vec2_base_ov_fp32", clip, threads))
        if not (int8 and bare and w2v):
            continue
        parts.append(f"with {threads} thread{'s' if threads > 1 else ''}, {fmt_ms(int8['median_ms'])} ms for the "
                     f"whole coughkd predict path ({fmt_ms(bare['median_ms'])} ms of it the INT8 network) against "
                     f"{fmt_ms(w2v['median_ms'])} ms for wav2vec2-base on OpenVINO FP32: "
                     f"{fmt_x(ratio(w2v['median_ms'], int8['median_ms']))} slower end to end, "
                     f"{fmt_x(ratio(w2v['median_ms'], bare['median_ms']))} network to network" + target(threads))
    level = next((lv for lv in report.get("app", {}).get("levels", []) if lv["clients"] == h["app_max_clients"]), None)
    text = (f"On {m['cpu']} ({m['cores']} cores), medians for a {clip:g} s recording: " + "; ".join(parts) +
            f". wav2vec2-base has {fmt_x(h['wav2vec2_parameters_vs_student'])} more parameters.")
    if level:
        text += (f" The demo app served {level['clients']} concurrent clients at {level['requests_per_s']:.1f} "
                 f"requests/s (p99 {level['p99_ms']:.0f} ms), "
                 f"{'every answer correct' if level['all_correct'] else 'with WRONG answers'}.")
    ready_s = report.get("app", {}).get("ready_after_imports_s")
    if ready_s is not None:
        text += f" `python app.py` was ready to serve {ready_s:.1f} s after its imports."
    return f"{text}\nMeasured with `{report['command']}` ({report['date']}); full tables in reports/bench.md."


def quote(path: Path, text: str, markers: tuple[str, str] | None = None) -> bool:
    """Put `text` between a pair of markers of a document (README, model card), by default the bench markers;
    False if it has none."""
    from training.lib.card import BENCH_END, BENCH_START

    opening, closing = markers or (BENCH_START, BENCH_END)
    document = path.read_text()
    start, end = document.find(opening), document.find(closing)
    if start < 0 or end < start:
        return False
    path.write_text(document[:start + len(opening)] + "\n" + text + "\n" + document[end:])
    return True
