"""A short run of scripts/loadtest.py: zero errors and zero wrong answers while versions switch."""

import json

import pytest

from tests.helpers import SEED_CORPUS, load_script

loadtest = load_script("loadtest")

pytestmark = pytest.mark.slow


def test_load_while_reindex_switches_twice(capsys):
    code = loadtest.main(["--corpus", str(SEED_CORPUS), "--clients", "4", "--seconds", "6", "--switches", "2"])
    report = json.loads(capsys.readouterr().out)
    assert report["requests"] > 30
    assert report["versions_served"] >= 2
    assert (report["errors"], report["wrong_answers"]) == (0, 0), report["error_samples"]
    assert code == 0
