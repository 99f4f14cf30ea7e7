"""Recommender configurations (Pinpoint's recommender models) and the calls that fill templates' recommendation
variables from a web recommender and an optional transformer (docs/recommenders.md)."""
