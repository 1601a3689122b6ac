"""The drawing web page and its small HTTP API (``anynet serve``).

:mod:`anynet.app.server` needs the ``serve`` extra (FastAPI, uvicorn, python-multipart);
:mod:`anynet.app.paths` (where the last trained model is recorded) does not.
"""
