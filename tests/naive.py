"""Slow, obvious reference implementations the fast code is checked against."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import numpy as np

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix_a(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def mix_b(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & MASK
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & MASK
    return x ^ (x >> 33)


def stream_start(seed: int, key: int) -> int:
    return mix_a(mix_b(seed ^ GOLDEN) ^ key)


def multiplier(h: int, base: np.ndarray, slope: np.ndarray) -> float:
    """The table lookup of ``rng.amount_multiplier``, written out."""
    u = h >> 28  # 36-bit uniform integer
    if u < 8 << 24:
        index, position = u >> 15, (u >> 3) & 4095
    elif u >= 4088 << 24:
        index, position = 4096 + 4080 + ((u - (4088 << 24)) >> 15), ((u - (4088 << 24)) >> 3) & 4095
    else:
        index, position = 4096 - 8 + (u >> 24), (u >> 12) & 4095
    return base[index] + slope[index] * ((position + 0.5) / 4096)


def rate_draw(h: int, base: np.ndarray, slope: np.ndarray) -> float:
    """The lookup of ``rng.rate_draw``, written out: slice from the top 12 bits, position from the next 41."""
    return base[h >> 52] + slope[h >> 52] * ((((h >> 11) & ((1 << 41) - 1)) + 0.5) / 2**41)


def drawn_threshold(seed: int, cell: int, trial: int, table) -> int:
    """An uncertain rate's threshold in one trial: its cell's draw x 2**32, rounded up, below 2**32."""
    rate = rate_draw(mix_a((stream_start(seed, cell) + trial * GOLDEN) & MASK), *table)
    return int(min(max(math.ceil(rate * 2.0**32), 0), 2**32 - 1))


def simulate(
    seed, keys, win_rate, land_rate, value, dated_inside, table, metrics, trials, first_trial=0,
    uncertain=None, order=None,
):  # fmt: skip
    """Trial by trial, deal by deal: the model of ``kernels.simulate_pipeline``.

    ``table`` is ``(base, slope)`` or None for fixed amounts; ``metrics`` a list of
    ``(kind, member_mask)`` or ``(kind, member_mask, share)`` with kind 0 revenue (of each member
    deal, ``share`` of its amount: 1 by default), 1 count. ``uncertain``: per deal None
    (its rate is known) or ``(cell key, draws.rate_table)``: its threshold is its cell's draw in
    each trial. ``order``: the order deals are summed in (default: as given).
    """
    win_at = [round(p * 2**32) for p in win_rate]
    land_at = [round(p * 2**32) for p in land_rate]
    starts = [stream_start(seed, int(key)) for key in keys]
    uncertain = uncertain or [None] * len(keys)
    revenue = np.zeros(trials)
    slipped = np.zeros(trials)
    values = np.zeros((len(metrics), trials))
    for i in range(trials):
        trial = first_trial + i
        for d in range(len(keys)) if order is None else order:
            counter = (starts[d] + trial * GOLDEN) & MASK
            h = mix_a(counter)
            cell = uncertain[d]
            threshold = win_at[d] if cell is None else drawn_threshold(seed, int(cell[0]), trial, cell[1])
            if (h >> 32) >= threshold:
                continue
            amount = value[d]
            if table is not None:
                amount *= multiplier(mix_b(counter), *table)
            if (h & 0xFFFFFFFF) < land_at[d]:
                revenue[i] += amount
                for k, (kind, member, *share) in enumerate(metrics):
                    if member[d]:
                        values[k, i] += (amount * (share[0][d] if share else 1.0)) if kind == 0 else 1.0
            elif dated_inside[d]:
                slipped[i] += amount
    return revenue, slipped, values


def revenue_distribution(amounts, probabilities) -> dict[int, float]:
    """Exact distribution of the sum of independent deals with integer amounts (DP)."""
    distribution = {0: 1.0}
    for amount, p in zip(amounts, probabilities, strict=True):
        step: dict[int, float] = {}
        for total, mass in distribution.items():
            step[total] = step.get(total, 0.0) + mass * (1.0 - p)
            step[total + int(amount)] = step.get(total + int(amount), 0.0) + mass * p
        distribution = step
    return distribution


LOST, WON_NOT_LANDED, LANDED = 0, 1, 2


def outcomes(win_rate, land_rate):
    """Every combination of deal outcomes (lost, won but not landed, landed) with its probability:
    the exact answer for small pipelines, sharing nothing with the kernels' random numbers."""
    for outcome in itertools.product((LOST, WON_NOT_LANDED, LANDED), repeat=len(win_rate)):
        mass = 1.0
        for state, win, land in zip(outcome, win_rate, land_rate, strict=True):
            mass *= (1 - win) if state == LOST else win * (land if state == LANDED else 1 - land)
        if mass > 0:
            yield mass, np.array(outcome)


def p_at_least(distribution: dict[int, float], quota: float) -> float:
    return sum(mass for total, mass in distribution.items() if total >= quota)


def p_at_least_brute(amounts, probabilities, quota) -> float:
    """Enumerate every win/loss combination: a check on the DP itself."""
    total = 0.0
    for outcome in itertools.product((0, 1), repeat=len(amounts)):
        mass = np.prod([p if won else 1 - p for won, p in zip(outcome, probabilities, strict=True)])
        if sum(a for won, a in zip(outcome, amounts, strict=True) if won) >= quota:
            total += mass
    return total


def _uniform(start: int, n: int) -> float:
    return (mix_a((start + n * GOLDEN) & MASK) >> 11) * 2.0**-53


def new_pipeline(stream: int, lam: float, size_mean: float, table, trials: int):
    """Per trial: Poisson(lam) new deals (inverse CDF, chunks of at most 500), their sizes summed."""
    import math

    chunks = max(1, math.ceil(lam / 500.0))
    chunk_lam = lam / chunks
    revenue, count = np.zeros(trials), np.zeros(trials)
    for t in range(trials):
        start = mix_b((stream + t * GOLDEN) & MASK)
        deals = 0
        for j in range(chunks):
            u, k = _uniform(start, j), 0
            mass = math.exp(-chunk_lam)
            cumulative = mass
            while u > cumulative and k < chunk_lam + 40 * math.sqrt(chunk_lam) + 50:
                k += 1
                mass *= chunk_lam / k
                cumulative += mass
            deals += k
        sizes = [
            size_mean
            * (multiplier(mix_b((start + ((1 << 20) + k) * GOLDEN) & MASK), *table) if table else 1.0)
            for k in range(deals)
        ]
        total = 0.0
        for size in sizes:
            total += size
        revenue[t], count[t] = total, deals
    return revenue, count


def wins_to_cover(stream: int, remaining: float, size_mean: float, table, trials: int) -> np.ndarray:
    """Per trial, whole deals in order until their sizes cover ``remaining``, plus the last one's fraction."""
    needed = np.zeros(trials)
    for t in range(trials):
        start = mix_b((stream + t * GOLDEN) & MASK)
        left, k = remaining, 0
        while True:
            size = size_mean * multiplier(mix_b((start + ((1 << 20) + k) * GOLDEN) & MASK), *table)
            if size >= left:
                needed[t] = k + left / size
                break
            left -= size
            k += 1
    return needed


def deal_drivers(seed, keys, win_rate, land_rate, value, table, revenue, quota):
    """Per deal: trials landed, landed and at quota, landed revenue, rescued by landing, and
    landed and at quota only thanks to the deal (pivotal)."""
    win_at = [round(p * 2**32) for p in win_rate]
    land_at = [round(p * 2**32) for p in land_rate]
    out = []
    for d, key in enumerate(keys):
        start = stream_start(seed, int(key))
        landed = hits = rescued = pivotal = 0
        total = 0.0
        for t, trial_revenue in enumerate(revenue):
            counter = (start + t * GOLDEN) & MASK
            h = mix_a(counter)
            if (h >> 32) >= win_at[d]:
                continue
            amount = value[d] * (multiplier(mix_b(counter), *table) if table is not None else 1.0)
            if (h & 0xFFFFFFFF) < land_at[d]:
                landed += 1
                hits += trial_revenue >= quota
                pivotal += trial_revenue - amount < quota <= trial_revenue
                total += amount
            elif trial_revenue < quota <= trial_revenue + amount:
                rescued += 1
        out.append((landed, hits, total, rescued, pivotal))
    return out


def correlated_wins(seed, keys, win_rate, factor_keys, loadings, trials, uncertain=None):
    """Trial by trial, deal by deal: the latent-factor model of correlated wins, with exact Phi.

    Factor ``f`` in trial ``t`` is the standard normal quantile of the uniform from the
    stream of ``factor_keys[f]``. Deal ``d`` (win rate ``p``, ``loadings[d][f]``) wins
    when ``draw / 2**32 < Phi((Phi^-1(p) - sum_f loadings[d][f] * z_f) / sd)``, with
    ``sd = sqrt(1 - sum_f loadings[d][f]**2)``; with ``uncertain[d]`` = ``(cell key,
    draws.rate_table)``, ``p`` is its cell's draw in the trial. Returns ``won`` bool[deals,
    trials] and ``margin``, the draw minus that rate (where fast code may round the other way).
    """
    from scipy.special import ndtr, ndtri

    z = np.array([
        [ndtri(((mix_a((stream_start(seed, int(k)) + t * GOLDEN) & MASK) >> 11) + 0.5) * 2.0**-53)
         for t in range(trials)]
        for k in factor_keys
    ]).reshape(len(factor_keys), trials)  # fmt: skip
    won = np.zeros((len(keys), trials), bool)
    margin = np.zeros((len(keys), trials))
    uncertain = uncertain or [None] * len(keys)
    for d, key in enumerate(keys):
        sd = np.sqrt(1.0 - sum(a * a for a in loadings[d]))
        start = stream_start(seed, int(key))
        cell = uncertain[d]
        for t in range(trials):
            p = round(win_rate[d] * 2**32) / 2**32
            if cell is not None:
                p = rate_draw(mix_a((stream_start(seed, int(cell[0])) + t * GOLDEN) & MASK), *cell[1])
            shift = sum(a * z[f, t] for f, a in enumerate(loadings[d]))
            rate = ndtr((ndtri(p) - shift) / sd) if 0 < p < 1 else p
            draw = mix_a((start + t * GOLDEN) & MASK) >> 32
            margin[d, t] = draw / 2**32 - rate
            won[d, t] = margin[d, t] < 0
    return won, margin


def win_by_age_counts(deals, changes, quarters, edges) -> dict[tuple[str, int], list[int]]:
    """(stage, age bucket) -> [wins, deals] over the deals open at each quarter's start, one by one.

    ``deals``: (id, created, closed or None, won) dates; ``changes``: (id, stage, date entered).
    """
    counts: dict[tuple[str, int], list[int]] = {}
    by_deal: dict[str, list] = {}
    for n, (deal, stage, day) in enumerate(changes):
        by_deal.setdefault(deal, []).append((day, n, stage))
    for start, end in quarters:
        for deal, created, closed, won in deals:
            if created is None or created >= start or (closed is not None and closed < start):
                continue
            entered = [change for change in by_deal.get(deal, []) if change[0] < start]
            stage = max(entered)[2] if entered else ""
            age = (start - created).days
            bucket = next((b for b, edge in enumerate(edges) if age <= edge), len(edges))
            cell = counts.setdefault((stage, bucket), [0, 0])
            cell[0] += bool(won and closed is not None and start <= closed <= end)
            cell[1] += 1
    return counts


def lifetime_counts(deals, first_day, last_day, bin_days, half_life_days=None) -> dict[int, list[float]]:
    """Age bin -> [deals open in it, deal-days, wins, losses], day by day over ``first_day..last_day``.

    ``deals``: (created, closed or None, won) dates. A deal is open from its creation to its close
    (both included); a close after ``last_day`` is unknown. Each day counts ``2 ** (-days before
    last_day / half_life_days)``.
    """
    bins: dict[int, list] = {}
    for created, closed, won in deals:
        if created is None or created > last_day:
            continue
        known = closed is not None and closed <= last_day
        day, seen = max(created, first_day), set()
        while day <= (closed if known else last_day):
            age = (day - created).days
            weight = 1.0 if half_life_days is None else 2.0 ** (-(last_day - day).days / half_life_days)
            cell = bins.setdefault(age // bin_days, [0, 0.0, 0.0, 0.0])
            if age // bin_days not in seen:
                seen.add(age // bin_days)
                cell[0] += 1
            cell[1] += weight
            if known and day == closed:
                cell[2 if won else 3] += weight
            day += dt.timedelta(days=1)
    return bins


def win_within(won_daily, lost_daily, age: int, horizon_days: float) -> float:
    """Chance of a win within ``horizon_days`` from ``age``: day by day, the open share times the
    day's win chance; ``won_daily(age)``, ``lost_daily(age)`` the daily chances."""
    chance, still_open, day = 0.0, 1.0, 0
    while day < horizon_days:
        share = min(1.0, horizon_days - day)  # the last day counts in part
        chance += share * still_open * won_daily(age + day)
        still_open *= 1.0 - won_daily(age + day) - lost_daily(age + day)
        day += 1
    return chance


def fairest_split(unit_revenue, targets, objective: str) -> float:
    """The smallest range across reps of expected attainment (``objective`` "attainment") or of
    P(hit own target) ("p_hit"), over every assignment of whole units to reps that leaves no rep
    without a unit while units remain (with fewer units than reps: no rep holding two), summed
    rep by rep and trial by trial (a sum within 1e-9 of a target, relative, reaches it: float
    rounding). ``unit_revenue``: units x trials."""
    units, reps = len(unit_revenue), len(targets)
    trials = len(unit_revenue[0]) if units else 0
    best = float("inf")
    for assignment in itertools.product(range(reps), repeat=units):
        if len(set(assignment)) < min(reps, units):
            continue
        scores = []
        for rep in range(reps):
            revenue = [
                sum(unit_revenue[u][t] for u in range(units) if assignment[u] == rep) for t in range(trials)
            ]
            if objective == "attainment":
                scores.append(sum(revenue) / trials / targets[rep])
            else:
                slack = 1e-9 * max(1.0, abs(targets[rep]))
                scores.append(sum(value >= targets[rep] - slack for value in revenue) / trials)
        best = min(best, max(scores) - min(scores))
    return best


def crps(samples, actual) -> float:
    """Sample CRPS by its definition: mean |X - y| - mean over all pairs |X - X'| / 2."""
    values = [float(x) for x in samples]
    n = len(values)
    error = sum(abs(x - actual) for x in values) / n
    pairs = sum(abs(x - z) for x in values for z in values) / (n * n)
    return error - 0.5 * pairs


def synthetic_win_chance(history, row: int, origin, end, draws: int, seed: int) -> tuple[float, int]:
    """Monte Carlo of a synthetic deal open at ``origin``: the share of its futures won in origin..end.

    Replays the generator's weeks from the Monday of the origin's week, from the stage the
    stage table gives the deal the day before the origin, and keeps the futures in which it
    is still open at the origin (rejection). Returns the share and the futures kept.
    """
    import datetime as dt

    from scipy.special import expit, logit

    params = history.params
    rng = np.random.default_rng(seed)
    created = history.deals["created_date"][row].item()
    created_week = (created - params.start).days // 7
    deal = history.deals["deal_id"][row]
    entered = [
        (day.item(), stage)
        for d, stage, day in zip(
            history.stages["deal_id"], history.stages["stage"], history.stages["date"], strict=True
        )
        if d == deal and day.item() < origin
    ]
    stage = np.full(draws, ["Qualified", "Proposal", "Negotiation"].index(max(entered)[1]))
    origin_day, end_day = (origin - params.start).days, (end - params.start).days
    closed_day = np.full(draws, -1)
    won = np.zeros(draws, bool)
    for week in range(origin_day // 7, end_day // 7 + 1):
        if week <= created_week:
            continue
        monday = params.start + dt.timedelta(days=7 * week)
        shock = next(
            s
            for (first, last), s in zip(history.quarters, history.shocks, strict=True)
            if first <= monday <= last
        )
        shift = shock + params.drift_per_year * (monday - params.start).days / 365.25
        p = expit(
            logit(np.array(params.win_hazard))[stage] - params.age_decay * (week - created_week - 1) + shift
        )
        q = np.array(params.loss_hazard)[stage]
        draw, day, step = rng.random(draws), rng.integers(0, 7, draws), rng.random(draws)
        is_open = closed_day < 0
        wins, losses = is_open & (draw < p), is_open & (draw >= p) & (rng.random(draws) < q)
        won |= wins
        closed_day[wins | losses] = 7 * week + day[wins | losses]
        advances = (closed_day < 0) & (stage < 2) & (step < np.array([*params.advance, 0.0])[stage])
        stage[advances] += 1
    kept = (closed_day < 0) | (closed_day >= origin_day)
    within = won & (closed_day >= origin_day) & (closed_day <= end_day)
    return float(within[kept].mean()), int(kept.sum())


def backtest_baselines(history, origin, horizon_days: int | None = None, min_deals: int = 10) -> dict:
    """A backtest origin's actuals and baselines, deal by deal from the definitions.

    ``history``: a ``History`` (closed NaT while open); ``origin``: a date; the horizon runs to
    the quarter's end, or ``horizon_days`` from the origin. actual: what deals open at the origin
    (with a price) and deals created in the horizon won within it. weighted_pipeline: each open
    deal's price x the won share of the deals closed before the origin that entered its stage
    (at least ``min_deals`` of them, else of all closed before it). naive: what the same stretch
    of the last complete quarter brought in, per part, x horizon days / its days.
    """
    import datetime as dt

    from forecast.config.periods import quarter_of

    def day(value):
        return None if np.isnat(value) else value.item()

    n = len(history.deal_id)
    created = [day(value) for value in history.created]
    closed = [day(value) for value in history.closed]
    price = [float(value) for value in history.price]
    won_value = [float(value) for value in history.won_value]
    first = min(value for value in created if value is not None)

    def open_at(d: int, start) -> bool:
        return (created[d] is not None and created[d] < start and (closed[d] is None or closed[d] >= start)
                and not np.isnan(price[d]))  # fmt: skip

    def won_in(d: int, start, end) -> bool:
        return bool(history.won[d]) and start <= closed[d] <= end

    def parts(start, end) -> dict:
        opened = sum(won_value[d] for d in range(n) if open_at(d, start) and won_in(d, start, end))
        new = sum(
            won_value[d]
            for d in range(n)
            if created[d] is not None and start <= created[d] <= end and won_in(d, start, end)
        )
        return {"open": opened, "new": new, "total": opened + new}

    before = [d for d in range(n) if closed[d] is not None and closed[d] < origin]
    overall = sum(bool(history.won[d]) for d in before) / len(before)
    entered: dict[str, set] = {}
    if history.stage_history is not None:
        for deal, stage in zip(history.stage_history.deal_id, history.stage_history.stage, strict=True):
            entered.setdefault(stage, set()).add(deal)
    stage_now = history.stage_on(np.datetime64(origin, "D") - 1)
    weighted = 0.0
    for d in range(n):
        if not open_at(d, origin):
            continue
        group = [e for e in before if history.deal_id[e] in entered.get(stage_now[d], set())]
        rate = sum(bool(history.won[e]) for e in group) / len(group) if len(group) >= min_deals else overall
        weighted += price[d] * rate
    quarter = quarter_of(origin)
    horizon_end = quarter.end if horizon_days is None else origin + dt.timedelta(days=horizon_days - 1)
    offset = (origin - quarter.start).days
    start = quarter_of(quarter.start - dt.timedelta(days=1)).start
    while True:  # the latest earlier quarter, fully in the history, whose stretch ended before the origin
        window_start = min(start + dt.timedelta(days=offset), quarter_of(start).end)
        window_end = (quarter_of(start).end if horizon_days is None
                      else window_start + dt.timedelta(days=horizon_days - 1))  # fmt: skip
        if window_end < origin:
            break
        start = quarter_of(start - dt.timedelta(days=1)).start
    naive = None
    if start >= first:
        scale = ((horizon_end - origin).days + 1) / ((window_end - window_start).days + 1)
        naive = {part: value * scale for part, value in parts(window_start, window_end).items()}
    return {"actual": parts(origin, horizon_end), "weighted_pipeline": weighted, "naive": naive}


NUMBER_GROUPS = (" ", "\u00a0", "\u202f", "'", "\u2019")  # thousands marks that are never decimal
CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}


def number_cell(text: str, decimal: str) -> tuple[float, bool, str] | None:
    """A number cell read with ``decimal`` as its mark, the obvious way: (value, percent sign,
    currency), or None when it is not a number (exponents left out)."""
    spaces = " \t\u00a0\u202f"
    text = text.strip(spaces)
    currency = ""
    for symbol, code in CURRENCY_SYMBOLS.items():
        if text.startswith(symbol) or text.endswith(symbol):
            currency, text = code, text.removeprefix(symbol).removesuffix(symbol).strip(spaces)
            break
    else:
        if len(text) > 3 and text[:3].isascii() and text[:3].isupper() and text[:3].isalpha():
            currency, text = text[:3], text[3:].strip(spaces)
        elif len(text) > 3 and text[-3:].isascii() and text[-3:].isupper() and text[-3:].isalpha():
            currency, text = text[-3:], text[:-3].strip(spaces)
    percent = text.endswith("%")
    text = text.removesuffix("%").strip(spaces)
    sign = ""
    if text and text[0] in "+-":
        sign, text = text[0], text[1:]
    whole, mark, fraction = text.partition(decimal)
    if mark and (not fraction.isdigit() or not fraction.isascii()):
        return None
    digits = whole
    if whole:
        separators = {char for char in whole if not char.isdigit()}
        if separators:
            if len(separators) > 1:
                return None
            (separator,) = separators
            if separator not in (*NUMBER_GROUPS, "," if decimal == "." else "."):
                return None
            groups = whole.split(separator)
            first_ok = 1 <= len(groups[0]) <= 3 and groups[0][0] != "0"
            if not first_ok or any(len(group) != 3 for group in groups[1:]):
                return None
            digits = "".join(groups)
        if not digits.isdigit() or not digits.isascii():
            return None
    elif not mark:
        return None
    return float(f"{sign}{digits or '0'}.{fraction or '0'}"), percent, currency


def crm_call(history, categories_csv, origin, commit=("Commit", "Closed")) -> float:
    """The CRM's commit call at ``origin``, row by row from a category file (deal_id,
    forecast_category, date): the price of every deal open at the origin whose last category
    dated before it (the file's later row on a tie) is in ``commit``."""
    import csv
    import datetime as dt

    latest: dict[str, tuple] = {}
    with open(categories_csv, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            given = dt.date.fromisoformat(row["date"])
            if given < origin and (row["deal_id"] not in latest or given >= latest[row["deal_id"]][0]):
                latest[row["deal_id"]] = (given, row["forecast_category"])
    total = 0.0
    for d, deal in enumerate(history.deal_id):
        created, closed = history.created[d], history.closed[d]
        is_open = (
            not np.isnat(created)
            and created.item() < origin
            and (np.isnat(closed) or closed.item() >= origin)
        )
        if is_open and not np.isnan(history.price[d]) and latest.get(deal, (None, ""))[1] in commit:
            total += float(history.price[d])
    return total
