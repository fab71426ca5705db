"""Evaluation: AUC with bootstrap CIs, paired differences, operating points, calibration, an MFCC baseline,
and the report.

The covid19-cough data has a channel confound (call-centre vs Telegram audio, with very different positive
rates), so a pooled AUC can be earned by recognising the channel. Every figure is therefore computed within
each source as well as pooled, and the per-source figures are the headline.

"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve
from tqdm import tqdm

from coughkd.audio import SAMPLE_RATE
from coughkd.model import SOUND_TYPES
from coughkd.predict import sigmoid
from training.lib.data import Recording, decode_all, load_covid19_cough
from training.lib.probe import MfccBaseline
from training.lib.sounds import SoundClips

POOLED = "pooled"
STUDENT_VARIANTS = ("int8", "fp32")  # the shipped default first


def _split_scores(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(int).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} vs {p.shape[0]}")
    if not np.all(np.isfinite(p)):
        raise ValueError("scores contain NaN or inf")
    pos, neg = p[y == 1], p[y == 0]
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"need both classes, got {pos.size} positives and {neg.size} negatives")
    return pos, neg


def _weighted_auc(pos: np.ndarray, neg: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """AUC of these scores as a function of bootstrap count vectors (replicates, pos.size) and (replicates, neg.size),
    indexed like ``pos`` and ``neg``, of any totals (a clip bootstrap draws n of each, a group bootstrap does not).
    With positives sorted, the weight of positives above / tied with each negative is read from cumulative counts,
    so all replicates cost O(replicates * n)."""
    order = np.argsort(pos, kind="stable")
    below = np.searchsorted(pos[order], neg, side="left")
    not_above = np.searchsorted(pos[order], neg, side="right")

    def auc(w_pos: np.ndarray, w_neg: np.ndarray) -> np.ndarray:
        cum = np.zeros((w_pos.shape[0], pos.size + 1))
        np.cumsum(w_pos[:, order], axis=1, out=cum[:, 1:])
        wins = cum[:, -1:] - 0.5 * (cum[:, below] + cum[:, not_above])
        return (w_neg * wins).sum(axis=1) / (cum[:, -1] * w_neg.sum(axis=1))

    return auc


def _stratified_bootstrap(n_pos: int, n_neg: int, n_boot: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Chunks of (positive counts, negative counts): positives and negatives are resampled separately, so every
    replicate keeps the class balance (and has both classes)."""
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // (n_pos + n_neg))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        yield (rng.multinomial(n_pos, np.full(n_pos, 1.0 / n_pos), size=size),
               rng.multinomial(n_neg, np.full(n_neg, 1.0 / n_neg), size=size))


def roc_auc_ci(
    y: np.ndarray, p: np.ndarray, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float, float]:
    """ROC AUC and a percentile CI from a stratified bootstrap."""
    pos, neg = _split_scores(y, p)
    auc = _weighted_auc(pos, neg)
    point = float(auc(np.ones((1, pos.size)), np.ones((1, neg.size)))[0])
    replicates = _stratified_bootstrap(pos.size, neg.size, n_boot, seed)
    boots = np.concatenate([auc(w_pos, w_neg) for w_pos, w_neg in replicates])
    low, high = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return point, float(low), float(high)


def paired_auc_difference(
    y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float, float]:
    """AUC(a) - AUC(b) on the same clips, and a percentile CI from one stratified bootstrap applied to both.

    Why paired: two models scored on the same few recordings share most of their sampling noise (an easy draw of
    clips is easy for both), so the CI of the difference is far narrower than two separate CIs suggest; reading
    overlap of separate CIs would call real differences noise."""
    pos_a, neg_a = _split_scores(y, p_a)
    pos_b, neg_b = _split_scores(y, p_b)
    auc_a, auc_b = _weighted_auc(pos_a, neg_a), _weighted_auc(pos_b, neg_b)
    ones = np.ones((1, pos_a.size)), np.ones((1, neg_a.size))
    point = float(auc_a(*ones)[0] - auc_b(*ones)[0])
    replicates = _stratified_bootstrap(pos_a.size, neg_a.size, n_boot, seed)
    boots = np.concatenate([auc_a(w_pos, w_neg) - auc_b(w_pos, w_neg) for w_pos, w_neg in replicates])
    low, high = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return point, float(low), float(high)


def paired_group_auc_difference(
    y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, groups: np.ndarray, n_boot: int = 2000, seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float, float]:
    """`paired_auc_difference` with whole groups resampled (people, speakers, folds, recordings) instead of clips:
    one person's cough and speech stand or fall together, so clips of one group are not independent draws."""
    y, groups = np.asarray(y).astype(int), np.asarray(groups)
    names, group_of = np.unique(groups, return_inverse=True)
    pos_a, neg_a = _split_scores(y, p_a)
    pos_b, neg_b = _split_scores(y, p_b)
    auc_a, auc_b = _weighted_auc(pos_a, neg_a), _weighted_auc(pos_b, neg_b)
    of_pos, of_neg = group_of[y == 1], group_of[y == 0]
    ones = np.ones((1, pos_a.size)), np.ones((1, neg_a.size))
    point = float(auc_a(*ones)[0] - auc_b(*ones)[0])
    counts = np.random.default_rng(seed).multinomial(len(names), np.full(len(names), 1.0 / len(names)), size=n_boot)
    w_pos, w_neg = counts[:, of_pos].astype(float), counts[:, of_neg].astype(float)
    kept = (w_pos.sum(axis=1) > 0) & (w_neg.sum(axis=1) > 0)
    w_pos, w_neg = w_pos[kept], w_neg[kept]
    boots = auc_a(w_pos, w_neg) - auc_b(w_pos, w_neg)
    low, high = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return point, float(low), float(high)


def sensitivity_at_specificity(y: np.ndarray, p: np.ndarray, specificity: float = 0.9) -> tuple[float, float]:
    """Highest sensitivity whose specificity is at least `specificity`, and its threshold (positive: p >= threshold).

    At least k = ceil(specificity * n_neg) negatives must score below the threshold, so it must exceed the k-th
    lowest negative score; the best such threshold is the next observed score above it.
    """
    pos, neg = _split_scores(y, p)
    k = math.ceil(specificity * neg.size - 1e-9)
    if k <= 0:
        return 1.0, float(min(pos.min(), neg.min()))
    kth_negative = np.sort(neg)[k - 1]
    scores = np.concatenate([pos, neg])
    above = scores[scores > kth_negative]
    threshold = float(above.min()) if above.size else float(np.nextafter(kth_negative, np.inf))
    return float(np.mean(pos >= threshold)), threshold


def operating_point(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """Sensitivity, specificity and confusion counts when `p >= threshold` is called positive."""
    y = np.asarray(y).astype(int).ravel()
    called = np.asarray(p, dtype=np.float64).ravel() >= threshold
    tp, fn = int(np.sum(called & (y == 1))), int(np.sum(~called & (y == 1)))
    tn, fp = int(np.sum(~called & (y == 0))), int(np.sum(called & (y == 0)))
    return {
        "threshold": float(threshold),
        "sensitivity": tp / (tp + fn) if tp + fn else None,
        "specificity": tn / (tn + fp) if tn + fp else None,
        "tp": tp, "fn": fn, "tn": tn, "fp": fp,
    }


def choose_threshold(y_val: np.ndarray, p_val: np.ndarray, specificity: float = 0.9) -> float:
    """The decision threshold for the manifest, fixed on validation data so test figures stay unbiased."""
    return sensitivity_at_specificity(y_val, p_val, specificity)[1]


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Equal-width-bin ECE: the sample-weighted mean |observed positive rate - mean predicted probability|."""
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if p.size == 0:
        raise ValueError("no scores")
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, weights=y, minlength=n_bins) - np.bincount(bins, weights=p, minlength=n_bins))
    return float(gap[count > 0].sum() / p.size)






def per_source_auc(y: np.ndarray, p: np.ndarray, sources: Sequence[str]) -> dict[str, float]:
    """ROC AUC within each source that holds both classes (no bootstrap)."""
    y = np.asarray(y).astype(int).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    sources = np.asarray(sources).astype(str).ravel()
    return {source: float(roc_auc_score(y[sources == source], p[sources == source]))
            for source in sorted(set(sources.tolist()))
            if 0 < y[sources == source].sum() < (sources == source).sum()}


def within_source_auc(y: np.ndarray, p: np.ndarray, sources: Sequence[str]) -> float:
    """Unweighted mean of the per-source AUCs: a model-selection score that the channel confound cannot inflate.
    Sources holding a single class are skipped; raises if no source holds both classes."""
    aucs = per_source_auc(y, p, sources)
    if not aucs:
        raise ValueError("no source holds both classes, so no within-source AUC exists")
    return float(np.mean(list(aucs.values())))


def _group_metrics(y: np.ndarray, p: np.ndarray, n_boot: int, seed: int) -> dict:
    """Figures for one group; AUC-type figures are None when the group holds a single class."""
    out = {"n": int(y.size), "positives": int(y.sum()), "ece": expected_calibration_error(y, p)}
    if 0 < y.sum() < y.size:
        auc, low, high = roc_auc_ci(y, p, n_boot=n_boot, seed=seed)
        sens, threshold = sensitivity_at_specificity(y, p, 0.9)
        fpr, tpr, _ = roc_curve(y, p)
        out.update(
            auc=auc, auc_ci=[low, high], sens_at_90_spec=sens, threshold_at_90_spec=threshold,
            roc={"fpr": fpr.round(5).tolist(), "tpr": tpr.round(5).tolist()},
        )
    else:
        out.update(auc=None, auc_ci=None, sens_at_90_spec=None, threshold_at_90_spec=None, roc=None)
    return out


def evaluate_scores(
    y: np.ndarray, p: np.ndarray, sources: Sequence[str], n_boot: int = 2000, seed: int = 0
) -> dict:
    """{"per_source": {source: figures}, "pooled": figures}; the per-source figures are the headline.

    figures = n, positives, auc, auc_ci [low, high], sens_at_90_spec, threshold_at_90_spec, ece, roc {fpr, tpr}.
    """
    y = np.asarray(y).astype(int).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    sources = np.asarray(sources).astype(str).ravel()
    if not y.size == p.size == sources.size:
        raise ValueError(f"lengths differ: {y.size} labels, {p.size} scores, {sources.size} sources")
    per_source = {
        str(source): _group_metrics(y[sources == source], p[sources == source], n_boot, seed)
        for source in sorted(set(sources.tolist()))
    }
    return {"per_source": per_source, POOLED: _group_metrics(y, p, n_boot, seed)}


def paired_differences(
    y: np.ndarray, p: np.ndarray, others: dict[str, np.ndarray], sources: Sequence[str], n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, dict]:
    """{other: {"per_source": {source: difference}, "pooled": difference}}: AUC of ``p`` minus AUC of each of
    ``others`` on the same clips (paired_auc_difference); difference = {"difference", "ci": [low, high]}, or None
    where a group holds a single class."""
    y = np.asarray(y).astype(int).ravel()
    sources = np.asarray(sources).astype(str).ravel()

    def group(mask: np.ndarray, q: np.ndarray) -> dict | None:
        if not 0 < y[mask].sum() < mask.sum():
            return None
        point, low, high = paired_auc_difference(y[mask], np.asarray(p)[mask], np.asarray(q)[mask], n_boot, seed)
        return {"difference": point, "ci": [low, high]}

    everything = np.ones(y.size, dtype=bool)
    return {name: {"per_source": {str(s): group(sources == s, q) for s in sorted(set(sources.tolist()))},
                   POOLED: group(everything, q)} for name, q in others.items()}


def paired_table(model: str, paired: dict[str, dict]) -> str:
    """A card table: one row per compared model, ``model``'s AUC minus its AUC [95% paired CI] per source, pooled."""
    first = next(iter(paired.values()))
    panels = list(first["per_source"]) + [POOLED]
    lines = [f"| {model} minus | " + " | ".join(f"AUC {panel}" for panel in panels) + " |",
             "|---|" + "---|" * len(panels)]
    for name, comparison in paired.items():
        cells = []
        for panel in panels:
            d = comparison[POOLED] if panel == POOLED else comparison["per_source"][panel]
            cells.append("n/a" if d is None else f"{d['difference']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _panels(results: dict[str, dict]) -> list[str]:
    sources = sorted({source for result in results.values() for source in result["per_source"]})
    return sources + [POOLED]


def _group(result: dict, panel: str) -> dict | None:
    return result[POOLED] if panel == POOLED else result["per_source"].get(panel)


def format_auc(group: dict | None) -> str:
    """"AUC [low, high]" of one evaluate_scores group, "n/a" where it holds a single class: every table's cell."""
    if group is None or group["auc"] is None:
        return "n/a"
    low, high = group["auc_ci"]
    return f"{group['auc']:.3f} [{low:.3f}, {high:.3f}]"


def write_report(results: dict[str, dict], out_dir: Path) -> tuple[Path, Path]:
    """Write report.json ({model: evaluate_scores output}) and roc.png (a panel per source, then pooled); also
    table.md (markdown_table, then the paired_table of each row that has paired differences), so the three always
    describe the same models."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out_dir / "report.json", out_dir / "roc.png"
    json_path.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    (out_dir / "table.md").write_text(markdown_table(results) + "".join(
        "\n" + paired_table(name, result["paired"]) for name, result in results.items() if "paired" in result))

    panels = _panels(results)
    fig = Figure(figsize=(4.5 * len(panels), 4.6), layout="constrained")
    for ax, panel in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        counts = ""
        for name, result in results.items():
            group = _group(result, panel)
            if group is None or group["roc"] is None:
                continue
            counts = f" (n={group['n']}, {group['positives']} positive)"
            ax.plot(group["roc"]["fpr"], group["roc"]["tpr"], label=f"{name}: AUC {format_auc(group)}")
        ax.set_title(("pooled (channel-confounded)" if panel == POOLED else panel) + counts, fontsize=10)
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_aspect("equal")
        ax.legend(loc="lower right", fontsize=7)
    fig.suptitle("COVID-19 ROC on the held-out test split (95% bootstrap CI); within-source panels are the headline")
    fig.savefig(png_path, dpi=110, bbox_inches="tight")
    return json_path, png_path


def markdown_table(results: dict[str, dict]) -> str:
    """A model-card table: one row per model, per-source AUC [95% CI] first, pooled figures after."""
    sources = _panels(results)[:-1]
    first = next(iter(results.values()))
    header = ["Model"]
    for source in sources:
        group = first["per_source"].get(source)
        header.append(f"AUC {source}" + (f" (n={group['n']})" if group else ""))
    header += [f"AUC pooled (n={first[POOLED]['n']})", "Sens @ 90% spec (pooled)", "ECE (pooled)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, result in results.items():
        pooled = result[POOLED]
        sens = "n/a" if pooled["sens_at_90_spec"] is None else f"{pooled['sens_at_90_spec']:.3f}"
        row = [name] + [format_auc(result["per_source"].get(s)) for s in sources]
        row += [format_auc(pooled), sens, f"{pooled['ece']:.3f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _select(recordings: Sequence[Recording], hashes: Sequence[str], split_name: str) -> list[Recording]:
    by_hash = {rec.sha256: rec for rec in recordings}
    missing = [h for h in hashes if h not in by_hash]
    if missing:
        raise ValueError(
            f"{len(missing)} of {len(hashes)} {split_name} recordings in split.json are not in the loaded dataset "
            f"(first: {missing[0]}); was the run made from other data?"
        )
    return [by_hash[h] for h in hashes]


def score_student(
    model_dir: Path, variant: str, waveforms: Sequence[np.ndarray], progress: bool = True
) -> tuple[np.ndarray, float]:
    """COVID probabilities of whole recordings through the shipped runtime (events, gate, cough parts, aggregation
    exactly as users get them), and the manifest threshold it applies. Taken before the gate's decision is worded,
    so a recording the gate refuses still has its score here: the COVID-19 head is measured on every recording."""
    import coughkd

    model = coughkd.load(model_dir, variant=variant)
    probabilities = [float(sigmoid(model.scores(w, sample_rate=SAMPLE_RATE).covid_logit))
                     for w in tqdm(waveforms, desc=f"student {variant}", unit="file", disable=not progress)]
    return np.asarray(probabilities, dtype=np.float64), model.runtime.thresholds["covid"]


def operating_points(y: np.ndarray, p: np.ndarray, sources: np.ndarray, threshold: float) -> dict:
    """{"per_source": {source: operating_point}, "pooled": operating_point} of one threshold: the pooled figures
    hide how differently a threshold treats each recording channel."""
    points = {source: operating_point(y[sources == source], p[sources == source], threshold)
              for source in sorted(set(sources.tolist()))}
    return {"per_source": points, POOLED: operating_point(y, p, threshold)}


def evaluate_run(
    model_dir: Path,
    run_dir: Path,
    out_dir: Path,
    recordings: Sequence[Recording] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: bool = True,
    other_scores: dict[str, dict[str, float]] | None = None,
) -> dict[str, dict]:
    """Score the run's held-out test split with every model and write the report.

    Models: the OpenVINO students through coughkd (int8, fp32), the teacher (scores cached by the run in
    teacher_test_scores.json), the MFCC baseline fitted here on the run's train split, and any `other_scores`
    ({model: {recording sha256: probability}}, e.g. the model this run replaces); the shipped INT8 student's row
    also holds its paired AUC differences to the others (``paired``). `recordings` defaults to the shared
    covid19-cough set; split.json refers to them by content hash.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    split = json.loads((run_dir / "split.json").read_text())
    teacher_scores = json.loads((run_dir / "teacher_test_scores.json").read_text())
    if recordings is None:
        recordings = load_covid19_cough()[0]
    train = _select(recordings, split["train"], "train")
    test = _select(recordings, split["test"], "test")
    missing = [rec.sha256 for rec in test if rec.sha256 not in teacher_scores]
    if missing:
        raise ValueError(f"teacher_test_scores.json lacks {len(missing)} test recordings (first: {missing[0]})")

    decoded_train, _ = decode_all(train, progress=progress, cache_dir=cache_dir)
    decoded_test, failed = decode_all(test, progress=progress, cache_dir=cache_dir)
    for rec, message in failed:
        print(f"skipping undecodable test recording {rec.path}: {message}")
    y = np.array([rec.label for rec, _ in decoded_test])
    sources = np.array([rec.source for rec, _ in decoded_test])
    waveforms = [waveform for _, waveform in decoded_test]

    results: dict[str, dict] = {}
    scores: dict[str, np.ndarray] = {}
    for variant in STUDENT_VARIANTS:
        p, threshold = score_student(Path(model_dir), variant, waveforms, progress)
        scores[f"student_{variant}"] = p
        results[f"student_{variant}"] = evaluate_scores(y, p, sources, n_boot, seed)
        results[f"student_{variant}"]["test_operating_point"] = operating_points(y, p, sources, threshold)
    scores["teacher"] = np.array([teacher_scores[rec.sha256] for rec, _ in decoded_test], dtype=np.float64)
    baseline = MfccBaseline(seed).fit([w for _, w in decoded_train], [rec.label for rec, _ in decoded_train])
    scores["mfcc_baseline"] = baseline.predict_proba(waveforms)
    for name, by_hash in (other_scores or {}).items():
        scores[name] = np.array([by_hash[rec.sha256] for rec, _ in decoded_test], dtype=np.float64)
    for name in list(scores)[len(STUDENT_VARIANTS):]:
        results[name] = evaluate_scores(y, scores[name], sources, n_boot, seed)
    shipped, *others = scores
    results[shipped]["paired"] = paired_differences(y, scores[shipped], {name: scores[name] for name in others},
                                                    sources, n_boot, seed)

    write_report(results, out_dir)
    print((out_dir / "table.md").read_text())
    return results


# ---- the sound-type gate --------------------------------------------------------------------------------------------
# What the gate promises on real recordings: the share of coughs it accepts, of every other sound type it refuses.
GATE_BARS = {"cough": 0.95, "speech": 0.95, "breathing": 0.85, "other": 0.95}
MADE_UP = ("generated", "mixture")  # data sets of clips made here: reported, never used to choose or to claim


def gate_groups(sounds) -> np.ndarray:
    """(N,) what each clip of a training.lib.sounds.SoundClips counts towards: "cough: <data set>" (covid19-cough per
    source, as each must reach the bar), or its sound type; "" for made-up clips."""
    groups = []
    for dataset, kind, t in zip(sounds.dataset, sounds.kind, sounds.sound_type):
        name = SOUND_TYPES[t]
        if dataset in MADE_UP:
            groups.append("")
        elif name == "cough":
            groups.append(f"cough: {dataset}" + (f" {kind}" if dataset == "covid19-cough" else ""))
        else:
            groups.append(name)
    return np.array(groups)


def gate_rates(p_cough: np.ndarray, groups: np.ndarray, threshold: float) -> dict[str, tuple[int, int]]:
    """{group: (clips the gate treats right, clips)}: accepted for cough groups, refused for the others."""
    rates = {}
    for group in sorted(set(groups.tolist()) - {""}):
        accepted = p_cough[groups == group] >= threshold
        right = accepted if group.startswith("cough") else ~accepted
        rates[group] = (int(right.sum()), int(right.size))
    return rates


def gate_bar(group: str) -> float:
    """The bar a gate_groups group is held to: its sound type's (every "cough: <data set>" group the cough bar)."""
    return GATE_BARS[group.split(":")[0]]


def worst_group(rates: dict[str, tuple[int, int]]) -> tuple[str, float]:
    """The group of gate_rates furthest below (or least above) its bar, and its margin: share treated right minus
    the bar."""
    margins = {group: k / n - gate_bar(group) for group, (k, n) in rates.items()}
    group = min(margins, key=margins.__getitem__)
    return group, margins[group]


def cough_labels(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the real clips among gate_groups' groups, whether each of those is a cough): what the gate's ROC reads."""
    real = groups != ""
    return real, np.char.startswith(groups[real], "cough")


def gate_auc(p_cough: np.ndarray, groups: np.ndarray) -> float:
    """The gate's ROC AUC of coughs against every other sound type, on the real clips."""
    real, labels = cough_labels(groups)
    return float(roc_auc_score(labels, p_cough[real]))


def choose_gate_threshold(p_cough: np.ndarray, groups: np.ndarray) -> float:
    """The threshold whose worst group is furthest above its bar (GATE_BARS), on validation clips: the bars are what
    the gate promises, so no group is traded away for another. Ties: the middle of the best run of candidates."""
    candidates = np.unique(p_cough[groups != ""])
    margins = []
    for t in candidates:
        rates = gate_rates(p_cough, groups, t)
        margins.append(worst_group(rates)[1])
    best = np.flatnonzero(np.isclose(margins, max(margins)))
    return float(candidates[best[len(best) // 2]])


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k / n (sound where k is 0 or n, unlike the normal approximation)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def gate_report(sounds, cough_probability: np.ndarray, predicted: Sequence[str], threshold: float) -> dict:
    """The gate on one split of a SoundClips, through the runtime's decisions (`predicted`: each clip's sound_type):
    accepted-as-cough share per row (sound type, data set, kind, channel) with Wilson CIs, the promise per group
    against its bar, the confusion of sound types on real clips, and the ROC of cough vs the rest on real clips."""
    heard = np.asarray(predicted)
    accepted = heard == "cough"
    truth = np.array([SOUND_TYPES[t] for t in sounds.sound_type])
    kinds = np.array([_row_kind(d, k) for d, k in zip(sounds.dataset, sounds.kind)])
    rows = []
    for key in sorted({(t, d, k, c) for t, d, k, c in zip(truth, sounds.dataset, kinds, sounds.channel)},
                      key=lambda r: (SOUND_TYPES.index(r[0]), r[1] in MADE_UP, r[1], r[2], r[3])):
        mask = (truth == key[0]) & (sounds.dataset == key[1]) & (kinds == key[2]) & (sounds.channel == key[3])
        k, n = int(accepted[mask].sum()), int(mask.sum())
        rows.append({"sound_type": key[0], "dataset": key[1], "kind": key[2], "channel": key[3], "n": n,
                     "accepted": k / n, "ci": wilson_interval(k, n)})
    groups = gate_groups(sounds)
    promises = {}
    for group, (k, n) in gate_rates(cough_probability, groups, threshold).items():
        bar = gate_bar(group)
        promises[group] = {"right": k, "n": n, "share": k / n, "ci": wilson_interval(k, n), "bar": bar,
                           "held": k / n >= bar}
    real, labels = cough_labels(groups)
    fpr, tpr, _ = roc_curve(labels, cough_probability[real])
    confusion = {t: {u: int(((truth == t) & (heard == u) & real).sum()) for u in SOUND_TYPES}
                 for t in SOUND_TYPES}
    return {"threshold": threshold, "rows": rows, "promises": promises, "confusion": confusion,
            "roc": {"auc": gate_auc(cough_probability, groups), "fpr": fpr.tolist(),
                    "tpr": tpr.tolist(), "n_cough": int(labels.sum()), "n_other": int((~labels).sum())}}


def _row_kind(dataset: str, kind: str) -> str:
    """The kind a card row shows: ESC-10's classes pooled as everyday sounds, but the sneeze, the one most like a
    cough, on its own; generated audio by kind family."""
    if dataset == "esc10":
        return kind if kind == "person sneeze" else "everyday sounds (9 classes)"
    if dataset == "generated":
        return "espeak-ng speech" if kind == "speech" else "noise, tones, music-like"
    return kind


def gate_tables(report: dict) -> str:
    """The card's gate tables: the promise per group, then every row by channel, then the confusion matrix."""
    lines = ["| group (real recordings) | treated right | 95% CI | bar | held |", "|---|---|---|---|---|"]
    for group, p in report["promises"].items():
        what = "accepted" if group.startswith("cough") else "refused"
        lines.append(f"| {group} | {what} {p['share']:.1%} ({p['right']}/{p['n']}) | "
                     f"{p['ci'][0]:.1%}-{p['ci'][1]:.1%} | {p['bar']:.0%} | {'yes' if p['held'] else '**no**'} |")
    lines += ["", "| sound type | data set | kind | wideband: accepted as cough | telephone: accepted as cough |",
              "|---|---|---|---|---|"]
    cells: dict[tuple, dict] = {}
    for r in report["rows"]:
        cells.setdefault((r["sound_type"], r["dataset"], r["kind"]), {})[r["channel"]] = r
    for (t, d, k), by_channel in cells.items():
        shown = [f"{c['accepted']:.1%} [{c['ci'][0]:.1%}, {c['ci'][1]:.1%}] (n={c['n']})" if c else "-"
                 for c in (by_channel.get("wideband"), by_channel.get("telephone"))]
        lines.append(f"| {t} | {d}{' (made here)' if d in MADE_UP else ''} | {k} | {shown[0]} | {shown[1]} |")
    lines += ["", "| true \\ heard as | " + " | ".join(SOUND_TYPES) + " |", "|---|" + "---|" * len(SOUND_TYPES)]
    for t in SOUND_TYPES:
        lines.append(f"| {t} | " + " | ".join(str(report["confusion"][t][u]) for u in SOUND_TYPES) + " |")
    return "\n".join(lines) + "\n"


def gate_roc_figure(report: dict, path: Path) -> Path:
    """The gate's ROC (real coughs vs every other real sound, by the clip's cough probability), its operating point
    marked."""
    roc = report["roc"]
    fig = Figure(figsize=(4.6, 4.6), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.plot(roc["fpr"], roc["tpr"], label=f"AUC {roc['auc']:.3f}")
    coughs = [p for g, p in report["promises"].items() if g.startswith("cough")]
    others = [p for g, p in report["promises"].items() if not g.startswith("cough")]
    tpr = sum(p["right"] for p in coughs) / max(1, sum(p["n"] for p in coughs))
    fpr = 1 - sum(p["right"] for p in others) / max(1, sum(p["n"] for p in others))
    ax.plot([fpr], [tpr], "o", color="#d62728", label=f"threshold {report['threshold']:.3f}")
    ax.set_xlabel(f"non-cough accepted as cough (n={roc['n_other']})")
    ax.set_ylabel(f"coughs accepted (n={roc['n_cough']})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Sound-type gate on held-out real recordings", fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def evaluate_gate(model_dir: Path, sounds: SoundClips, split: str) -> tuple[dict, dict]:
    """The shipped INT8 model on one split of the gate's clips, through coughkd as users run it: the gate report, and
    on the Coswara cough recordings (healthy people, none COVID-19 positive) the share flagged COVID-19 positive."""
    import coughkd

    model = coughkd.load(model_dir)
    part = sounds.subset(sounds.split == split)
    predictions, usable = [], np.ones(len(part), dtype=bool)
    for i in range(len(part)):
        try:
            predictions.append(model.predict(part.waveform(i), sample_rate=SAMPLE_RATE))
        except coughkd.AudioError:  # e.g. generated near-silence: refused before any gate, so not in the tables
            usable[i] = False
    refused = [f"{d}:{k}" for d, k in zip(part.dataset[~usable], part.kind[~usable])]
    part = part.subset(usable)
    cough_p = np.array([p.cough_probability for p in predictions])
    report = gate_report(part, cough_p, [p.sound_type for p in predictions], model.runtime.thresholds["cough"])
    report["unusable"] = refused
    coswara = [p for p, d, t, c in zip(predictions, part.dataset, part.sound_type, part.channel)
               if d == "coswara" and SOUND_TYPES[t] == "cough" and c == "wideband"]
    flagged = sum(bool(p.covid_positive) for p in coswara)
    return report, {"n": len(coswara), "accepted": sum(p.is_cough for p in coswara), "flagged": flagged}
