"""The proxy model: the model dimensions run outside training, pass real data, fail
collapsed data, and with a target measure utility (train on candidate, test on real)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from collapse_callbacks import CollapseGate, Status
from collapse_callbacks.cli import main
from collapse_callbacks.comparison import Part
from collapse_callbacks.demo import generations, real_penguins
from collapse_callbacks.errors import DataError
from collapse_callbacks.proxy import (
    check_with_proxy,
    encoded_columns,
    make_task,
    proxy_evidence,
)

MODEL = ("gradient_health", "loss_landscape")


@pytest.fixture(scope="module")
def chain():
    """The demo's setup: half the complete penguins as reference, the other half as a
    real candidate, and five recursive generations fitted on that real half."""
    table = real_penguins()
    rng = np.random.default_rng(0)
    order = rng.permutation(table.num_rows)
    half = table.num_rows // 2
    reference, held_out = table.take(order[:half]), table.take(order[half:])
    return reference, held_out, generations(held_out, 5, held_out.num_rows, rng, 0.9)


def signal(result, name):
    (found,) = [s for s in result.signals if s.name == name]
    return found


def without_seconds(report) -> dict:
    return {k: v for k, v in report.to_dict().items() if k != "seconds"}


def test_a_real_split_passes_with_both_model_dimensions_run(chain):
    reference, held_out, _ = chain
    report = check_with_proxy(CollapseGate(reference, seed=0), held_out)
    assert not report.collapsed
    for name in MODEL:
        assert report.dimensions[name].status is Status.PASS, name
    # Held-out candidate rows and reference rows are both unseen: losses about equal.
    # Probing the proxy's own training rows would put this ratio far below 1.
    assert 0.75 < signal(report.dimensions["loss_landscape"], "loss_ratio").value < 1.35
    assert any("denoising autoencoder" in note and "held-out" in note for note in report.notes)


def test_generation_five_fails_a_model_dimension(chain):
    reference, _, chain_ = chain
    report = check_with_proxy(CollapseGate(reference, seed=0), chain_[4])
    assert report.collapsed
    failed = {name for name in MODEL if report.dimensions[name].status is Status.FAIL}
    assert failed, {name: report.dimensions[name].signals for name in MODEL}
    # The recursive data is easier to model than real rows.
    assert signal(report.dimensions["loss_landscape"], "loss_ratio").value < 0.7


def test_a_target_adds_utility_that_passes_on_real_rows(chain):
    reference, held_out, _ = chain
    report = check_with_proxy(CollapseGate(reference, seed=0), held_out, target="species")
    landscape = report.dimensions["loss_landscape"]
    assert landscape.status is Status.PASS
    utility = signal(landscape, "utility_ratio")
    assert utility.column == "species" and utility.value > 0.9
    # Species is easy to tell from the measurements: real-trained accuracy is high.
    assert landscape.statistics["utility_reference"] > 0.9
    assert landscape.statistics["utility_train_rows"] <= landscape.statistics["proxy_train_rows"]
    assert any("classifier of `species`" in note for note in report.notes)


def test_shuffled_labels_fail_utility(chain):
    reference, held_out, _ = chain
    species = np.array(held_out.column("species").to_pylist())
    shuffled = held_out.set_column(
        held_out.schema.get_field_index("species"),
        "species",
        [species[np.random.default_rng(1).permutation(len(species))].tolist()],
    )
    report = check_with_proxy(CollapseGate(reference, seed=0), shuffled, target="species")
    landscape = report.dimensions["loss_landscape"]
    assert landscape.status is Status.FAIL
    assert "utility_ratio" in {s.name for s in landscape.firing}
    assert signal(landscape, "utility_ratio").value < 0.75
    assert report.collapsed


def test_same_seed_same_report(chain):
    reference, _, chain_ = chain
    first = check_with_proxy(CollapseGate(reference, seed=4), chain_[1], target="body_mass_g")
    second = check_with_proxy(CollapseGate(reference, seed=4), chain_[1], target="body_mass_g")
    assert json.dumps(without_seconds(first)) == json.dumps(without_seconds(second))
    assert "utility_ratio" in {s.name for s in first.dimensions["loss_landscape"].signals}


def test_encoded_layout_matches_the_encoder_and_leaves_the_target_out(chain):
    reference, held_out, _ = chain
    comparison, _ = CollapseGate(reference, seed=0).compare(held_out)
    part = Part(comparison.reference_view, np.arange(comparison.reference_view.rows))
    encoded = comparison.encoder.encode(part)
    columns = encoded_columns(comparison)
    one_hot = encoded[:, columns["species"]] * np.sqrt(2)
    assert np.array_equal(one_hot.argmax(axis=1), part.codes("species"))
    scaled = (part.numeric("body_mass_g") - comparison.encoder.center["body_mass_g"]) / (
        comparison.encoder.scale["body_mass_g"]
    )
    assert np.allclose(encoded[:, columns["body_mass_g"][0]], scaled)
    task = make_task(comparison, "species")
    assert not set(task.inputs) & set(columns["species"])
    assert len(task.inputs) == comparison.encoder.width - len(columns["species"])
    with pytest.raises(DataError, match="not a column of both"):
        make_task(comparison, "wings")


def test_probe_rows_are_held_out_and_real_training_is_never_larger(chain):
    from collapse_callbacks.proxy import _split

    reference, held_out, _ = chain
    comparison, _ = CollapseGate(reference, seed=0).compare(held_out)
    for target in (None, "species"):
        split = _split(comparison, make_task(comparison, target), seed=0)
        probe, train = split.candidate[: split.probe_rows], split.candidate[split.probe_rows :]
        assert len(train) == split.train_rows and not set(probe) & set(train)
        # 16 batches of at least 4 rows a side fit in half of 167 candidate rows.
        assert split.probe_rows == len(held_out) // 2
        if target is not None:
            test = split.reference[: split.test_rows]
            real_train = split.reference[split.test_rows :]
            assert len(real_train) == split.reference_train_rows <= split.train_rows
            assert not set(test) & set(real_train)


def test_too_few_rows_or_no_inputs_do_not_run(chain):
    reference, held_out, _ = chain
    comparison, _ = CollapseGate(reference, seed=0).compare(held_out.slice(0, 12))
    evidence = proxy_evidence(comparison, seed=0)
    assert [e.name for e in evidence] == list(MODEL)
    assert all(e.not_run and "too few rows" in e.not_run for e in evidence)
    alone = [t.select(["species"]) for t in (reference, held_out)]
    comparison, _ = CollapseGate(alone[0], seed=0).compare(alone[1])
    evidence = proxy_evidence(comparison, target="species", seed=0)
    assert all(e.not_run and "no other numeric or categorical" in e.not_run for e in evidence)


def test_cli_proxy_options_run_the_model_dimensions_and_a_bad_target_exits_2(
    tmp_path, chain, capsys
):
    reference, held_out, _ = chain
    import pyarrow.parquet as pq

    ref_path, cand_path = tmp_path / "ref.parquet", tmp_path / "cand.parquet"
    pq.write_table(reference, ref_path)
    pq.write_table(held_out, cand_path)
    out = tmp_path / "report.json"
    args = ["check", str(ref_path), str(cand_path), "--quiet", "--json", str(out)]
    assert main([*args, "--target", "species"]) == 0
    data = json.loads(out.read_text())
    for name in MODEL:
        assert data["dimensions"][name]["status"] == "pass", name
    assert "utility_reference" in data["dimensions"]["loss_landscape"]["statistics"]
    capsys.readouterr()
    assert main([*args, "--target", "wings"]) == 2
    err = capsys.readouterr().err
    assert "column 'wings'" in err and "not a column of both" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert main([*args, "--proxy-model"]) == 0
    data = json.loads(out.read_text())
    assert data["dimensions"]["gradient_health"]["status"] == "pass"
    assert "utility_reference" not in data["dimensions"]["loss_landscape"]["statistics"]
    # Without the options the model dimensions stay "not run", as before.
    assert main(args) == 0
    data = json.loads(out.read_text())
    assert data["dimensions"]["gradient_health"]["status"] == "not run"
