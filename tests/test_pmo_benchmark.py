"""benchmarks/pmo.py's bookkeeping: records written by parts run side by side merge, and the
summary keeps the like-for-like sum (tasks whose oracle is PMO's own) apart."""

from __future__ import annotations

import json

from benchmarks import pmo


def _run(task: str, seed: int, auc: float) -> dict:
    return {"task": task, "seed": seed, "auc_top10": auc, "top1": auc, "top10": auc,
            "seconds": 1.0, "best": [["CCO", auc]]}


def test_parts_written_side_by_side_merge(tmp_path, monkeypatch):
    monkeypatch.setattr(pmo, "RECORDS", tmp_path)
    path = tmp_path / "ga.json"
    first = {"method": "ga", "runs": {}}
    second = {"method": "ga", "runs": {}}  # another process, loaded before the first wrote
    first["runs"]["qed/0"] = _run("qed", 0, 0.9)
    pmo.save_merged(first, path)
    second["runs"]["median1/0"] = _run("median1", 0, 0.3)
    pmo.save_merged(second, path)
    assert sorted(json.loads(path.read_text())["runs"]) == ["median1/0", "qed/0"]
    # a run the process holds itself is not replaced by the file's
    second["runs"]["qed/0"] = _run("qed", 0, 0.5)
    pmo.save_merged(second, path)
    assert json.loads(path.read_text())["runs"]["qed/0"]["auc_top10"] == 0.5


def test_summary_sums_the_isomer_based_tasks_apart():
    runs = {f"{t}/{s}": _run(t, s, a) for t, a in (("qed", 0.9), ("zaleplon_mpo", 0.5),
                                                   ("median1", 0.2)) for s in pmo.SEEDS}
    runs["median2/0"] = _run("median2", 0, 0.25)  # one seed: not complete
    runs["median2/0"]["seconds"] = 41.0
    s = pmo.summary({"runs": runs})
    assert sorted(s["complete"]) == ["median1", "qed", "zaleplon_mpo"]
    assert abs(s["sum"] - 1.6) < 1e-12
    assert sorted(s["same_oracle"]) == ["median1", "qed"]
    assert abs(s["sum_same_oracle"] - 1.1) < 1e-12
    reinvent = [pmo.PUBLISHED[t][0] for t in ("qed", "median1")]
    assert abs(s["published_sums_same_oracle"][0] - sum(reinvent)) < 1e-12
    text = pmo.markdown({"ga": {"what": "x", "model": "m", "budget": pmo.BUDGET,
                                "stages": [["ga", None, {}]], "runs": runs}}, {"ga": s})
    assert "Like for like, over the 2 of them" in text
    # REINVENT published qed 0.941, zaleplon_mpo 0.358, median1 0.356
    assert "above on 1 (zaleplon_mpo), at or below on 2 (median1, qed)" in text
    # wall time over every run recorded, complete tasks or not: 15 runs of 1 s and one of 41 s
    assert s["runs"] == 16 and s["seconds_median"] == 1.0 and s["seconds_range"] == [1.0, 41.0]
    assert "median 1 s (1 to 41 s) over 16 run(s)" in text
