"""Quality and speed report for the pre-flight checks over the test corpus.

    python bench/checks_report.py [--runs N]

Per rule, counted per draft: a true positive is a draft where the rule fired and the corpus
expects it, a false positive one where it fired and is not expected, a false negative one where
it is expected and did not fire. Then the quality bar from the issue (every bad draft gets a
relevant finding; at most one good draft in ten gets any), once with each draft's language and
once with automatic language (lang=None), and the time per draft.

Exit status 0 when the quality bar holds, 1 when it does not.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workflow.checks import RULES, ChecksConfig, RecentPost, load_config, run_checks  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "checks_corpus.yaml"
NOW = datetime(2025, 6, 14, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Draft:
    id: str
    lang: str
    expected: frozenset[str]
    text: str
    recent: tuple[RecentPost, ...]


def load_corpus(path: Path = CORPUS) -> tuple[ChecksConfig, list[Draft]]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    config, problems = load_config(raw.get("config", {}))
    if problems:
        raise SystemExit("corpus config: " + "; ".join(problems))
    drafts = [
        Draft(
            id=item["id"],
            lang=item["lang"],
            expected=frozenset(item["expected"]),
            text=item["text"],
            recent=tuple(
                RecentPost(post["text"], NOW - timedelta(minutes=post["minutes_ago"]))
                for post in item.get("recent", ())
            ),
        )
        for item in raw["drafts"]
    ]
    return config, drafts


def fired(draft: Draft, config: ChecksConfig, *, auto_lang: bool = False) -> set[str]:
    findings = run_checks(
        draft.text, config=config, lang=None if auto_lang else draft.lang, recent=draft.recent, now=NOW
    )
    return {f.rule for f in findings}


def quality(config: ChecksConfig, drafts: list[Draft], *, auto_lang: bool) -> tuple[list[str], list[str], int]:
    """(good drafts with any finding, bad drafts with no expected finding, number of good drafts)."""
    noisy, missed, good = [], [], 0
    for draft in drafts:
        rules = fired(draft, config, auto_lang=auto_lang)
        if draft.expected:
            if not rules & draft.expected:
                missed.append(draft.id)
        else:
            good += 1
            if rules:
                noisy.append(f"{draft.id} ({', '.join(sorted(rules))})")
    return noisy, missed, good


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed runs per draft (default 200)")
    args = parser.parse_args(argv)

    config, drafts = load_corpus()
    bad = [d for d in drafts if d.expected]
    langs = sorted({d.lang for d in drafts})
    print(
        f"corpus: {len(drafts)} drafts ({len(bad)} bad, {len(drafts) - len(bad)} good), languages: "
        + ", ".join(f"{lang} {sum(d.lang == lang for d in drafts)}" for lang in langs)
    )
    print()

    results = {d.id: fired(d, config) for d in drafts}
    print(f"{'rule':<15} {'severity':<9} {'TP':>3} {'FP':>3} {'FN':>3} {'precision':>9} {'recall':>7}")
    for rule in RULES.values():
        tp = sum(rule.id in results[d.id] and rule.id in d.expected for d in drafts)
        fp = sum(rule.id in results[d.id] and rule.id not in d.expected for d in drafts)
        fn = sum(rule.id not in results[d.id] and rule.id in d.expected for d in drafts)
        precision = f"{tp / (tp + fp):.2f}" if tp + fp else "-"
        recall = f"{tp / (tp + fn):.2f}" if tp + fn else "-"
        print(f"{rule.id:<15} {config.severity_of(rule.id):<9} {tp:>3} {fp:>3} {fn:>3} {precision:>9} {recall:>7}")
    print()

    ok = True
    for label, auto in (("language given", False), ("language auto (lang=None)", True)):
        noisy, missed, good = quality(config, drafts, auto_lang=auto)
        share = len(noisy) / good if good else 0.0
        passed = not missed and share <= 0.10
        ok = ok and passed
        print(
            f"{label}: good drafts with any finding {len(noisy)}/{good} ({share:.0%}, bar <= 10%); "
            f"bad drafts with no relevant finding {len(missed)}/{len(bad)} (bar 0) -> {'PASS' if passed else 'FAIL'}"
        )
        for item in noisy:
            print(f"    noisy: {item}")
        for item in missed:
            print(f"    missed: {item}")
    print()

    for draft in drafts:  # compile patterns and warm caches before timing
        fired(draft, config)
    timings = []
    for draft in drafts:
        for _ in range(args.runs):
            started = time.perf_counter()
            run_checks(draft.text, config=config, lang=draft.lang, recent=draft.recent, now=NOW)
            timings.append((time.perf_counter() - started) * 1e6)
    timings.sort()
    p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
    mean_chars = statistics.mean(len(d.text) for d in drafts)
    print(
        f"time per draft over {len(timings)} runs (mean {mean_chars:.0f} characters): "
        f"mean {statistics.mean(timings):.0f} µs, median {statistics.median(timings):.0f} µs, "
        f"p99 {p99:.0f} µs, max {timings[-1]:.0f} µs"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
