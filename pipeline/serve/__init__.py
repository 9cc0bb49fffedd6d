"""fer-serve: the pipeline behind an HTTP API and a browser page (the optional [serve] extra).

Nothing here is imported by fer-detect, so the core install never needs FastAPI or uvicorn.
"""
