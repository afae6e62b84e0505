"""Decay factors: how much of an event's points are left after `age` microseconds."""

from __future__ import annotations

from collections.abc import Callable

from leadscore.model.scoring import Decay, HalfLife, Linear, NoDecay, Steps, days_to_micros

DecayFn = Callable[[int], float]


def decay_function(decay: Decay) -> DecayFn:
    """The factor (0..1) as a function of age in microseconds, for one decay setting."""
    if isinstance(decay, HalfLife):
        span = days_to_micros(decay.days)
        # age / span as one division of two exact integers keeps engines bit-identical.
        return lambda age: 0.5 ** (age / span)
    if isinstance(decay, Linear):
        length = days_to_micros(decay.days)
        return lambda age: max(0.0, 1.0 - age / length)
    if isinstance(decay, Steps):
        steps = [(days_to_micros(s.after_days), s.factor) for s in decay.steps]

        def step(age: int) -> float:
            factor = 1.0
            for after, f in steps:
                if age >= after:
                    factor = f
            return factor

        return step
    assert isinstance(decay, NoDecay)
    return lambda age: 1.0
