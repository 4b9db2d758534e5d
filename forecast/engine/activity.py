"""Activity that has not created its deals yet: conversion products, lags, in-period shares.

Shared by the simulation (``new_pipeline`` in a scenario) and the funnel planner."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from forecast.config.scenario import ConversionStage, LagWeeks, Scenario

DAYS_PER_WEEK = 7.0


def conversion_product(stages: list[ConversionStage]) -> float:
    """Share of the outermost stage's deals that end up won."""
    return math.prod(stage.rate for stage in stages)


def stage_counts(activity: float, stages: list[ConversionStage]) -> list[float]:
    """Expected count at every stage (closest to the win first) for ``activity`` at the outermost."""
    counts = []
    for stage in reversed(stages):
        counts.append(activity)
        activity *= stage.rate
    return counts[::-1]


def lag_cdf(lag: LagWeeks, weeks: np.ndarray) -> np.ndarray:
    """P(lag <= weeks) for the lag's distribution, given by its mean and sd."""
    from scipy.special import gammainc, ndtr

    weeks = np.asarray(weeks, dtype=np.float64)
    if lag.distribution == "fixed":
        return (weeks >= lag.mean).astype(np.float64)
    if lag.distribution == "uniform":
        half = math.sqrt(3.0) * lag.sd
        if half == 0:
            return (weeks >= lag.mean).astype(np.float64)
        return np.clip((weeks - (lag.mean - half)) / (2 * half), 0.0, 1.0)
    if lag.distribution == "gamma":
        shape = (lag.mean / lag.sd) ** 2
        scale = lag.sd**2 / lag.mean
        return gammainc(shape, np.maximum(weeks, 0.0) / scale)
    sigma2 = math.log1p((lag.sd / lag.mean) ** 2)  # lognormal with this mean and sd
    mu = math.log(lag.mean) - sigma2 / 2
    with np.errstate(divide="ignore"):
        return ndtr((np.log(np.maximum(weeks, 0.0)) - mu) / math.sqrt(sigma2))


def activity_weeks(start: dt.date, end: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """Weekly slices of activity from ``start`` to ``end`` (both included).

    Returns each slice's length in weeks (the last may be partial) and the weeks left
    to the end of ``end`` from the slice's middle, where its conversations happen.
    """
    days = (end - start).days + 1.0
    edges = np.append(np.arange(0.0, days, DAYS_PER_WEEK), days)
    lengths = np.diff(edges) / DAYS_PER_WEEK
    remaining = (days - (edges[:-1] + edges[1:]) / 2) / DAYS_PER_WEEK
    return lengths, remaining


def in_period_share(scenario: Scenario) -> tuple[float, float]:
    """Weeks of activity left in the period (from ``as_of``) and the share closing inside it."""
    lengths, remaining = activity_weeks(scenario.snapshot_date, scenario.period_range.end)
    weeks = float(lengths.sum())
    share = float(np.sum(lengths * lag_cdf(scenario.new_pipeline.lag_weeks, remaining)) / weeks)
    return weeks, share


def expected_new_deals(scenario: Scenario, extra_per_week: float = 0.0) -> float:
    """Expected deals that conversations from now on create and close inside the period."""
    pipeline = scenario.new_pipeline
    weeks, share = in_period_share(scenario)
    rate = pipeline.conversations_per_week + extra_per_week
    return rate * weeks * conversion_product(pipeline.stages) * share
