"""Searching: a validated request (:mod:`.request`) is planned (:mod:`.planner`),
ranked by the current index version, and returned as hits with highlights
(:mod:`.highlight`, :mod:`.results`); :mod:`.service` ties them together and
follows version switches, :mod:`.cache` keeps recent results."""
