"""The web page and JSON API (``clrnet serve``); needs the ``web`` extra (FastAPI, uvicorn)."""
