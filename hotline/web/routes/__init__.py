"""Route modules, one per feature; each exposes ``setup(app: web.Application)``."""
