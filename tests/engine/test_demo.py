from __future__ import annotations

import numpy as np

from collapse_callbacks.demo import SpeciesGaussian, generations, real_penguins, run_demo


def test_generator_refits_on_its_own_samples_and_narrows_at_low_temperature():
    real = real_penguins()
    rng = np.random.default_rng(0)
    chain = generations(real, 3, real.num_rows, rng, temperature=0.8)

    def adelie_spread(table):
        species = np.array(table.column("species").to_pylist())
        return np.std(table.column("body_mass_g").to_numpy()[species == "Adelie"])

    spread = [adelie_spread(t) for t in [real, *chain]]
    assert spread[3] < 0.7 * spread[0]  # within a species, 0.8 per generation compounds
    sample = SpeciesGaussian().fit(real).sample(50, rng)
    assert sample.num_rows == 50
    assert set(sample.column("species").to_pylist()) <= {"Adelie", "Chinstrap", "Gentoo"}


def test_demo_passes_held_out_real_data_and_scores_generations_lower():
    text = run_demo(generations_count=2, seed=0)
    lines = [line for line in text.splitlines() if line.startswith(("held-out", "generation"))]
    assert len(lines) == 3
    held_out_score = float(lines[0].split()[3])
    assert " pass " in lines[0]
    last_score = float(lines[-1].split()[2])
    assert last_score < held_out_score
