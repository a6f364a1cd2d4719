"""Shared infrastructure: config, LLM backends and replica pool, embeddings, cache, tracking."""
