"""督查考核: the assessment of units and people from what happened to events.

``indicators`` defines every indicator once, as data (``data/indicators.json``); ``facts`` decides
what each event, task and warning counts for (the counters indicators are formulas over). The store
keeps the facts and daily rollups (``store/assessment.py``); pages, API, dashboard and reports ask it.
"""
