"""Adversarial pass (Dec 4): training and evaluating on a user's own CSV.

Found: ``train_ppo_agent.py --evaluate --model-path M --data-csv F`` fed F's columns to the model by
position. A file holding exactly the model's assets in another column order (the same prices,
exported with the columns sorted differently) was reported as ``asset_names_differ`` and evaluated
with every asset's returns in another asset's input: a report about a scrambled policy, while the
manager (``AdvancedRiskManager(policy=M)``) finds the same assets by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from advanced_risk.training.data import align_to_model, load_data
from advanced_risk.training.pipeline import run
from advanced_risk.training.settings import TrainingSettings

TINY_PPO = {"num_steps": 16, "update_epochs": 1, "num_minibatches": 2, "hidden_sizes": [8, 8]}
NAMES = ("AAA", "BBB", "CCC")


def _csv(path: Path, columns: tuple[str, ...]) -> Path:
    rng = np.random.default_rng(0)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.012, (260, 3)), axis=0))
    frame = pd.DataFrame(closes, columns=list(NAMES), index=pd.bdate_range("2015-01-02", periods=260))
    frame.index.name = "Date"
    frame[list(columns)].to_csv(path)
    return path


def _tiny(out: Path, csv: Path, **overrides: object) -> TrainingSettings:
    values: dict[str, object] = {
        "data_csv": str(csv), "asset_count": 3, "max_steps": 20, "num_envs": 2, "device": "cpu",
        "total_steps": 64, "checkpoint_every": 0, "out": str(out), "ppo": dict(TINY_PPO),
    }  # fmt: skip
    values.update(overrides)
    return TrainingSettings(**values)  # type: ignore[arg-type]


def test_a_file_with_the_models_assets_in_another_order_is_aligned_by_name(tmp_path: Path) -> None:
    """The bundle of a reordered file, aligned to the model's names, is the original bundle."""
    original = load_data(_tiny(tmp_path, _csv(tmp_path / "a.csv", NAMES)))
    shuffled = load_data(_tiny(tmp_path, _csv(tmp_path / "b.csv", ("CCC", "AAA", "BBB"))))
    assert shuffled.asset_names == ("CCC", "AAA", "BBB")
    aligned = align_to_model(NAMES, shuffled, "m.pt")
    assert aligned.asset_names == NAMES
    assert aligned.description["tickers"] == list(NAMES)
    assert aligned.test_path is not None
    assert original.test_path is not None
    np.testing.assert_array_equal(aligned.test_path, original.test_path)
    assert aligned.validation_path is not None
    assert original.validation_path is not None
    np.testing.assert_array_equal(aligned.validation_path, original.validation_path)
    np.testing.assert_array_equal(
        aligned.train_market.returns,  # type: ignore[attr-defined]
        original.train_market.returns,  # type: ignore[attr-defined]
    )
    # other names (a transfer test) and unnamed models keep the file's order
    assert align_to_model(("X", "Y", "Z"), shuffled, "m.pt") is shuffled
    assert align_to_model(None, shuffled, "m.pt") is shuffled


@pytest.mark.slow
def test_evaluating_a_model_on_its_assets_in_another_order_reports_the_same_policy(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    trained = _tiny(tmp_path / "run", _csv(tmp_path / "a.csv", NAMES))
    run(trained)
    model = str(trained.model_file)
    reports = []
    for name, columns in (("a", NAMES), ("b", ("BBB", "CCC", "AAA"))):
        settings = _tiny(
            tmp_path / f"eval-{name}",
            tmp_path / f"{name}.csv",
            model_path=model,
            evaluate=True,
            total_steps=None,
        )
        _csv(tmp_path / f"{name}.csv", columns)
        run(settings)
        reports.append((tmp_path / f"eval-{name}" / "report.json").read_text())
    ppo = [json.loads(r)["metrics"]["ppo"] for r in reports]
    assert ppo[0] == ppo[1]


def test_the_evaluation_after_training_shows_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report's evaluation can take minutes on a wide table (300 assets: 155 s, the
    minimum-variance baseline solving a 300 x 300 problem per bar) after a 1 s training run; it
    went silent from ``training_finished`` to ``report_written``. It now drives a progress bar
    (trading steps of every strategy, the strategy named)."""
    from advanced_risk.training.report import evaluate_agent

    data = load_data(_tiny(tmp_path, _csv(tmp_path / "a.csv", NAMES)))

    class Flat:
        def select_action(self, obs: object, deterministic: bool = True) -> np.ndarray:
            return np.zeros(4, dtype=np.float32)

    _report, strategies = evaluate_agent(Flat(), data, episodes=2, seed=0)  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "evaluate" in err
    assert "min_variance" in err
    assert [s.name for s in strategies] == ["ppo", "equal_weight", "min_variance", "buy_and_hold"]
