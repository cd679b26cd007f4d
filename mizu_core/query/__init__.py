"""Queries: json-rql and SPARQL → one algebra → a streaming evaluator over the index."""
