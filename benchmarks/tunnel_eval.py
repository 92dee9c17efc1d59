"""Train and evaluate the tunnel-contents classifier (core/src/tunnel/, through portwatch/tunnels.py)
on captures/tunnels/.

    python benchmarks/tunnel_eval.py                 # held-out evaluation, tables in Markdown
    python benchmarks/tunnel_eval.py --write-model   # also (re)write portwatch/data/tunnel-model.json

Evaluation never tests a flow on a model that saw its run. Three views: trained on runs 1-5
(all there was while the features and the model were designed) and tested on runs 6-10 (recorded
afterwards: "frozen"); fold k holds out run k of *every* class (10 folds); leave-one-run-out (one
run id held out at a time, 80 folds; ~1 minute on an idle core). The model is a few bagged small
decision trees per carrier (CART in numpy, see grow() and train()); the shipped model is trained
on every run.
socks is scored as forwarded-http (MERGE; docs/tunnels.md says why).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portwatch import tunnels  # noqa: E402
from portwatch.pipeline import Config, Setup, analyze_path  # noqa: E402

CAPTURES = ROOT / "captures" / "tunnels"
MODEL = ROOT / "portwatch" / "data" / "tunnel-model.json"
KIND_OF = {"tls-http": "forwarded-http", "tls-pop3": "forwarded-mail"}
#: Recording classes trained and scored as one: SOCKS through `ssh -D` and `ssh -L` carrying HTTP
#: are the same on the wire (direct-tcpip channels carrying HTTP); see docs/tunnels.md.
MERGE = {"socks": "forwarded-http"}
CARRIER_OF = {"tls-http": "tls", "tls-pop3": "tls"}
#: Runs 1-5 of every class were all that existed while the features and the model were designed;
#: runs 6-10 were recorded afterwards (other sizes, programs, mail dialogues, ciphers) and first
#: scored with the features and the model as they stood: the "frozen" view.
FROZEN_RUNS = 5


def load_flows(captures: Path = CAPTURES) -> list[dict[str, Any]]:
    """One row per labelled tunnel flow: class, run, carrier protocol, shape, features."""
    labels = list(csv.DictReader((captures / "labels.csv").open()))
    config = Config()
    setup = Setup.load(config)
    rows = []
    for pcap in sorted({lab["pcap"] for lab in labels}):
        recs: list[Any] = []
        analyze_path(str(captures / pcap), setup, config, recs.append)
        by_port = {int(lab["client_port"]): lab for lab in labels if lab["pcap"] == pcap}
        for r in recs:
            lab = by_port.get(r.src_port)
            shape = r.meta.get("shape")
            if lab is None or shape is None:
                continue
            rows.append({"pcap": pcap, "class": MERGE.get(lab["class"], lab["class"]),
                         "recorded": lab["class"], "run": lab["run"], "detail": lab["detail"],
                         "fold": int(lab["run"].rsplit("-", 1)[1]), "protocol": r.protocol,
                         "port": r.dst_port, "shape": shape, "features": tunnels.features(shape, r.protocol)})
    return rows


def grow(X: np.ndarray, y: list[str], names: list[str], depth: int, min_leaf: int) -> dict[str, Any]:
    """A CART node: the split with the lowest Gini impurity; among splits within TIE of the best,
    the one with the widest gap between the two sides (in spreads of that feature at this node),
    so a threshold sits in the middle of empty space rather than between two close training
    values; thresholds are half-way between neighbouring training values."""
    counts = {c: y.count(c) for c in sorted(set(y))}
    leaf = {"class": max(counts, key=lambda c: (counts[c], c)), "counts": counts}
    if depth == 0 or len(counts) == 1 or len(y) < 2 * min_leaf:
        return leaf

    def gini(labels: list[str]) -> float:
        n = len(labels)
        return 1.0 - sum((labels.count(c) / n) ** 2 for c in set(labels)) if n else 0.0

    cands: list[tuple[float, float, int, float]] = []
    base = gini(y)
    for j in range(X.shape[1]):
        vals = np.unique(X[:, j])
        spread = float(X[:, j].std()) or 1.0
        for lo, hi in itertools.pairwise(vals):
            t = float((lo + hi) / 2)
            left = [c for c, v in zip(y, X[:, j], strict=False) if v <= t]
            right = [c for c, v in zip(y, X[:, j], strict=False) if v > t]
            if len(left) < min_leaf or len(right) < min_leaf:
                continue
            score = (len(left) * gini(left) + len(right) * gini(right)) / len(y)
            cands.append((score, float(hi - lo) / spread, j, t))
    if not cands:
        return leaf
    low = min(c[0] for c in cands)
    if low >= base - 1e-12:
        return leaf
    _, _, j, t = max((c for c in cands if c[0] <= low + TIE), key=lambda c: (c[1], -c[2]))
    mask = X[:, j] <= t
    return {"feature": names[j], "threshold": round(t, 4),
            "le": grow(X[mask], [c for c, m in zip(y, mask, strict=False) if m], names, depth - 1, min_leaf),
            "gt": grow(X[~mask], [c for c, m in zip(y, mask, strict=False) if not m], names, depth - 1, min_leaf)}


#: Splits whose weighted Gini impurity is within TIE of the best count as equally good.
TIE = 0.02
DEPTH, MIN_LEAF = 4, 2
#: Trees per carrier: the first grown on every training run (the readable one whose rule path the
#: evidence quotes), the others each on a bootstrap sample of whole runs (bagging: with a few runs
#: per class one tree's choice between two equally good splits decides too much; the vote of
#: many does not hang on one run). Fixed seed: the same runs give the same model.
TREES, SEED = 25, 20


def train(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Bagged small decision trees per carrier (ssh, tls), plus per-class centroids for the
    "nothing known looks like this" check."""
    rows = [r for r in rows if r["features"] is not None]
    names = list(tunnels.FEATURES)
    X = np.array([[r["features"][n] for n in names] for r in rows])
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std[std < 1e-6] = 1.0
    Z = (X - mean) / std
    classes: dict[str, Any] = {}
    trees: dict[str, list] = {}
    for cls in sorted({r["class"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["class"] == cls]
        classes[cls] = {"kind": KIND_OF.get(cls, cls), "carrier": CARRIER_OF.get(cls, "ssh"),
                        "flows": len(idx), "runs": len({rows[i]["run"] for i in idx}),
                        "centroid": [round(float(v), 4) for v in Z[idx].mean(axis=0)]}
    rng = np.random.default_rng(SEED)
    for carrier in sorted({c["carrier"] for c in classes.values()}):
        idx = [i for i, r in enumerate(rows) if classes[r["class"]]["carrier"] == carrier]
        runs = sorted({rows[i]["run"] for i in idx})
        samples = [idx]
        for _ in range(TREES - 1):
            pick = rng.choice(len(runs), len(runs), replace=True)
            samples.append([i for k in pick for i in idx if rows[i]["run"] == runs[k]])
        trees[carrier] = [grow(X[s], [rows[i]["class"] for i in s], names, DEPTH, MIN_LEAF) for s in samples]
    return {"version": 3, "about": "bagged decision trees (per carrier) of portwatch/tunnels.py, trained by "
            "benchmarks/tunnel_eval.py on captures/tunnels (every run); the first tree of each carrier "
            "is grown on every run, the others on bootstrap samples of whole runs; 'le' is the branch for "
            "feature <= threshold",
            "features": names, "trees": trees, "mean": [round(float(v), 5) for v in mean],
            "std": [round(float(v), 5) for v in std], "max_distance": 4.0,
            "confident": 0.6, "classes": classes}


def evaluate(rows: list[dict[str, Any]], folds: list[Any], key: str) -> list[tuple[str, str, dict]]:
    """(truth, predicted class, verdict) for every flow, each predicted by a model without its run."""
    out = []
    for fold in folds:
        model = train([r for r in rows if r[key] != fold])
        for r in rows:
            if r[key] == fold:
                v = tunnels.classify(r["protocol"], {"shape": r["shape"]}, model)
                out.append((r["class"], v.get("class", "unknown") if v["kind"] != "unknown" else "unknown", v))
    return out


def table(results: list[tuple[str, str, dict]], classes: list[str]) -> tuple[str, float]:
    cols = [*classes, "unknown"]
    m = {(t, p): 0 for t in classes for p in cols}
    for t, p, _ in results:
        m[(t, p)] += 1
    lines = ["| truth \\ predicted | " + " | ".join(cols) + " | recall |",
             "|---" * (len(cols) + 2) + "|"]
    f1s, precs = [], {}
    for c in classes:
        tp = m[(c, c)]
        pred = sum(m[(t, c)] for t in classes)
        precs[c] = tp / pred if pred else 0.0
    for c in classes:
        tp, n = m[(c, c)], sum(m[(c, p)] for p in cols)
        rec = tp / n if n else 0.0
        p = precs[c]
        f1s.append(2 * p * rec / (p + rec) if p + rec else 0.0)
        lines.append(f"| **{c}** | " + " | ".join(str(m[(c, p)]) if m[(c, p)] else "." for p in cols)
                     + f" | {rec:.2f} |")
    lines.append("| precision | " + " | ".join(f"{precs[c]:.2f}" for c in classes) + " | | |")
    return "\n".join(lines), float(np.mean(f1s))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-model", action="store_true")
    args = ap.parse_args()
    rows = load_flows()
    classes = sorted({r["class"] for r in rows})
    print(f"{len(rows)} labelled tunnel flows, {len({r['run'] for r in rows})} runs, {len(classes)} classes\n")
    views = [(f"{len({r['fold'] for r in rows})} folds: run k of every class held out", "fold"),
             ("leave-one-run-out (one run id held out at a time)", "run")]
    if any(r["fold"] > FROZEN_RUNS for r in rows):
        for r in rows:
            r["frozen"] = "new" if r["fold"] > FROZEN_RUNS else "old"
        views.insert(0, (f"trained on runs 1-{FROZEN_RUNS}, tested on the later runs (recorded after the "
                         "features and the model were fixed)", "frozen"))
    for title, key in views:
        folds = ["new"] if key == "frozen" else sorted({r[key] for r in rows})
        results = evaluate(rows, folds, key)
        text, f1 = table(results, classes)
        kinds = [(KIND_OF.get(t, t), v["kind"], v) for t, _, v in results]
        _, kf1 = table(kinds, sorted({k for k, _, _ in kinds}))
        print(f"### {title}\n\n{text}\n\nmacro-F1 over the {len(classes)} recording classes: **{f1:.3f}**; "
              f"over the kinds reported ({', '.join(sorted({k for k, _, _ in kinds}))}): **{kf1:.3f}**\n")
        held = [r for f in folds for r in rows if r[key] == f]
        wrong = [(r, p) for r, (t, p, _) in zip(held, results, strict=False) if t != p]
        for r, p in wrong:
            print(f"- missed: {r['pcap']} port {r['port']} ({r['class']}) -> {p}")
        print()
    if args.write_model:
        MODEL.write_text(json.dumps(train(rows), indent=1) + "\n")
        print(f"wrote {MODEL.relative_to(ROOT)}; rebuild the core to embed it (cargo build / pip install .)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
