"""Scaling laws for Lyra: a sweep of small runs, a fitted L(N, D), compute-optimal recommendations."""
