"""The JSON API for training from a browser or a script (`/api/...`, see `views.py`).

Kept free of import side effects: `training.sse` imports the snapshot builder from here, and the
API's views import `training.sse`.
"""
