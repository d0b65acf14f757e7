"""Serving helpers that need no KServe: request decoding, the alias watcher, the HTTP client."""
