"""Audits of the platform's own judges against the evaluator nobody here trained (components/evaluation):
`oraql_audit` reads ORAQL against it."""
