"""The fault matrix, short form: four rows on one real bot.py, about 35 s in all.

A hang on the faulty account's balance call, 500s on it, an exception in its strategy and
a locked database for it: the four healthy accounts must not miss a
cycle nor record a failure, and the faulty account must record the right failure
type and recover once the fault is lifted. scripts/fault_matrix.py runs every row.
"""

from __future__ import annotations

import pytest

from nija_testkit.reliability.fault_matrix import MatrixConfig, all_rows, run_matrix, select

# One report for the module (its fixture takes ~34 s): its tests run together.
pytestmark = pytest.mark.long(34)

ROWS = "hang @ balance,500 @ balance,exception @ strategy,db locked @ store"
# CI machines are shared and noisy, so the period deviation bound here is loose: with
# under 100 periods a row's p99 is its worst period, and a busy 2-CPU machine has shown
# single 200 ms hiccups (20%). A healthy account held up by the faulty one would be off
# by a whole call timeout (100%) and miss cycles. The script's full run reports the real
# p99 (aim: 5% of the interval).
CI_MAX_P99 = 0.40


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    rows = select(all_rows(), ROWS)
    assert [r.name for r in rows] == ROWS.split(",")
    cfg = MatrixConfig(seconds_per_row=3.5, recovery_timeout=12.0)
    return run_matrix(rows, cfg, tmp_path_factory.mktemp("fault-matrix"))


def test_every_row_ran(results):
    assert [r.name for r in results] == ROWS.split(",")


@pytest.mark.parametrize("index", range(4), ids=ROWS.split(","))
def test_healthy_accounts_unaffected(results, index):
    r = results[index]
    assert r.missed == 0, r
    assert r.healthy_failures == 0, r
    assert r.healthy_cycles >= 4 * 3, r  # four accounts, about one cycle a second each
    assert r.p99 is not None and r.p99 <= CI_MAX_P99, (r.p99, r.deviations)


@pytest.mark.parametrize("index", range(4), ids=ROWS.split(","))
def test_faulty_account_classified_and_recovered(results, index):
    r = results[index]
    assert set(r.recorded) == {r.expected}, r
    assert r.worst_health != "healthy", r
    assert r.recovered_s is not None, r
    assert r.hits is None or r.hits > 0, r
    assert r.ok, r.problems


def test_hang_and_500s_quarantine_the_faulty_account(results):
    by_name = {r.name: r for r in results}
    for name in ("hang @ balance", "500 @ balance"):
        assert by_name[name].worst_health == "quarantined", by_name[name]
        assert by_name[name].quarantined_s is not None
