"""Queries: json-rql (and later SPARQL) → one algebra → a streaming evaluator over the index."""
