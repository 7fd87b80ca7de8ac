"""``wulian simulate``: a seeded city-year of reports and of the people who act on them.

``plan`` draws the reports and every actor's decisions from the seed (pure); ``run`` plays them
through the real ``EventLifecycle`` workflow on Temporal's time-skipping test server, acting with the
web's own commands; ``compare`` replays the same plan on a candidate responsibility list beside the
active one; ``summary`` reads what a run left in the store.
"""
