"""督查考核: indicators, schemes and scores (issue 11)."""
